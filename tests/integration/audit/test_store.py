"""The decision store's contract, run on both SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from fairpath.audit import DecisionFilter, DecisionStore, NewDecision, NewOutcome, open_store, queries
from fairpath.audit.sql import MAX_RECORD_BYTES
from fairpath.decisions import Status
from fairpath.errors import DecisionNotFoundError, RecordTooLargeError
from fairpath.recording import DecisionRecorder
from fairpath.serving.evaluator import Evaluator
from fairpath.serving.masking import MASK

from tests.integration.audit.conftest import GUIDE, INCOMPLETE, SUBSTANCE, Raw

SENSITIVE = ("intent_to_harm", "safeguarding_concern", "substance_abuse_indicated")


def test_a_decision_reads_back_with_its_facts_trace_policy_and_duration(
    recorder: DecisionRecorder, store: DecisionStore
) -> None:
    """What Evaluate returned is what the store holds, trace and all (sensitive values aside)."""
    decision = recorder.evaluate(GUIDE, SUBSTANCE, request_id="r-1", caller="token:hr")
    stored = store.get_decision(decision.decision_id)

    assert stored.sequence == 1
    assert stored.decision.decision_id == decision.decision_id
    assert stored.decision.policy == decision.policy
    assert stored.decision.pathway == decision.pathway
    assert stored.decision.status is Status.DECIDED
    assert stored.decision.advice == decision.advice
    assert stored.decision.warnings == decision.warnings
    assert stored.decision.evaluated_at == decision.evaluated_at
    assert (stored.decision.engine_name, stored.decision.engine_version) == ("durable_rules", "2.0.28")
    assert (stored.decision.request_id, stored.decision.caller) == ("r-1", "token:hr")
    assert [e.rule_id for e in stored.decision.trace] == [e.rule_id for e in decision.trace]
    assert [e.result for e in stored.decision.trace] == [e.result for e in decision.trace]
    assert stored.decision.fired == decision.fired
    assert stored.facts["professional_group"] == "REGISTERED_NURSE"
    assert stored.duration_ms > 0
    assert stored.outcomes == ()


def test_sensitive_facts_are_masked_in_facts_and_trace_and_listed(
    recorder: DecisionRecorder, store: DecisionStore
) -> None:
    """Facts marked sensitive read "***" in the facts, in facts_seen and in reasons; the record names them."""
    decision = recorder.evaluate(GUIDE, SUBSTANCE)
    stored = store.get_decision(decision.decision_id)

    assert stored.masked_facts == SENSITIVE
    assert {name: stored.facts[name] for name in SENSITIVE} == dict.fromkeys(SENSITIVE, MASK)
    seen = {name: value for entry in stored.decision.trace for name, value in entry.facts_seen.items()}
    assert {name: seen[name] for name in SENSITIVE} == dict.fromkeys(SENSITIVE, MASK)
    reasons = " ".join(entry.reason for entry in stored.decision.trace)
    assert "substance_abuse_indicated = ***" in reasons
    assert "substance_abuse_indicated = YES" not in reasons
    # The true values are kept apart, for replay only.
    assert store.sensitive_facts([decision.decision_id]) == {
        decision.decision_id: {name: SUBSTANCE[name] for name in SENSITIVE}
    }


def test_the_evaluate_answer_keeps_the_values_the_caller_sent(recorder: DecisionRecorder) -> None:
    """Masking applies to the record only: the caller's own answer shows the values it sent."""
    decision = recorder.evaluate(GUIDE, SUBSTANCE)
    seen = {name: value for entry in decision.trace for name, value in entry.facts_seen.items()}

    assert seen["substance_abuse_indicated"] == "YES"


def test_the_equality_group_is_stored_apart_from_the_record(
    recorder: DecisionRecorder, store: DecisionStore, raw: Raw
) -> None:
    """The equality group never appears in the decision row (facts, document); it has its own table."""
    decision = recorder.evaluate(GUIDE, SUBSTANCE, equality_group="GROUP-7")
    rows = raw("SELECT facts, document FROM decisions WHERE decision_id = ?", [decision.decision_id])

    assert "GROUP-7" not in str(rows)
    assert store.equality_groups([decision.decision_id]) == {decision.decision_id: "GROUP-7"}
    summary = next(store.iter_summaries(DecisionFilter()))
    assert summary.equality_group == "GROUP-7"


def test_dry_run_returns_a_decision_and_records_nothing(
    recorder: DecisionRecorder, store: DecisionStore
) -> None:
    """A dry run evaluates, says so, and leaves the trail as it was."""
    decision = recorder.evaluate(GUIDE, SUBSTANCE, dry_run=True)

    assert decision.dry_run is True
    with pytest.raises(DecisionNotFoundError):
        store.get_decision(decision.decision_id)
    assert store.list_decisions(DecisionFilter(), limit=10) == []


def test_a_repeated_request_id_returns_the_first_decision_and_records_nothing_new(
    recorder: DecisionRecorder, store: DecisionStore
) -> None:
    """Repeating a request under its request id gets the first decision back (see test_request_ids)."""
    first = recorder.evaluate(GUIDE, SUBSTANCE, request_id="same")
    again = recorder.evaluate(GUIDE, SUBSTANCE, request_id="same")

    assert again.decision_id == first.decision_id
    assert again.pathway == first.pathway
    assert len(store.list_decisions(DecisionFilter(), limit=10)) == 1
    assert store.find_by_request_id("same") is not None
    assert store.find_by_request_id("other") is None


def test_racing_identical_request_ids_leave_one_record(
    recorder: DecisionRecorder, store: DecisionStore
) -> None:
    """Sixteen threads sending one request id at once all get the same decision; one record exists."""
    ids: list[str] = []
    start = threading.Barrier(16)

    def send() -> None:
        start.wait()
        ids.append(recorder.evaluate(GUIDE, SUBSTANCE, request_id="raced").decision_id)

    threads = [threading.Thread(target=send) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(ids)) == 1
    assert [s.decision.decision_id for s in store.list_decisions(DecisionFilter(), limit=20)] == ids[:1]
    assert store.verify_chain().intact


def test_two_store_instances_appending_at_once_keep_one_intact_chain(
    evaluator: Evaluator, store_url: str, store: DecisionStore
) -> None:
    """Two stores on one database (as two server processes) interleave appends without breaking the chain."""
    other = open_store(store_url)
    recorders = [DecisionRecorder(evaluator, store), DecisionRecorder(evaluator, other)]

    def send(index: int) -> None:
        for _ in range(40):
            recorders[index % 2].evaluate(GUIDE, SUBSTANCE)

    threads = [threading.Thread(target=send, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other.close()

    report = store.verify_chain()
    assert report.intact, report.problem
    assert report.records_checked == 240
    assert [s.sequence for s in store.iter_decisions(DecisionFilter())] == list(range(1, 241))


def test_an_outcome_is_appended_as_its_own_record_and_shown_with_the_decision(
    recorder: DecisionRecorder, store: DecisionStore
) -> None:
    """RecordOutcome adds a chained record; the decision itself is unchanged and lists it."""
    decision = recorder.evaluate(GUIDE, SUBSTANCE)
    before = store.get_decision(decision.decision_id)
    outcome = store.append_outcome(
        NewOutcome(decision.decision_id, "JCG_B_SUBSTANCE_ABUSE", "hr-lead", "as advised")
    )
    after = store.get_decision(decision.decision_id)

    assert outcome.sequence == 2
    assert outcome.previous_hash == before.hash
    assert (after.hash, after.facts) == (before.hash, before.facts)
    assert after.outcomes == (outcome,)
    assert (outcome.reviewer, outcome.reason) == ("hr-lead", "as advised")


@pytest.mark.parametrize(
    ("facts", "action", "departs"),
    [
        (SUBSTANCE, "JCG_B_SUBSTANCE_ABUSE", False),
        (SUBSTANCE, "FORMAL_DISCIPLINARY", True),
        (INCOMPLETE, "FORMAL_DISCIPLINARY", False),
    ],
    ids=["followed", "departed", "no-recommendation"],
)
def test_departure_is_computed_against_the_recommended_pathway_code(
    recorder: DecisionRecorder, store: DecisionStore, facts: dict[str, str], action: str, departs: bool
) -> None:
    """An outcome departs when its action differs from the pathway code; with no pathway there is none."""
    decision = recorder.evaluate(GUIDE, facts)

    outcome = store.append_outcome(NewOutcome(decision.decision_id, action, "reviewer"))

    assert outcome.departs_from_recommendation is departs


def test_an_outcome_for_an_unknown_decision_is_refused_and_appends_nothing(store: DecisionStore) -> None:
    """No outcome without a decision: NOT_FOUND, and the chain does not move."""
    with pytest.raises(DecisionNotFoundError):
        store.append_outcome(NewOutcome("no-such-decision", "X", "reviewer"))
    with pytest.raises(DecisionNotFoundError):
        store.get_decision("no-such-decision")

    assert store.verify_chain().records_checked == 0


def test_filters_select_by_each_criterion(
    recorder: DecisionRecorder, store: DecisionStore, evaluator: Evaluator
) -> None:
    """Time range, policy, version, status, pathway, rule fired and each subject ref select exactly."""
    from fairpath.decisions import Subject  # noqa: PLC0415

    a = recorder.evaluate(GUIDE, SUBSTANCE, subject=Subject("INC-1", "S-1", "A-1"))
    b = recorder.evaluate(GUIDE, INCOMPLETE, subject=Subject("INC-1", "S-2", "A-2"))
    c = recorder.evaluate(GUIDE, SUBSTANCE, version="1.1.0", subject=Subject("INC-2", "S-1", "A-3"))

    def ids(query: DecisionFilter) -> list[str]:
        return [s.decision.decision_id for s in store.list_decisions(query, limit=10)]

    now = datetime.now(UTC)
    assert ids(DecisionFilter()) == [a.decision_id, b.decision_id, c.decision_id]
    assert ids(DecisionFilter(from_time=a.evaluated_at, to_time=c.evaluated_at)) == [
        a.decision_id,
        b.decision_id,
    ]
    assert ids(DecisionFilter(from_time=now + timedelta(seconds=1))) == []
    assert ids(DecisionFilter(policy=GUIDE, version="1.1.0")) == [c.decision_id]
    assert ids(DecisionFilter(policy="another-policy")) == []
    assert ids(DecisionFilter(status=Status.NEEDS_INFORMATION)) == [b.decision_id]
    assert ids(DecisionFilter(pathway="JCG_B_SUBSTANCE_ABUSE")) == [a.decision_id, c.decision_id]
    assert ids(DecisionFilter(rule_fired="2a")) == [a.decision_id, c.decision_id]
    assert ids(DecisionFilter(rule_fired="G1", status=Status.NEEDS_INFORMATION)) == [b.decision_id]
    assert ids(DecisionFilter(incident_ref="INC-1")) == [a.decision_id, b.decision_id]
    assert ids(DecisionFilter(staff_ref="S-1")) == [a.decision_id, c.decision_id]
    assert ids(DecisionFilter(action_ref="A-2")) == [b.decision_id]


def test_pages_continue_after_a_sequence_and_iteration_reads_everything(
    recorder: DecisionRecorder, store: DecisionStore
) -> None:
    """Keyset paging never skips or repeats, and iter_decisions streams every record in chunks."""
    made = [recorder.evaluate(GUIDE, SUBSTANCE).decision_id for _ in range(7)]

    first = store.list_decisions(DecisionFilter(), limit=3)
    second = store.list_decisions(DecisionFilter(), limit=3, after_sequence=first[-1].sequence)
    streamed = [s.decision.decision_id for s in store.iter_decisions(DecisionFilter(), chunk=2)]

    assert [s.decision.decision_id for s in [*first, *second]] == made[:6]
    assert streamed == made


def test_newest_first_pages_walk_back_through_the_filtered_trail(
    recorder: DecisionRecorder, store: DecisionStore
) -> None:
    """Newest first, keyset pages run back from the newest match, keep the filter, never skip or repeat.

    A decision recorded between pages is newer than the first page, so it is not listed.
    """
    made = [recorder.evaluate(GUIDE, INCOMPLETE if i % 3 == 0 else SUBSTANCE) for i in range(10)]
    decided = [d.decision_id for d in made if d.status is Status.DECIDED]
    query = DecisionFilter(status=Status.DECIDED, policy=GUIDE)

    pages = [store.list_decisions(query, limit=3, newest_first=True)]
    recorder.evaluate(GUIDE, SUBSTANCE)  # newer than everything listed so far
    while len(pages[-1]) == 3:
        pages.append(store.list_decisions(query, limit=3, after_sequence=pages[-1][-1].sequence, newest_first=True))

    assert [len(page) for page in pages] == [3, 3, 0]
    assert [s.decision.decision_id for page in pages for s in page] == decided[::-1]
    everything = store.list_decisions(DecisionFilter(), limit=20, newest_first=True)
    assert [s.sequence for s in everything] == list(range(11, 0, -1))
    oldest_first = store.list_decisions(query, limit=2)
    assert [s.decision.decision_id for s in oldest_first] == decided[:2]


@pytest.mark.parametrize("after", [0, 3])
def test_newest_first_reads_the_sequence_index_backwards_without_sorting(
    recorder: DecisionRecorder, store: DecisionStore, raw: Raw, store_url: str, after: int
) -> None:
    """A newest-first page (the first, or past a cursor) walks the sequence index backwards: no sort of the trail."""
    for _ in range(5):
        recorder.evaluate(GUIDE, SUBSTANCE)
    clause, params = queries.where(DecisionFilter(), after, newest_first=True)
    # The shape of queries.decisions' statement, from the same constant parts and placeholders.
    select = f"SELECT d.sequence FROM decisions d WHERE {clause} ORDER BY {queries.order_by(True)} LIMIT ?"  # noqa: S608

    if store_url.startswith("sqlite"):
        plan = " / ".join(str(row[3]) for row in raw(f"EXPLAIN QUERY PLAN {select}", [*params, 51]))
        assert "TEMP B-TREE" not in plan, plan
    else:
        # A table this small is cheapest read whole and sorted; what matters is that the index can serve
        # the order (PostgreSQL still plans a Sort, at a penalty, when nothing else can).
        raw("SET enable_sort = off", ())
        plan = " / ".join(str(row[0]) for row in raw(f"EXPLAIN {select}", [*params, 51]))
        assert "Scan Backward using decisions_pkey" in plan, plan
        assert "Sort" not in plan, plan
    assert [row[0] for row in raw(select, [*params, 2])] == ([5, 4] if not after else [2, 1])


def test_chained_rows_refuse_updates_and_deletes(recorder: DecisionRecorder, raw: Raw) -> None:
    """Append-only at the database too: UPDATE and DELETE of a chained row fail."""
    recorder.evaluate(GUIDE, SUBSTANCE)

    for sql in ("UPDATE decisions SET pathway = 'X'", "DELETE FROM decisions", "DELETE FROM trace_entries"):
        with pytest.raises(Exception, match="append-only"):
            raw(sql, ())


def test_a_refused_append_raises_without_quoting_the_row(
    recorder: DecisionRecorder, raw: Raw, store_url: str
) -> None:
    """A database error never carries the row (PostgreSQL's DETAIL quotes it, facts and all) into a log."""
    from fairpath.errors import StoreError  # noqa: PLC0415

    recorder.evaluate(GUIDE, SUBSTANCE)  # the tables exist and the writer connection is open
    raw("CREATE TABLE refuse_long (facts TEXT CHECK (length(facts) < 10))", ())
    trigger = (
        "CREATE TRIGGER refuse BEFORE INSERT ON decisions BEGIN"
        " INSERT INTO refuse_long VALUES (NEW.facts); END"
        if store_url.startswith("sqlite")
        else "ALTER TABLE decisions ADD CONSTRAINT refuse CHECK (length(facts) < 10) NOT VALID"
    )
    raw(trigger, ())

    with pytest.raises(StoreError) as refused:
        recorder.evaluate(GUIDE, SUBSTANCE)

    assert "REGISTERED_NURSE" not in str(refused.value)
    assert refused.value.__cause__ is None
    assert refused.value.__suppress_context__


def test_a_record_too_large_to_read_back_is_refused_alone_and_never_written(
    store: DecisionStore, evaluator: Evaluator
) -> None:
    """A record larger than a review call can return is not written; the rest of its batch is."""
    small = evaluator.evaluate(GUIDE, SUBSTANCE)
    large = evaluator.evaluate(GUIDE, SUBSTANCE)
    oversized = {**SUBSTANCE, "notes": "x" * (MAX_RECORD_BYTES + 1)}

    results = store.append_decisions([
        NewDecision(large, oversized, (), 1), NewDecision(small, SUBSTANCE, (), 1),
    ])

    assert isinstance(results[0], RecordTooLargeError)
    assert "x" * 100 not in str(results[0])
    assert [s.decision.decision_id for s in store.list_decisions(DecisionFilter(), limit=10)] == [small.decision_id]
    assert store.verify_chain().intact
