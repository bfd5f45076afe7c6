"""Fixtures for the decision trail: every store test runs on SQLite and on PostgreSQL.

PostgreSQL is the server on 127.0.0.1:5432 (``FAIRPATH_TEST_POSTGRES`` to change
it). Each test gets its own schema, named after this session so parallel runs
never meet, and every schema the session made is dropped at its end.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from fairpath.api.server import Running
from fairpath.app import build_server
from fairpath.audit import DecisionStore, chain, open_store
from fairpath.audit.codec import JSON_DOCUMENT, RECORD_FORMAT, WIRE_RECORD
from fairpath.audit.sql import SqlStore
from fairpath.config import Config
from fairpath.recording import DecisionRecorder
from fairpath.serving.evaluator import Evaluator

POSTGRES = os.environ.get("FAIRPATH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
GUIDE = "nhs-just-culture-guide"

#: Facts walking the guide to pathway B (substance abuse), three of them sensitive.
SUBSTANCE = {
    "is_patient_safety_incident": "YES",
    "individual_concern_raised": "YES",
    "safeguarding_concern": "NO",
    "intent_to_harm": "NO",
    "substance_abuse_indicated": "YES",
    "professional_group": "REGISTERED_NURSE",
}
#: Facts stopping at the guide's first question: NEEDS_INFORMATION.
INCOMPLETE = {"is_patient_safety_incident": "YES"}

Raw = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[Callable[[], str]]:
    """Make a fresh schema per call and return a store URL using it; all are dropped at session end."""
    prefix = f"fairpath_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    made: list[str] = []

    def make() -> str:
        name = f"{prefix}_{len(made)}"
        with psycopg.connect(POSTGRES, autocommit=True) as connection:
            connection.execute(f"CREATE SCHEMA {name}")
        made.append(name)
        return f"{POSTGRES}?options={quote(f'-csearch_path={name}')}"

    yield make
    with psycopg.connect(POSTGRES, autocommit=True) as connection:
        for name in made:
            connection.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Return a URL for an empty store: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'decisions.sqlite3'}"
    make: Callable[[], str] = request.getfixturevalue("pg_schema")
    return make()


def raw_for(url: str) -> Raw:
    """Return a function running one query (no parameters) on the store ``url`` names."""

    def run(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if url.startswith("sqlite"):
            with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as connection:
                return list(connection.execute(sql, tuple(params)).fetchall())
        with psycopg.connect(url, autocommit=True) as connection:
            return list(connection.execute(sql.replace("?", "%s"), tuple(params)).fetchall())

    return run


def copy_format_1_trail(source: Raw, target: Raw, *, request_digests: bool = True) -> None:
    """Copy every row of a format-1 trail into an older schema, the columns it has.

    Without ``request_digests``, as schema version 1 had them (no ``request_digest`` column).
    """
    digest = ", request_digest" if request_digests else ""
    tables = {
        "trace_entries": "digest, entry",
        "decisions": f"sequence, {', '.join(chain.DECISION_COLUMNS)}, previous_hash, hash{digest}",
        "decision_rules": "rule_id, sequence",
        "decision_equality": "decision_id, equality_group, salt",
        "decision_sensitive_facts": "decision_id, facts, salt",
    }
    for table, columns in tables.items():
        for row in source(f"SELECT {columns} FROM {table}", ()):  # noqa: S608 - constant names
            target(f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * len(row))})", row)  # noqa: S608
    ((sequence, head),) = source("SELECT sequence, hash FROM chain_head", ())
    target("UPDATE chain_head SET sequence = ?, hash = ?", [sequence, head])


@pytest.fixture
def record_format() -> int:
    """The record format ``store`` writes new decisions in; a module overrides it to pin both formats."""
    return RECORD_FORMAT


@pytest.fixture
def store(store_url: str, record_format: int) -> Iterator[DecisionStore]:
    """Open (and so migrate) the store ``store_url`` names; close it after the test."""
    opened = open_store(store_url)
    assert isinstance(opened, SqlStore)
    opened.record_format = record_format
    yield opened
    opened.close()


#: What a record's hashed data is called in verify's problems, by record format.
RECORD_WORD = {JSON_DOCUMENT: "document", WIRE_RECORD: "record"}


def rehash_decision(raw: Raw, sequence: int, column: str, value: object) -> str:
    """Set ``column`` of decision ``sequence`` and recompute its hash (in its record format's layout); return it.

    What someone editing the trail who knows the hash layout would do: the edited record's own
    link checks out, so only the next link, the head or a disagreement can give it away.
    """
    ((layout,),) = raw("SELECT format FROM decisions WHERE sequence = ?", [sequence])
    columns = chain.DECISION_LINKS[layout]
    row = raw(f"SELECT previous_hash, {', '.join(columns)} FROM decisions WHERE sequence = ?", [sequence])[0]  # noqa: S608
    values = [bytes(v) if isinstance(v, memoryview) else v for v in row[1:]]
    values[columns.index(column)] = value
    forged = chain.link_hash(sequence, row[0], chain.DECISION, values, layout)
    raw(f"UPDATE decisions SET {column} = ?, hash = ? WHERE sequence = ?", [value, forged, sequence])  # noqa: S608
    return forged


@pytest.fixture
def recorder(evaluator: Evaluator, store: DecisionStore) -> DecisionRecorder:
    """Evaluate-and-record over the real policies and ``store``."""
    return DecisionRecorder(evaluator, store)


@pytest.fixture
def raw(store_url: str) -> Iterator[Raw]:
    """Run SQL straight against the store's database, as someone with database access would."""
    if store_url.startswith("sqlite"):
        connection: Any = sqlite3.connect(store_url.removeprefix("sqlite:///"), isolation_level=None)

        def run(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
            return list(connection.execute(sql, tuple(params)).fetchall())
    else:
        connection = psycopg.connect(store_url, autocommit=True)

        def run(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
            cursor = connection.execute(sql.replace("?", "%s"), tuple(params))
            return list(cursor.fetchall()) if cursor.description else []

    yield run
    connection.close()


def drop_append_only_triggers(raw: Raw, store_url: str) -> None:
    """Remove the append-only and forward-only triggers, as an administrator tampering with the trail would."""
    tables = ("decisions", "outcomes", "decision_rules", "trace_entries")
    if store_url.startswith("sqlite"):
        for table in tables:
            for action in ("update", "delete"):
                raw(f"DROP TRIGGER {table}_append_only_{action}", ())
        raw("DROP TRIGGER chain_head_forward_only", ())
        raw("DROP TRIGGER chain_head_append_only_delete", ())
    else:
        for table in (*tables, "chain_head"):
            raw(f"DROP TRIGGER {table}_append_only ON {table}", ())
        raw("DROP TRIGGER chain_head_forward_only ON chain_head", ())


@pytest.fixture
def served(evaluator: Evaluator, store: DecisionStore) -> Iterator[Running]:
    """Serve on 127.0.0.1 (OS-chosen port), recording into ``store``."""
    running = build_server(Config(host="127.0.0.1", port=0), evaluator, store=store)
    running.start()
    yield running
    running.stop(None).wait(5)


@pytest.fixture
def target(served: Running) -> str:
    """``host:port`` of ``served``."""
    return f"127.0.0.1:{served.port}"
