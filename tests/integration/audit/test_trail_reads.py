"""Reading the trail at scale, on SQLite and PostgreSQL: what every filter returns, and the indexes that read it.

Pages and streams read one index range in sequence order (:class:`fairpath.audit.queries.Selection`);
these tests pin that the results are those of the filter applied to the whole trail, in order,
across page boundaries of every size, both orders, and that every statement the trail's
operations run (list, export, replay, stats, verify) is read through an index, without a full
scan of a table or a sort.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fairpath.audit import DecisionFilter, DecisionStore, NewDecision, NewOutcome, monitoring, queries
from fairpath.audit.postgres import PostgresSession
from fairpath.audit.records import StoredDecision
from fairpath.audit.replay import Replayer, ReplayRequest
from fairpath.audit.sqlite import SqliteSession
from fairpath.decisions import Status, Subject
from fairpath.serving.evaluator import Evaluator
from fairpath.serving.masking import Masker

from tests.integration.audit.conftest import GUIDE, Raw

WALK = (
    "intent_to_harm", "substance_abuse_indicated", "physical_ill_health_indicated", "mental_ill_health_indicated",
    "knowingly_departed", "peers_would_act_same", "missed_training", "inadequate_supervision",
    "significant_mitigation",
)
BASE = datetime(2026, 3, 1, tzinfo=UTC)
STAFF = ("S-1", "S-2", "S-3")


def _facts(rng: random.Random) -> dict[str, object]:
    facts: dict[str, object] = {
        "is_patient_safety_incident": "YES", "individual_concern_raised": "YES", "safeguarding_concern": "NO",
        "professional_group": rng.choice(["DOCTOR", "REGISTERED_NURSE"]), "protocols_in_place": "YES",
        "protocols_workable_in_routine_use": "YES",
    }
    for name in WALK:
        facts[name] = "YES" if rng.random() < 0.2 else "NO"
    if rng.random() < 0.15:
        del facts["intent_to_harm"]  # the walk's first question unanswered: NEEDS_INFORMATION
    return facts


def record_trail(evaluator: Evaluator, store: DecisionStore, count: int = 48) -> list[StoredDecision]:
    """Append ``count`` varied decisions, some outcomes between them, evaluation times out of sequence order.

    Decisions are made by the real evaluator and masked as the recorder masks them; only their
    evaluation time is set, so that time windows meet records appended out of time order (as
    concurrent callers and replicas append them).
    """
    rng = random.Random(14)
    for number in range(count):
        facts = _facts(rng)
        version = "1.0.0" if number % 3 == 0 else ""
        subject = Subject(f"INC-{number // 4}", STAFF[number % len(STAFF)], f"A-{number % 5}")
        decision = evaluator.evaluate(GUIDE, facts, version=version, subject=subject)
        moment = BASE + timedelta(minutes=number) + timedelta(seconds=rng.randrange(-300, 300))
        decision = dataclasses.replace(decision, evaluated_at=moment)
        policy = evaluator.registry.get(decision.policy.name, decision.policy.version)
        masked = Masker.for_policy(policy).mask(facts, decision)
        group = ("G1", "G2", "")[number % 3]
        store.append_decisions([NewDecision(
            masked.decision, masked.facts, masked.masked_facts, 100, group, masked.sensitive_facts, version,
        )])
        if number % 7 == 3:  # outcomes take sequences too: decisions' sequences have gaps
            store.append_outcome(NewOutcome(decision.decision_id, "JCG_G_MANAGEMENT_ACTION", "hr"))
    return [stored for stored in store.iter_decisions(DecisionFilter(), chunk=1000)]


def _matches(query: DecisionFilter, stored: StoredDecision) -> bool:
    """The filter's meaning, applied in Python to one decision read back whole."""
    d = stored.decision
    checks = [
        query.from_time is None or d.evaluated_at >= query.from_time,
        query.to_time is None or d.evaluated_at < query.to_time,
        not query.policy or d.policy.name == query.policy,
        not query.version or d.policy.version == query.version,
        query.status is None or d.status is query.status,
        not query.pathway or (d.pathway is not None and d.pathway.code == query.pathway),
        not query.rule_fired or query.rule_fired in d.fired,
        not query.incident_ref or d.subject.incident_ref == query.incident_ref,
        not query.staff_ref or d.subject.staff_ref == query.staff_ref,
        not query.action_ref or d.subject.action_ref == query.action_ref,
    ]
    return all(checks)


def filters() -> dict[str, DecisionFilter]:
    """Every filter alone, and combinations where one filter drives and the others are checked."""
    early, late = BASE + timedelta(minutes=10), BASE + timedelta(minutes=30)
    return {
        "none": DecisionFilter(),
        "policy": DecisionFilter(policy=GUIDE),
        "version": DecisionFilter(version="1.0.0"),
        "policy+version": DecisionFilter(policy=GUIDE, version="1.0.0"),
        "status": DecisionFilter(status=Status.NEEDS_INFORMATION),
        "pathway": DecisionFilter(pathway="JCG_D_NOT_SINGLE_OUT_FORESIGHT"),
        "rule": DecisionFilter(rule_fired="3a"),
        "incident": DecisionFilter(incident_ref="INC-3"),
        "staff": DecisionFilter(staff_ref="S-2"),
        "action": DecisionFilter(action_ref="A-4"),
        "since": DecisionFilter(from_time=late),
        "until": DecisionFilter(to_time=early),
        "window": DecisionFilter(from_time=early, to_time=late),
        "empty window": DecisionFilter(from_time=BASE - timedelta(days=9), to_time=BASE - timedelta(days=8)),
        "staff+status": DecisionFilter(staff_ref="S-1", status=Status.DECIDED),
        "rule+staff": DecisionFilter(rule_fired="3a", staff_ref="S-3"),
        "rule+window+version": DecisionFilter(rule_fired="G1", from_time=early, to_time=late, version="1.0.1"),
        "pathway+policy+since": DecisionFilter(pathway="JCG_D_NOT_SINGLE_OUT_FORESIGHT", policy=GUIDE,
                                               from_time=early),
        "action+incident+status": DecisionFilter(action_ref="A-1", incident_ref="INC-1", status=Status.DECIDED),
    }


@pytest.fixture
def trail(evaluator: Evaluator, store: DecisionStore) -> list[StoredDecision]:
    """The store holding :func:`record_trail`'s decisions, and those decisions in sequence order."""
    return record_trail(evaluator, store)


def _pages(store: DecisionStore, query: DecisionFilter, size: int, *, newest_first: bool) -> list[list[str]]:
    pages: list[list[str]] = []
    after = 0
    while True:
        page = store.list_decisions(query, limit=size, after_sequence=after, newest_first=newest_first)
        if page:
            pages.append([stored.decision.decision_id for stored in page])
            after = page[-1].sequence
        if len(page) < size:
            return pages


@pytest.mark.parametrize("name", list(filters()))
def test_every_filter_pages_and_streams_exactly_what_it_selects_in_order(
    trail: list[StoredDecision], store: DecisionStore, name: str
) -> None:
    """Each filter's pages (sizes 1, 2, 5, both orders), export stream and stats stream list its matches, in order."""
    query = filters()[name]
    expected = [s.decision.decision_id for s in trail if _matches(query, s)]
    if name not in {"empty window"}:
        assert expected, f"the trail has no decision for {name}: the test would prove nothing"
    for size in (1, 2, 5):
        oldest = _pages(store, query, size, newest_first=False)
        assert [i for page in oldest for i in page] == expected, (name, size)
        assert all(len(page) == size for page in oldest[:-1])
        newest = _pages(store, query, size, newest_first=True)
        assert [i for page in newest for i in page] == expected[::-1], (name, size)
    assert [s.decision.decision_id for s in store.iter_decisions(query, chunk=3)] == expected
    assert [s.decision_id for s in store.iter_summaries(query, chunk=2)] == expected


def test_a_page_starts_after_its_cursor_even_between_matches(trail: list[StoredDecision], store: DecisionStore) -> None:
    """A cursor that is not itself a match (an outcome's sequence, another staff member's) continues after it."""
    query = DecisionFilter(staff_ref="S-2", from_time=BASE + timedelta(minutes=5))
    matches = [s for s in trail if _matches(query, s)]
    cursor = matches[2].sequence - 1  # between two matches
    assert [s.sequence for s in store.list_decisions(query, limit=3, after_sequence=cursor)] == [
        s.sequence for s in matches[2:5]
    ]
    assert [s.sequence for s in store.list_decisions(query, limit=2, after_sequence=cursor, newest_first=True)] == [
        s.sequence for s in matches[1::-1]
    ]


def test_a_stream_over_an_open_window_includes_decisions_recorded_while_it_runs(
    evaluator: Evaluator, trail: list[StoredDecision], store: DecisionStore
) -> None:
    """A window's sequence range is found when the stream starts; decisions recorded in it meanwhile still come."""
    query = DecisionFilter(from_time=BASE + timedelta(minutes=40), to_time=BASE + timedelta(days=1))
    before = [s.decision.decision_id for s in trail if _matches(query, s)]
    stream = store.iter_decisions(query, chunk=2)
    first = next(stream)
    late = record_trail(evaluator, store, count=3)[-3:]  # evaluated BASE + 0..2 minutes ± 5: outside
    inside = evaluator.evaluate(GUIDE, {"is_patient_safety_incident": "YES"})
    inside = dataclasses.replace(inside, evaluated_at=BASE + timedelta(hours=2))
    store.append_decisions([NewDecision(inside, {"is_patient_safety_incident": "YES"}, (), 1)])

    streamed = [first.decision.decision_id, *(s.decision.decision_id for s in stream)]

    assert streamed == [*before, inside.decision_id]
    assert not {s.decision.decision_id for s in late} & set(streamed)


def test_stats_and_replay_count_the_same_decisions_as_a_listing(
    evaluator: Evaluator, trail: list[StoredDecision], store: DecisionStore
) -> None:
    """Stats and replay, counted as they stream, cover exactly the decisions the filter lists."""
    query = DecisionFilter(version="1.0.0", from_time=BASE + timedelta(minutes=3))
    listed = [s for s in trail if _matches(query, s)]
    figures = monitoring.outcome_figures(store, query)
    report = Replayer(evaluator, store).replay(ReplayRequest(query, "1.0.0", GUIDE))

    assert sum(s.total for s in figures) == len(listed)
    assert report.replayed + report.skipped == len(listed)
    assert report.changed == 0  # its own version: nothing changes


# --- the plans -------------------------------------------------------------------------


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[object, ...]]]:
    """Every SELECT the store's sessions run from now on, with its parameters."""
    seen: list[tuple[str, tuple[object, ...]]] = []
    for session_class in (SqliteSession, PostgresSession):
        original = session_class.query

        def query(
            self: Any, sql: str, params: Sequence[object] = (), original: Callable[..., Any] = original
        ) -> Any:
            if sql.lstrip().upper().startswith("SELECT"):
                seen.append((sql, tuple(params)))
            return original(self, sql, params)

        monkeypatch.setattr(session_class, "query", query)
    return seen


def _operations(evaluator: Evaluator, store: DecisionStore) -> Iterator[tuple[str, Callable[[], object]]]:
    for name, query in filters().items():
        yield f"list {name}", lambda q=query: store.list_decisions(q, limit=3, after_sequence=5)
        yield f"list {name} newest first", lambda q=query: store.list_decisions(
            q, limit=3, after_sequence=40, newest_first=True
        )
        yield f"export {name}", lambda q=query: list(store.iter_decisions(q, chunk=4))
        yield f"stats {name}", lambda q=query: monitoring.outcome_figures(store, q, period_name="month")
    replayer = Replayer(evaluator, store)
    yield "replay", lambda: replayer.replay(ReplayRequest(DecisionFilter(), "1.1.0", GUIDE))
    yield "replay window", lambda: replayer.replay(
        ReplayRequest(DecisionFilter(from_time=BASE + timedelta(minutes=9)), "1.1.0", GUIDE)
    )
    yield "verify", store.verify_chain


def _sqlite_problems(raw: Raw, sql: str, params: tuple[object, ...]) -> list[str]:
    plan = [str(row[3]) for row in raw(f"EXPLAIN QUERY PLAN {sql}", params)]
    # "SCAN t" reads a whole table (or, "SCAN t USING INDEX", a whole index); a TEMP B-TREE is a sort.
    return [line for line in plan if (line.startswith("SCAN") and line != "SCAN CONSTANT ROW") or "TEMP B-TREE" in line]


def _postgres_problems(raw: Raw, sql: str, params: tuple[object, ...]) -> list[str]:
    plan = raw(f"EXPLAIN (FORMAT JSON) {sql}", params)[0][0]
    problems: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        kind = node["Node Type"]
        if kind in {"Seq Scan", "Sort", "Incremental Sort"}:
            problems.append(kind)
        if "Index" in kind and "Index Cond" not in node:
            problems.append(f"{kind} on {node.get('Index Name')} without a condition (the whole index)")
        for child in node.get("Plans", ()):
            walk(child)

    walk(plan[0]["Plan"])
    return problems


def test_every_statement_of_list_export_replay_stats_and_verify_reads_an_index_without_sorting(  # noqa: PLR0917
    evaluator: Evaluator, trail: list[StoredDecision], store: DecisionStore, raw: Raw, store_url: str,
    statements: list[tuple[str, tuple[object, ...]]],
) -> None:
    """Each operation's SQL, as the store runs it, is planned as index ranges: no full scan, no sort.

    On PostgreSQL a table this small is cheapest read whole, so the planner is told to avoid whole
    reads, sorts and hash or merge joins (they stay possible, at a penalty, and it still picks
    them when no index can serve the statement): what is shown is whether an index can.
    """
    postgres = not store_url.startswith("sqlite")
    if postgres:
        for setting in ("enable_seqscan", "enable_sort", "enable_bitmapscan", "enable_hashjoin", "enable_mergejoin",
                        "enable_incremental_sort", "enable_material"):
            raw(f"SET {setting} = off", ())
    failures: list[str] = []
    for name, run in _operations(evaluator, store):
        statements.clear()
        run()
        assert statements, name
        for sql, params in dict.fromkeys(statements):
            found = (_postgres_problems if postgres else _sqlite_problems)(raw, sql, params)
            if found:
                failures.append(f"{name}: {sql} -> {found}")
    assert not failures, "\n".join(failures)


def test_each_filter_is_read_through_its_own_index(store: DecisionStore, raw: Raw, store_url: str) -> None:
    """The index a filter drives is the one named for it: (policy, sequence), (status, sequence), the rule rows ...

    (For policy and version together PostgreSQL may take ``(version, sequence)`` on an empty table: both
    columns may drive, and either index yields the pair's decisions in sequence order.)
    """
    expected = {
        "policy": "decisions_policy_sequence", "version": "decisions_version_sequence",
        "policy+version": "decisions_policy", "status": "decisions_status_sequence", "pathway": "decisions_pathway",
        "incident": "decisions_incident", "staff": "decisions_staff", "action": "decisions_action",
        "staff+status": "decisions_staff", "rule": "decision_rules", "none": "", "window": "",
    }
    postgres = not store_url.startswith("sqlite")
    if postgres:
        for setting in ("enable_seqscan", "enable_sort", "enable_bitmapscan"):
            raw(f"SET {setting} = off", ())
    for name, index in expected.items():
        chosen = queries.selection(filters()[name])
        bounds = (1, 100) if chosen.window else None
        statement = queries.paged(chosen, "d.sequence", 0, 50, bounds)
        assert statement is not None
        if postgres:
            plan = " / ".join(str(row[0]) for row in raw(f"EXPLAIN {statement[0]}", statement[1]))
            wanted = f"using {index or 'decisions_pkey'}" if index != "decision_rules" else "decision_rules_pkey"
        else:
            plan = " / ".join(str(row[3]) for row in raw(f"EXPLAIN QUERY PLAN {statement[0]}", statement[1]))
            wanted = f"INDEX {index} " if index and index != "decision_rules" else (
                "SEARCH r USING PRIMARY KEY (rule_id=?" if index else "INTEGER PRIMARY KEY")
        assert wanted in plan or (postgres and name == "policy+version" and "decisions_version_sequence" in plan), (
            name, plan
        )
        assert "Sort" not in plan, (name, plan)
        assert "TEMP B-TREE" not in plan, (name, plan)
