"""What the database itself refuses: emptying the trail, rewinding its head, a service role overreaching.

The service can run as a PostgreSQL role that may only SELECT and INSERT (and move the
chain head forward); migrations run separately as the owner (``fairpath store migrate``).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from fairpath.audit import DecisionFilter, DecisionStore, open_store
from fairpath.audit.migrations import MIGRATIONS, POSTGRES, migrate
from fairpath.audit.postgres import PostgresSession
from fairpath.errors import StoreError
from fairpath.recording import DecisionRecorder
from fairpath.serving.evaluator import Evaluator
from fairpath_client import FairpathClient

from tests.integration.audit.conftest import GUIDE, SUBSTANCE, Raw
from tests.integration.audit.conftest import POSTGRES as POSTGRES_URL
from tests.support.servers import serving

#: The grants of the README's "Running as a least-privileged role", for schema {schema} and role {role}.
GRANTS = """
GRANT USAGE ON SCHEMA {schema} TO {role};
GRANT SELECT ON {schema}.schema_migrations TO {role};
GRANT SELECT, INSERT ON {schema}.decisions, {schema}.outcomes, {schema}.decision_rules,
    {schema}.trace_entries, {schema}.decision_equality, {schema}.decision_sensitive_facts TO {role};
GRANT SELECT, UPDATE (sequence, hash) ON {schema}.chain_head TO {role};
"""
TRAIL_TABLES = ("decisions", "outcomes", "decision_rules", "trace_entries", "chain_head")


def _refused(raw: Raw, sql: str) -> str:
    """Run ``sql`` expecting the database to refuse it; return its message."""
    with pytest.raises((psycopg.Error, sqlite3.Error)) as refused:
        raw(sql, ())
    return str(refused.value)


def test_the_chain_head_only_moves_forward(recorder: DecisionRecorder, store: DecisionStore, raw: Raw) -> None:
    """Rewinding the head, rewriting its hash in place or deleting it is refused; the trail still verifies."""
    for _ in range(3):
        recorder.evaluate(GUIDE, SUBSTANCE)

    assert "only moves forward" in _refused(raw, "UPDATE chain_head SET sequence = 0")
    assert "only moves forward" in _refused(raw, "UPDATE chain_head SET hash = 'x'")
    assert "append-only" in _refused(raw, "DELETE FROM chain_head")
    report = store.verify_chain()
    assert (report.intact, report.records_checked) == (True, 3)


@pytest.mark.postgres
def test_emptying_the_trail_with_truncate_is_refused(pg_schema: Callable[[], str], evaluator: Evaluator) -> None:
    """The issue's attack (TRUNCATE … CASCADE, then rewind the head) fails; every trail table refuses TRUNCATE.

    SQLite has no TRUNCATE; an unqualified DELETE fires its DELETE triggers (test_chained_rows_refuse_…).
    """
    url = pg_schema()
    store = open_store(url)
    try:
        for _ in range(2):
            DecisionRecorder(evaluator, store).evaluate(GUIDE, SUBSTANCE)
        with psycopg.connect(url, autocommit=True) as connection:

            def raw(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
                return list(connection.execute(sql).fetchall())

            assert "append-only" in _refused(raw, f"TRUNCATE {', '.join(TRAIL_TABLES)} CASCADE")
            for table in TRAIL_TABLES:
                assert "append-only" in _refused(raw, f"TRUNCATE {table} CASCADE")
            assert "only moves forward" in _refused(raw, "UPDATE chain_head SET sequence = 0")
        report = store.verify_chain()
    finally:
        store.close()

    assert (report.intact, report.records_checked) == (True, 2)


# --- PostgreSQL: the service as a role that may only read and append ----------------------------


@pytest.fixture(name="service_role")
def _service_role(pg_schema: Callable[[], str]) -> Iterator[tuple[str, str, str]]:
    """Create a uniquely named login role; yield (owner URL, the role's URL, schema); drop the role after."""
    owner_url = pg_schema()
    schema = owner_url.rsplit("%3D", 1)[1].rsplit("=", 1)[-1]
    role = f"fairpath_svc_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(owner_url)
    role_url = urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}"))
    with psycopg.connect(owner_url, autocommit=True) as connection:
        connection.execute(f"CREATE ROLE {role} LOGIN")
    try:
        yield owner_url, role_url, schema
    finally:
        with psycopg.connect(owner_url, autocommit=True) as connection:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
            )
            connection.execute(f"DROP OWNED BY {role}")
            connection.execute(f"DROP ROLE {role}")


def _grant(owner_url: str, schema: str, role_url: str) -> None:
    role = urlsplit(role_url).username
    with psycopg.connect(owner_url, autocommit=True) as connection:
        for statement in GRANTS.format(schema=schema, role=role).split(";"):
            if statement.strip():
                connection.execute(statement)


@pytest.mark.postgres
def test_the_service_runs_as_a_role_that_may_only_select_and_insert(
    service_role: tuple[str, str, str], evaluator: Evaluator
) -> None:
    """With the README's grants the service records, reviews and verifies; the role can neither edit nor empty."""
    owner_url, role_url, schema = service_role
    open_store(owner_url).close()  # the owner migrates
    _grant(owner_url, schema, role_url)

    with serving(evaluator, store=role_url) as running, FairpathClient(f"127.0.0.1:{running.port}") as client:
        decision = client.evaluate(GUIDE, SUBSTANCE, request_id="as-role")
        client.record_outcome(decision.decision_id, action_taken="OTHER", reviewer="hr")
        assert client.evaluate(GUIDE, SUBSTANCE, request_id="as-role").decision_id == decision.decision_id
        assert [r.decision.decision_id for r in client.list_decisions().records] == [decision.decision_id]
        assert client.verify_chain().intact

    with psycopg.connect(role_url, autocommit=True) as connection:
        for sql in (
            "UPDATE decisions SET pathway = 'X'",
            "DELETE FROM decisions",
            "DELETE FROM decision_sensitive_facts",
            "TRUNCATE decisions CASCADE",
            "DROP TRIGGER decisions_append_only ON decisions",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                connection.execute(sql)
        with pytest.raises(psycopg.errors.RaiseException, match="only moves forward"):
            connection.execute("UPDATE chain_head SET sequence = 0")


@pytest.mark.postgres
def test_a_role_that_cannot_migrate_starts_on_a_current_schema_and_fails_clearly_on_an_old_one(
    service_role: tuple[str, str, str],
) -> None:
    """On a version-1 schema the role is told to run `fairpath store migrate`; after the owner runs it, it opens."""
    owner_url, role_url, schema = service_role
    session = PostgresSession(owner_url)
    try:
        migrate(session, POSTGRES, MIGRATIONS[:1])
    finally:
        session.close()
    _grant(owner_url, schema, role_url)

    with pytest.raises(StoreError, match=r"schema is at version 1 .* run `fairpath store migrate --store URL`"):
        open_store(role_url)
    migrated = subprocess.run(
        [sys.executable, "-m", "fairpath", "store", "migrate", "--store", owner_url],
        capture_output=True, text=True, check=False, timeout=60,
    )
    again = subprocess.run(
        [sys.executable, "-m", "fairpath", "store", "migrate"],
        capture_output=True, text=True, check=False, timeout=60, env={"FAIRPATH_STORE": owner_url, **_env()},
    )
    _grant(owner_url, schema, role_url)  # tables a migration adds need their grants too
    store = open_store(role_url)
    try:
        assert store.list_decisions(DecisionFilter(), limit=1) == []
    finally:
        store.close()

    latest = max(m.version for m in MIGRATIONS)
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout == (
        f"postgresql://127.0.0.1:5432/test: schema version {latest}, applied "
        + ", ".join(f"{m.version} ({m.name})" for m in MIGRATIONS[1:]) + ".\n"
    )
    assert "postgres@" not in migrated.stdout
    assert again.stdout.endswith(f"schema version {latest}, already up to date.\n")


def _env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "FAIRPATH_STORE"}


def test_the_readme_gives_exactly_the_grants_tested_here() -> None:
    """The README's least-privileged role is the one the tests above run the service as."""
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")

    assert GRANTS.format(schema="fairpath", role="fairpath_service").strip() in readme


@pytest.mark.postgres
def test_migrating_into_a_schema_that_does_not_exist_says_to_create_it() -> None:
    """A search_path naming no schema gets advice that moves the operator on, not "run migrate" again."""
    url = f"{POSTGRES_URL}?options=-csearch_path%3Dfairpath_missing_{uuid.uuid4().hex[:8]}"
    result = subprocess.run(
        [sys.executable, "-m", "fairpath", "store", "migrate", "--store", url],
        capture_output=True, text=True, check=False, timeout=60, env=_env(),
    )
    assert result.returncode == 1
    assert "does not exist: create it first (CREATE SCHEMA" in result.stderr
