"""Verify on two cores: the second half walked in a child process reports exactly what one walk would.

From ``PARALLEL_FROM`` records on, verify walks the chain's first half itself and has a child
process (fork server, the store opened by its URL) walk the second; the two are joined at the link
across them. Here the threshold is lowered so a small trail splits (at record 7 of 12), and every
kind of tampering, before, at and after the split, must give the report of the single walk, on
SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import pytest
from fairpath.audit import DecisionStore, NewOutcome
from fairpath.audit.halves import HalfWalk
from fairpath.audit.records import ChainReport
from fairpath.audit.sql import SqlStore
from fairpath.recording import DecisionRecorder
from structlog.testing import capture_logs

from tests.integration.audit.conftest import (
    GUIDE,
    INCOMPLETE,
    SUBSTANCE,
    Raw,
    drop_append_only_triggers,
    rehash_decision,
)

#: Records in the trail; the second half starts at SPLIT.
LAST, SPLIT = 12, 7


@pytest.fixture(name="trail")
def _trail(recorder: DecisionRecorder, store: DecisionStore, raw: Raw, store_url: str) -> list[str]:
    """Twelve records: decisions, an outcome at 4 and at 9 (both sides of the split); triggers off."""
    ids: list[str] = []
    for sequence in range(1, LAST + 1):
        if sequence in (4, 9):
            store.append_outcome(NewOutcome(ids[0], "OTHER", "reviewer"))
        else:
            facts = SUBSTANCE if sequence % 2 else INCOMPLETE
            ids.append(recorder.evaluate(GUIDE, facts, equality_group="G1").decision_id)
    drop_append_only_triggers(raw, store_url)
    return ids


def _edit_fired(sequence: int) -> Callable[[Raw], None]:
    return lambda raw: raw("UPDATE decisions SET fired = fired || ' ' WHERE sequence = ?", [sequence])


def _unlink(sequence: int) -> Callable[[Raw], None]:
    return lambda raw: raw("UPDATE decisions SET previous_hash = ? WHERE sequence = ?", ["0" * 64, sequence])


def _delete(sequence: int) -> Callable[[Raw], None]:
    def run(raw: Raw) -> None:
        # Its rows in the other tables first (PostgreSQL checks their foreign keys).
        raw("DELETE FROM decision_rules WHERE sequence = ?", [sequence])
        for table in ("decision_equality", "decision_sensitive_facts"):
            raw(f"DELETE FROM {table} WHERE decision_id IN (SELECT decision_id FROM decisions WHERE sequence = ?)",  # noqa: S608
                [sequence])
        raw("DELETE FROM decisions WHERE sequence = ?", [sequence])

    return run


def _rule_row(sequence: int) -> Callable[[Raw], None]:
    return lambda raw: raw("INSERT INTO decision_rules (rule_id, sequence) VALUES ('9z', ?)", [sequence])


def _rehash_pathway(sequence: int) -> Callable[[Raw], None]:
    return lambda raw: rehash_decision(raw, sequence, "pathway", "JCG_E_SYSTEM_LEARNING") and None


def _both(*edits: Callable[[Raw], None]) -> Callable[[Raw], None]:
    def run(raw: Raw) -> None:
        for edit in edits:
            edit(raw)

    return run


SCENARIOS: dict[str, Callable[[Raw], None]] = {
    "intact": lambda raw: None,
    "edited in the first half": _edit_fired(3),
    "edited in the second half": _edit_fired(10),
    "edited at the split": _edit_fired(SPLIT),
    "unlinked at the split": _unlink(SPLIT),
    "unlinked after the split": _unlink(SPLIT + 1),
    "missing at the split": _delete(SPLIT),
    "missing last": _delete(LAST),
    "rehashed edit before the split (breaks the next link)": _rehash_pathway(SPLIT - 1),
    "rule row in the second half": _rule_row(10),
    "rule row in the first half, edit in the second": _both(_rule_row(2), _edit_fired(11)),
    "edit in the first half, rule row in the second": _both(_edit_fired(2), _rule_row(11)),
    "head hash changed": lambda raw: raw("UPDATE chain_head SET hash = ?", ["f" * 64]),
}


@pytest.mark.parametrize("edit", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_two_halves_report_what_one_walk_reports(
    store: DecisionStore, trail: list[str], raw: Raw, edit: Callable[[Raw], None]
) -> None:
    """The same report, problem, record and count, from the split walk as from the single one."""
    edit(raw)
    started = _counting_child_walks(store)

    one_walk = store.verify_chain(parallel_from=LAST + 1)
    two_halves = store.verify_chain(parallel_from=2)

    assert len(started) == 1  # only the second call split, and it did (at 7 of 12, 6 of 11)
    assert two_halves == one_walk


def test_a_split_walk_of_an_intact_trail_checks_every_record(store: DecisionStore, trail: list[str]) -> None:
    """Intact, split: every record is counted once, the head agrees."""
    started = _counting_child_walks(store)

    report = store.verify_chain(parallel_from=2)

    assert started == [(SPLIT, LAST)]
    assert report == ChainReport(True, LAST)


def test_a_child_that_cannot_start_leaves_the_walk_to_this_process(
    store: DecisionStore, trail: list[str], raw: Raw
) -> None:
    """No child (the fork server refused, the pool broke): the second half is walked here, same report."""
    assert isinstance(store, SqlStore)
    _edit_fired(10)(raw)

    def broken(first: int, last: int, chunk: int) -> tuple[ProcessPoolExecutor, Future[HalfWalk]]:
        pool = ProcessPoolExecutor(max_workers=1)
        future: Future[HalfWalk] = Future()
        future.set_exception(BrokenProcessPool("no child"))
        return pool, future

    store.walk_elsewhere = broken
    with capture_logs() as logged:
        report = store.verify_chain(parallel_from=2)

    assert (report.intact, report.first_broken_sequence) == (False, 10)
    assert [e["event"] for e in logged] == ["verify_child_failed"]


def test_a_child_that_cannot_be_started_leaves_the_whole_walk_to_this_process(
    store: DecisionStore, trail: list[str], raw: Raw
) -> None:
    """The fork server cannot start a process at all: verify walks everything here and says so."""
    assert isinstance(store, SqlStore)
    _edit_fired(3)(raw)

    def refused(first: int, last: int, chunk: int) -> tuple[ProcessPoolExecutor, Future[HalfWalk]]:
        raise OSError("no more processes")

    store.walk_elsewhere = refused
    with capture_logs() as logged:
        report = store.verify_chain(parallel_from=2)

    assert (report.intact, report.first_broken_sequence) == (False, 3)
    assert [e["event"] for e in logged] == ["verify_child_failed"]


def _counting_child_walks(store: DecisionStore) -> list[tuple[int, int]]:
    """Record each (first, last) the store hands to a child process, still handing it over."""
    assert isinstance(store, SqlStore)
    started: list[tuple[int, int]] = []
    hand_over = store.walk_elsewhere
    assert hand_over is not None  # open_store gives every store its child walks

    def counting(first: int, last: int, chunk: int) -> tuple[ProcessPoolExecutor, Future[HalfWalk]]:
        started.append((first, last))
        return hand_over(first, last, chunk)

    store.walk_elsewhere = counting
    return started
