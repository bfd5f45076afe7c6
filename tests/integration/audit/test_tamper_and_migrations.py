"""Tamper evidence and schema migrations, on both SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from fairpath.audit import DecisionRecorder, DecisionStore, NewOutcome, chain, open_store
from fairpath.audit.migrations import MIGRATIONS, POSTGRES, SQLITE, Migration, migrate
from fairpath.audit.postgres import PostgresSession
from fairpath.audit.sessions import Session
from fairpath.audit.sqlite import SqliteSession, path_of
from fairpath.errors import StoreError

from tests.integration.audit.conftest import GUIDE, SUBSTANCE, Raw, drop_append_only_triggers


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


def test_a_rehashed_edit_breaks_the_next_link(store: DecisionStore, trail: list[str], raw: Raw) -> None:
    """Recomputing the edited record's own hash does not help: the next record no longer links to it."""
    columns = ", ".join(chain.DECISION_COLUMNS)
    row = raw(f"SELECT previous_hash, {columns} FROM decisions WHERE sequence = 2", ())[0]  # noqa: S608
    values = list(row[1:])
    values[chain.DECISION_COLUMNS.index("pathway")] = "JCG_E_SYSTEM_LEARNING"
    forged = chain.link_hash(2, row[0], chain.DECISION, values)
    raw("UPDATE decisions SET pathway = 'JCG_E_SYSTEM_LEARNING', hash = ? WHERE sequence = 2", [forged])

    report = store.verify_chain()

    assert report.first_broken_sequence == 3
    assert "does not link to record 2" in report.problem


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
    store: DecisionStore, trail: list[str], raw: Raw
) -> None:
    """Trace entries are stored once and shared; editing one breaks the first record that refers to it."""
    digest, entry = raw("SELECT digest, entry FROM trace_entries WHERE entry LIKE ?", ['%"rule_id":"2a"%'])[0]
    raw("UPDATE trace_entries SET entry = ? WHERE digest = ?", [entry.replace("FIRED", "NOT_FIRED"), digest])

    report = store.verify_chain()

    assert report.first_broken_sequence == 1
    assert f"trace entry {digest} was changed" in report.problem


def test_migrations_apply_to_an_empty_database_and_are_idempotent(store_url: str, raw: Raw) -> None:
    """Opening creates the schema at the latest version; opening again applies nothing and loses nothing."""
    first = open_store(store_url)
    first.close()
    second = open_store(store_url)
    version = second.schema_version  # type: ignore[attr-defined]
    second.close()

    assert version == max(m.version for m in MIGRATIONS)
    assert raw("SELECT version, name FROM schema_migrations ORDER BY version", ()) == [(1, "decision trail")]
    assert raw("SELECT sequence FROM chain_head", ()) == [(0,)]


def test_only_missing_steps_are_applied_in_version_order(store_url: str, raw: Raw) -> None:
    """A database at version 1 gets step 2 and then step 3, once each, in one transaction."""
    dialect = SQLITE if store_url.startswith("sqlite") else POSTGRES
    steps = (
        *MIGRATIONS,
        Migration(3, "third", common=("INSERT INTO step_log (step) VALUES (3)",)),
        Migration(
            2,
            "second",
            common=("CREATE TABLE step_log (step {int} NOT NULL)", "INSERT INTO step_log VALUES (2)"),
        ),
    )
    session: Session = SqliteSession(path_of(store_url)) if dialect == SQLITE else PostgresSession(store_url)
    try:
        assert migrate(session, dialect, MIGRATIONS) == 1
        assert migrate(session, dialect, steps) == 3
        assert migrate(session, dialect, steps) == 3
    finally:
        session.close()

    assert raw("SELECT step FROM step_log", ()) == [(2,), (3,)]
    assert [row[0] for row in raw("SELECT version FROM schema_migrations ORDER BY version", ())] == [1, 2, 3]


def test_a_database_newer_than_this_fairpath_is_refused(store_url: str, raw: Raw) -> None:
    """A schema from a later fairpath is never written with an older layout."""
    open_store(store_url).close()
    raw("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 'later')", ())

    with pytest.raises(StoreError, match="version 99, newer than this fairpath knows"):
        open_store(store_url)
