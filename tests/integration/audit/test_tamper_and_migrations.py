"""Tamper evidence and schema migrations, on both SQLite and PostgreSQL, in both record formats."""

from __future__ import annotations

import pytest
from fairpath.audit import DecisionFilter, DecisionStore, NewOutcome, chain, open_store
from fairpath.audit.codec import JSON_DOCUMENT, WIRE_RECORD
from fairpath.audit.migrations import MIGRATIONS, POSTGRES, SQLITE, Migration, migrate
from fairpath.audit.postgres import PostgresSession
from fairpath.audit.sessions import Session
from fairpath.audit.sqlite import SqliteSession, path_of
from fairpath.errors import StoreError
from fairpath.recording import DecisionRecorder
from fairpath.v1.decision_pb2 import FIRED, NOT_FIRED, TraceEntry

from tests.integration.audit.conftest import (
    GUIDE,
    RECORD_WORD,
    SUBSTANCE,
    Raw,
    drop_append_only_triggers,
    rehash_decision,
)


@pytest.fixture(params=[JSON_DOCUMENT, WIRE_RECORD], ids=["format1", "format2"])
def record_format(request: pytest.FixtureRequest) -> int:
    """Every tamper test runs on records of both formats: what is checked must not depend on the encoding."""
    return int(request.param)


@pytest.fixture(name="trail")
def _trail(recorder: DecisionRecorder, store: DecisionStore, raw: Raw, store_url: str) -> list[str]:
    """Five decisions and one outcome (sequences 1-4 decisions, 5 the outcome, 6 a decision); triggers off."""
    ids = [recorder.evaluate(GUIDE, SUBSTANCE, equality_group="G1").decision_id for _ in range(4)]
    store.append_outcome(NewOutcome(ids[0], "OTHER", "reviewer"))
    ids.append(recorder.evaluate(GUIDE, SUBSTANCE).decision_id)
    drop_append_only_triggers(raw, store_url)
    return ids


def test_an_untouched_trail_verifies(store: DecisionStore, trail: list[str]) -> None:
    """Decisions and outcomes form one intact chain: every record checked, nothing broken."""
    report = store.verify_chain()

    assert report.intact
    assert (report.records_checked, report.first_broken_sequence, report.problem) == (6, 0, "")


def test_an_edited_decision_is_the_first_broken_link(
    store: DecisionStore, trail: list[str], raw: Raw
) -> None:
    """Changing a recorded pathway (e.g. to hide a disciplinary route) breaks that record's hash."""
    raw("UPDATE decisions SET pathway = 'JCG_E_SYSTEM_LEARNING' WHERE sequence = 3", ())

    report = store.verify_chain()

    assert not report.intact
    assert report.first_broken_sequence == 3
    assert "hash does not match" in report.problem
    assert report.records_checked == 3


def test_an_edited_outcome_is_the_first_broken_link(store: DecisionStore, trail: list[str], raw: Raw) -> None:
    """Outcome records are chained too: rewriting what people did is detected."""
    raw("UPDATE outcomes SET action_taken = 'JCG_B_SUBSTANCE_ABUSE', departs = 0", ())

    report = store.verify_chain()

    assert (report.intact, report.first_broken_sequence) == (False, 5)


@pytest.mark.parametrize(
    ("column", "value", "broken", "problem"),
    [
        ("facts", '{"substance_abuse_indicated":"NO"}', 3, "does not link to record 2"),
        # The pathway column also disagrees with the record's document: that is the earlier problem.
        ("pathway", "JCG_E_SYSTEM_LEARNING", 2, "its indexed column(s) pathway disagree with its {record}"),
    ],
)
def test_a_rehashed_edit_breaks_the_next_link(
    store: DecisionStore, trail: list[str], raw: Raw, record_format: int, *, column: str, value: str, broken: int,
    problem: str,
) -> None:
    """Recomputing the edited record's own hash does not help: the next record no longer links to it.

    An edited column that must agree with the record's document is caught at the record itself.
    """
    rehash_decision(raw, 2, column, value)

    report = store.verify_chain()

    assert (report.first_broken_sequence, report.records_checked) == (broken, broken)
    assert problem.format(record=RECORD_WORD[record_format]) in report.problem


def test_a_rewritten_last_record_with_a_recomputed_hash_is_caught_by_the_chain_head(
    store: DecisionStore, trail: list[str], raw: Raw
) -> None:
    """The newest record has no successor to break: edited and re-hashed, only the head's hash exposes it."""
    rehash_decision(raw, 6, "pathway", "JCG_E_SYSTEM_LEARNING")

    report = store.verify_chain()

    assert (report.intact, report.records_checked, report.first_broken_sequence) == (False, 6, 6)
    assert report.problem == "the chain head hash does not match record 6"


def test_a_chain_head_hash_changed_with_its_count_intact_is_detected(
    store: DecisionStore, trail: list[str], raw: Raw, store_url: str
) -> None:
    """Every record intact but the head's hash replaced (e.g. to anchor a forged tail later): verify fails."""
    _disable_triggers(raw, store_url, "chain_head")
    [(sequence, head)] = raw("SELECT sequence, hash FROM chain_head", ())
    raw("UPDATE chain_head SET hash = ?", [chain.link_hash(6, head, chain.DECISION, ("forged",))])

    report = store.verify_chain()

    assert raw("SELECT sequence FROM chain_head", ()) == [(sequence,)] == [(6,)]
    assert (report.intact, report.records_checked, report.first_broken_sequence) == (False, 6, 6)
    assert report.problem == "the chain head hash does not match record 6"


def _disable_triggers(raw: Raw, store_url: str, table: str) -> None:
    """Take every trigger off ``table`` as an administrator would (whatever guards the schema adds)."""
    if store_url.startswith("sqlite"):
        for (name,) in raw("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", [table]):
            raw(f'DROP TRIGGER "{name}"', ())
    else:
        raw(f"ALTER TABLE {table} DISABLE TRIGGER USER", ())


def test_a_deleted_record_is_reported_missing(store: DecisionStore, trail: list[str], raw: Raw) -> None:
    """Removing a decision from the middle leaves a gap in the sequence, named as the first broken link."""
    raw("DELETE FROM decision_rules WHERE sequence = 2", ())
    raw("DELETE FROM decision_equality WHERE decision_id = ?", [trail[1]])
    raw("DELETE FROM decision_sensitive_facts WHERE decision_id = ?", [trail[1]])
    raw("DELETE FROM decisions WHERE sequence = 2", ())

    report = store.verify_chain()

    assert (report.intact, report.first_broken_sequence) == (False, 2)
    assert "record 2 is missing" in report.problem


def test_a_removed_tail_is_detected_from_the_chain_head(
    store: DecisionStore, trail: list[str], raw: Raw
) -> None:
    """Deleting the newest records leaves the chain head pointing past the end."""
    raw("DELETE FROM decision_rules WHERE sequence = 6", ())
    raw("DELETE FROM decision_sensitive_facts WHERE decision_id = ?", [trail[4]])
    raw("DELETE FROM decisions WHERE sequence = 6", ())

    report = store.verify_chain()

    assert (report.intact, report.first_broken_sequence) == (False, 6)
    assert "records are missing" in report.problem


def test_an_edited_equality_group_breaks_its_decision(
    store: DecisionStore, trail: list[str], raw: Raw
) -> None:
    """The equality group lives apart but is committed to by its record: changing it is detected."""
    raw("UPDATE decision_equality SET equality_group = 'G2' WHERE decision_id = ?", [trail[3]])

    report = store.verify_chain()

    assert report.first_broken_sequence == 4
    assert "equality group" in report.problem


def test_an_edited_trace_entry_breaks_the_first_decision_using_it(
    store: DecisionStore, trail: list[str], raw: Raw, record_format: int
) -> None:
    """Trace entries are stored once and shared; editing one breaks the first record that refers to it."""
    if record_format == JSON_DOCUMENT:
        digest, entry = raw("SELECT digest, entry FROM trace_entries WHERE entry LIKE ?", ['%"rule_id":"2a"%'])[0]
        raw("UPDATE trace_entries SET entry = ? WHERE digest = ?", [entry.replace("FIRED", "NOT_FIRED"), digest])
    else:
        found = [(d, bytes(b)) for d, b in raw("SELECT digest, body FROM trace_entries", ()) if b"\n\x022a" in bytes(b)]
        digest, body = found[0]  # rule_id (field 1) "2a"
        edited = TraceEntry.FromString(body)
        edited.result = NOT_FIRED if edited.result == FIRED else FIRED
        raw("UPDATE trace_entries SET body = ? WHERE digest = ?", [edited.SerializeToString(), digest])

    report = store.verify_chain()

    assert report.first_broken_sequence == 1
    assert f"trace entry {digest} was changed" in report.problem


def test_a_rule_row_added_for_a_decision_is_reported_as_that_decision(
    store: DecisionStore, trail: list[str], raw: Raw
) -> None:
    """A decision_rules row the trace does not back would make --rule-fired find the decision: verify names it."""
    raw("INSERT INTO decision_rules (rule_id, sequence) VALUES ('9z', 3)", ())

    found = store.list_decisions(DecisionFilter(rule_fired="9z"), limit=10)
    report = store.verify_chain()

    assert [s.sequence for s in found] == [3]  # what the row does to queries
    assert (report.intact, report.first_broken_sequence) == (False, 3)
    assert f"decision {trail[2]}" in report.problem
    assert "rules that did not fire: 9z" in report.problem


def test_a_rule_row_removed_from_a_decision_is_reported_as_that_decision(
    store: DecisionStore, trail: list[str], raw: Raw
) -> None:
    """Deleting a fired rule's row hides the decision from --rule-fired: verify names the decision."""
    (rule,) = raw("SELECT rule_id FROM decision_rules WHERE sequence = 2 ORDER BY rule_id LIMIT 1", ())[0]
    raw("DELETE FROM decision_rules WHERE sequence = 2 AND rule_id = ?", [rule])

    report = store.verify_chain()

    assert (report.intact, report.first_broken_sequence) == (False, 2)
    assert f"decision {trail[1]}" in report.problem
    assert f"rows missing for fired rules: {rule}" in report.problem


def test_a_changed_rule_row_is_reported_as_that_decision(store: DecisionStore, trail: list[str], raw: Raw) -> None:
    """Renaming the rule of a decision_rules row (its indexed column) is caught against the chained trace."""
    (rule,) = raw("SELECT rule_id FROM decision_rules WHERE sequence = 4 ORDER BY rule_id LIMIT 1", ())[0]
    raw("UPDATE decision_rules SET rule_id = '9z' WHERE sequence = 4 AND rule_id = ?", [rule])

    report = store.verify_chain()

    assert (report.intact, report.first_broken_sequence) == (False, 4)
    assert f"decision {trail[3]}" in report.problem
    assert "9z" in report.problem
    assert rule in report.problem


def test_an_indexed_column_disagreeing_with_its_document_is_reported(
    store: DecisionStore, trail: list[str], raw: Raw, record_format: int
) -> None:
    """A newest record whose pathway column (what --pathway filters on) was changed and rehashed, head and all.

    The hashes all check out, but the column no longer says what the record's document says.
    """
    forged = rehash_decision(raw, 6, "pathway", "JCG_E_SYSTEM_LEARNING")
    raw("UPDATE chain_head SET hash = ?", [forged])

    found = store.list_decisions(DecisionFilter(pathway="JCG_E_SYSTEM_LEARNING"), limit=10)
    report = store.verify_chain()

    assert [s.decision.pathway.code for s in found if s.decision.pathway] == ["JCG_B_SUBSTANCE_ABUSE"]
    assert (report.intact, report.first_broken_sequence) == (False, 6)
    said = f"decision {trail[4]}: its indexed column(s) pathway disagree with its {RECORD_WORD[record_format]}"
    assert said in report.problem


def test_a_rule_row_before_a_head_moved_forward_is_the_first_problem(
    store: DecisionStore, trail: list[str], raw: Raw
) -> None:
    """The service role can add a rule row and move the head forward: record 2, not 7, is the earliest break.

    Reporting the head as the break would claim records 1-6 intact while record 2 is not. The head
    is moved far ahead, as it can be: verify walks the records there are, not every sequence up to it.
    """
    raw("INSERT INTO decision_rules (rule_id, sequence) VALUES ('4a', 2)", ())
    raw("UPDATE chain_head SET sequence = ? WHERE id = 1", [10**15])

    report = store.verify_chain()

    assert (report.intact, report.records_checked, report.first_broken_sequence) == (False, 2, 2)
    assert f"decision {trail[1]}" in report.problem
    assert "rules that did not fire: 4a" in report.problem


def test_a_head_moved_far_forward_is_reported_without_walking_to_it(
    store: DecisionStore, trail: list[str], raw: Raw
) -> None:
    """A head moved to sequence 10^15 (the forward-only guard allows it): verify answers at once, records missing."""
    raw("UPDATE chain_head SET sequence = ? WHERE id = 1", [10**15])

    report = store.verify_chain()

    assert (report.intact, report.records_checked, report.first_broken_sequence) == (False, 6, 7)
    assert report.problem == f"the chain head records {10**15} record(s) but 6 were found: records are missing"


def test_of_a_rule_row_and_a_later_edit_the_earlier_is_reported(
    store: DecisionStore, trail: list[str], raw: Raw
) -> None:
    """A decision_rules row at record 3 and an edited record 6: verify names record 3; the edit alone, record 6."""
    raw("UPDATE decisions SET pathway = 'JCG_E_SYSTEM_LEARNING' WHERE sequence = 6", ())
    edited_only = store.verify_chain()
    raw("INSERT INTO decision_rules (rule_id, sequence) VALUES ('9z', 3)", ())

    report = store.verify_chain()

    assert edited_only.first_broken_sequence == 6
    assert (report.intact, report.records_checked, report.first_broken_sequence) == (False, 3, 3)
    assert f"decision {trail[2]}" in report.problem


def test_migrations_apply_to_an_empty_database_and_are_idempotent(store_url: str, raw: Raw) -> None:
    """Opening creates the schema at the latest version; opening again applies nothing and loses nothing."""
    first = open_store(store_url)
    first.close()
    second = open_store(store_url)
    version = second.schema_version  # type: ignore[attr-defined]
    second.close()

    assert version == max(m.version for m in MIGRATIONS)
    assert raw("SELECT version, name FROM schema_migrations ORDER BY version", ()) == [
        (m.version, m.name) for m in MIGRATIONS
    ]
    assert raw("SELECT sequence FROM chain_head", ()) == [(0,)]


def test_only_missing_steps_are_applied_in_version_order(store_url: str, raw: Raw) -> None:
    """A database at the latest version N gets step N+1 and then N+2, once each, in one transaction."""
    dialect = SQLITE if store_url.startswith("sqlite") else POSTGRES
    n = max(m.version for m in MIGRATIONS)
    steps = (
        *MIGRATIONS,
        Migration(n + 2, "third", common=(f"INSERT INTO step_log (step) VALUES ({n + 2})",)),  # noqa: S608
        Migration(
            n + 1,
            "second",
            common=("CREATE TABLE step_log (step {int} NOT NULL)", f"INSERT INTO step_log VALUES ({n + 1})"),  # noqa: S608
        ),
    )
    session: Session = SqliteSession(path_of(store_url)) if dialect == SQLITE else PostgresSession(store_url)
    try:
        assert migrate(session, dialect, MIGRATIONS) == n
        assert migrate(session, dialect, steps) == n + 2
        assert migrate(session, dialect, steps) == n + 2
    finally:
        session.close()

    assert raw("SELECT step FROM step_log", ()) == [(n + 1,), (n + 2,)]
    versions = [row[0] for row in raw("SELECT version FROM schema_migrations ORDER BY version", ())]
    assert versions == [*(m.version for m in MIGRATIONS), n + 1, n + 2]


def test_a_database_newer_than_this_fairpath_is_refused(store_url: str, raw: Raw) -> None:
    """A schema from a later fairpath is never written with an older layout."""
    open_store(store_url).close()
    raw("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 'later')", ())

    with pytest.raises(StoreError, match="version 99, newer than this fairpath knows"):
        open_store(store_url)
