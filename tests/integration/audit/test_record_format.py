"""Record format 2: one encoding for the reply, the record and the chain; format-1 records still read and verify.

Since schema version 5 a decision is recorded as its own ``fairpath.v1.Decision`` bytes (the trace
entries stored once each, by digest), made by the deciding version's encoder, the very bytes the
caller's reply is made of. Records written before stay in format 1 (a JSON document) and must go
on reading, verifying, taking outcomes and replaying beside the new ones, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fairpath.audit import DecisionFilter, DecisionStore, NewDecision, NewOutcome, open_store
from fairpath.audit.codec import JSON_DOCUMENT, WIRE_RECORD
from fairpath.audit.migrations import MIGRATIONS, POSTGRES, SQLITE, migrate
from fairpath.audit.postgres import PostgresSession
from fairpath.audit.sessions import Session
from fairpath.audit.sql import SqlStore
from fairpath.audit.sqlite import SqliteSession, path_of
from fairpath.recording import DecisionRecorder
from fairpath.serving.evaluator import Evaluator
from fairpath.v1.decision_pb2 import Decision, TraceEntry
from fairpath.wire import entry_digest, field_key, length_delimited

from tests.integration.audit.conftest import (
    GUIDE,
    INCOMPLETE,
    SUBSTANCE,
    Raw,
    copy_format_1_trail,
    drop_append_only_triggers,
    raw_for,
)

#: The guide's answers to pathway E (system learning).
SYSTEM = {**SUBSTANCE, "substance_abuse_indicated": "NO", "physical_ill_health_indicated": "NO",
          "mental_ill_health_indicated": "NO", "protocols_in_place": "NO"}


def test_the_record_is_made_of_the_bytes_of_the_reply(
    recorder: DecisionRecorder, store: DecisionStore, raw: Raw
) -> None:
    """With nothing masked, the stored record is the reply's message but its trace, and each entry its bytes."""
    recommended = recorder.recommend(GUIDE, INCOMPLETE, request_id="one-encoding")  # no sensitive answer seen
    ((record, trace, layout),) = raw("SELECT record, trace, format FROM decisions", ())
    bodies = {digest: bytes(body) for digest, body in raw("SELECT digest, body FROM trace_entries", ())}
    digests = [trace[i:i + 32] for i in range(0, len(trace), 32)]

    assert layout == WIRE_RECORD
    # The reply is the record's bytes followed by each stored entry's bytes as a trace field: one encoding.
    trace_key = field_key(Decision.DESCRIPTOR, "trace")
    assert recommended.encoded == bytes(record) + b"".join(length_delimited(trace_key, bodies[d]) for d in digests)
    assert len(Decision.FromString(recommended.encoded).trace) == len(digests) == len(recommended.decision.trace)
    assert all(entry_digest(bodies[d]) == d for d in digests)
    assert store.get_decision(recommended.decision.decision_id).decision == recommended.decision


def test_a_masked_record_keeps_the_reply_header_and_masks_only_its_entries(
    recorder: DecisionRecorder, store: DecisionStore, raw: Raw
) -> None:
    """Sensitive answers go back to the caller and never into the record: the masked entries differ, nothing else."""
    recommended = recorder.recommend(GUIDE, SUBSTANCE)
    ((record,),) = raw("SELECT record FROM decisions", ())
    stored = store.get_decision(recommended.decision.decision_id)

    bodies = [bytes(body) for (body,) in raw("SELECT body FROM trace_entries", ())]
    trace_key = field_key(Decision.DESCRIPTOR, "trace")

    assert recommended.encoded.startswith(bytes(record))
    assert stored.decision.trace != recommended.decision.trace
    # Entries without a masked value are the reply's own bytes; only the masked ones were encoded again.
    shared = [body for body in bodies if length_delimited(trace_key, body) in recommended.encoded]
    masked = [body for body in bodies if b"***" in body]
    assert masked
    assert len(shared) + len(masked) == len(bodies)
    # No stored entry shows a sensitive answer: every sensitive fact it saw is the mask.
    sensitive = {"safeguarding_concern", "intent_to_harm", "substance_abuse_indicated",
                 "physical_ill_health_indicated", "mental_ill_health_indicated"}.intersection(SUBSTANCE)
    seen = [(name, value) for body in bodies for name, value in TraceEntry.FromString(body).facts_seen.items()]
    assert {value.string_value for name, value in seen if name in sensitive} == {"***"}
    seen = {value for entry in stored.decision.trace for value in entry.facts_seen.values()}
    assert "***" in seen
    assert stored.decision.pathway == recommended.decision.pathway


@pytest.mark.parametrize("facts", [SUBSTANCE, SYSTEM, INCOMPLETE], ids=["masked", "plain", "needs-information"])
def test_a_format_2_record_reads_back_as_the_decision_recorded(
    recorder: DecisionRecorder, store: DecisionStore, facts: dict[str, str]
) -> None:
    """Read back, a format-2 record is the masked decision as it was appended, field for field."""
    decision = recorder.evaluate(GUIDE, facts, subject=None, request_id="r1", caller="token:ward")
    stored = store.get_decision(decision.decision_id)

    again = recorder.evaluate(GUIDE, facts, request_id="r1", caller="token:ward")  # a repeat: the record
    assert again == stored.decision
    assert stored.decision.evaluated_at == decision.evaluated_at
    assert (stored.decision.policy, stored.decision.status, stored.decision.advice, stored.decision.warnings) == (
        decision.policy, decision.status, decision.advice, decision.warnings
    )
    assert [e.rule_id for e in stored.decision.trace] == [e.rule_id for e in decision.trace]


def test_format_1_records_read_verify_and_take_outcomes_beside_format_2(
    evaluator: Evaluator, store: DecisionStore
) -> None:
    """A trail that was JSON documents goes on: new records are format 2, one chain verifies over both."""
    assert isinstance(store, SqlStore)
    recorder = DecisionRecorder(evaluator, store)
    store.record_format = JSON_DOCUMENT
    old = [recorder.evaluate(GUIDE, facts) for facts in (SUBSTANCE, SYSTEM)]
    store.record_format = WIRE_RECORD
    new = [recorder.evaluate(GUIDE, facts) for facts in (SUBSTANCE, INCOMPLETE)]
    store.append_outcome(NewOutcome(old[0].decision_id, "OTHER", "reviewer"))

    listed = store.list_decisions(DecisionFilter(), limit=10)
    report = store.verify_chain()

    assert report.intact, report.problem
    assert report.records_checked == 5
    assert [s.decision.decision_id for s in listed] == [d.decision_id for d in (*old, *new)]
    assert listed[0].outcomes[0].action_taken == "OTHER"
    assert [s.decision.pathway for s in listed] == [d.pathway for d in (*old, *new)]
    assert [len(s.decision.trace) for s in listed] == [len(d.trace) for d in (*old, *new)]
    summaries = list(store.iter_summaries(DecisionFilter(pathway="JCG_B_SUBSTANCE_ABUSE")))
    assert [s.decision_id for s in summaries] == [old[0].decision_id, new[0].decision_id]


@pytest.mark.parametrize(("written", "edited"), [(WIRE_RECORD, 1), (JSON_DOCUMENT, 2), (WIRE_RECORD, 9)])
def test_a_record_format_changed_in_the_database_is_a_broken_link(
    evaluator: Evaluator, store: DecisionStore, raw: Raw, store_url: str, *, written: int, edited: int
) -> None:
    """The format is the layout hashed into the link: reading a record as another format cannot pass verify."""
    assert isinstance(store, SqlStore)
    store.record_format = written
    recorder = DecisionRecorder(evaluator, store)
    for _ in range(2):
        recorder.evaluate(GUIDE, SUBSTANCE)
    drop_append_only_triggers(raw, store_url)
    raw("UPDATE decisions SET format = ? WHERE sequence = 1", [edited])

    report = store.verify_chain()

    assert (report.intact, report.first_broken_sequence) == (False, 1)
    assert "hash does not match" in report.problem


def test_a_schema_4_trail_migrates_in_place_and_stays_verifiable(
    store_url: str, evaluator: Evaluator, tmp_path: Path, pg_schema: Callable[[], str], raw: Raw
) -> None:
    """Migration 5 on a database an older fairpath wrote: its records keep format 1, read, verify, and extend."""
    dialect = SQLITE if store_url.startswith("sqlite") else POSTGRES
    source_url = f"sqlite:///{tmp_path / 'source.sqlite3'}" if dialect == SQLITE else pg_schema()
    source = open_store(source_url)
    assert isinstance(source, SqlStore)
    source.record_format = JSON_DOCUMENT
    try:
        old = [DecisionRecorder(evaluator, source).evaluate(GUIDE, facts, equality_group="G1")
               for facts in (SUBSTANCE, INCOMPLETE)]
    finally:
        source.close()
    session: Session = SqliteSession(path_of(store_url)) if dialect == SQLITE else PostgresSession(store_url)
    try:
        assert migrate(session, dialect, MIGRATIONS[:4]) == 4
    finally:
        session.close()
    copy_format_1_trail(raw_for(source_url), raw)

    store = open_store(store_url)  # applies migration 5
    try:
        assert store.schema_version == 5  # type: ignore[attr-defined]
        assert raw("SELECT format, record, trace FROM decisions ORDER BY sequence", ()) == [(1, None, "")] * 2
        assert [store.get_decision(d.decision_id).decision.pathway for d in old] == [d.pathway for d in old]
        new = DecisionRecorder(evaluator, store).evaluate(GUIDE, SUBSTANCE)
        report = store.verify_chain()
        assert report.intact, report.problem
        assert report.records_checked == 3
        assert raw("SELECT format FROM decisions ORDER BY sequence", ()) == [(1,), (1,), (2,)]
        assert store.get_decision(new.decision_id).decision.pathway == old[0].pathway
    finally:
        store.close()


def test_records_appended_together_in_one_transaction_read_back_byte_for_byte(
    evaluator: Evaluator, store: DecisionStore, raw: Raw
) -> None:
    """A group commit writes several records (and new entries) per statement: each reads back as appended."""
    made = [evaluator.evaluate(GUIDE, facts) for facts in (SUBSTANCE, SYSTEM, INCOMPLETE)]
    store.append_decisions([NewDecision(decision, {}, (), 1) for decision in made])

    stored = [store.get_decision(decision.decision_id).decision for decision in made]
    rows = raw("SELECT format FROM decisions ORDER BY sequence", ())

    assert stored == made
    assert rows == [(WIRE_RECORD,)] * 3
    assert store.verify_chain().intact
