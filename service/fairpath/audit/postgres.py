"""The PostgreSQL backend: one trail shared by several server processes or replicas.

Appends are serialised across every process by ``SELECT … FROM chain_head …
FOR UPDATE``: the one head row is locked until the appending transaction
commits, so sequences and hashes are assigned strictly one after another and
commits happen in sequence order. Commits are durable as PostgreSQL's
``synchronous_commit`` makes them (``on`` by default: synced to disk).

The URL is handed to libpq as it is, so its usual parameters work, e.g.
``postgresql://fairpath@db:5432/audit?options=-csearch_path%3Dfairpath`` to
keep the tables in their own schema. The URL (which may hold a password) is
never logged; :func:`describe` gives a safe description.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import psycopg

from fairpath.audit.migrations import POSTGRES
from fairpath.audit.queries import HEAD
from fairpath.audit.sessions import Lookups, Row, Writes
from fairpath.audit.sql import SqlStore
from fairpath.errors import StoreError, StoreUnavailableError

CONNECT_TIMEOUT_SECONDS = 5
_VALUES = re.compile(r"VALUES \((?:%s, )*%s\)")
#: How long an append waits for the chain lock held by another process before giving up (UNAVAILABLE).
LOCK_TIMEOUT = "10s"
# Errors that mean "not now": the server is unreachable, restarting, or a lock or snapshot could not be had.
_RETRYABLE = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
)


def describe(url: str) -> str:
    """Return ``postgresql://host:port/database`` without user, password or parameters."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"postgresql://{host}{port}{parts.path}"


class PostgresSession:
    """A :class:`~fairpath.audit.sessions.Session` over one psycopg connection."""

    def __init__(self, url: str) -> None:
        try:
            # Autocommit: reads run without holding a transaction open; writes BEGIN explicitly.
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS)
            self._conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        except psycopg.Error as error:
            message = f"cannot connect to the PostgreSQL store {describe(url)}: {error}"
            raise StoreUnavailableError(message) from error
        self._sql: dict[str, str] = {}

    def _native(self, sql: str) -> Any:
        # The store writes "?" placeholders; psycopg wants "%s". No statement contains a literal % or ?.
        native = self._sql.get(sql)
        if native is None:
            native = self._sql[sql] = sql.replace("?", "%s")
        return native

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run one statement and return its rows."""
        try:
            with self._conn.cursor() as cursor:
                cursor.execute(self._native(sql), tuple(params))
                return cursor.fetchall() if cursor.description else []
        except psycopg.Error as error:
            raise _translate(error) from None

    def execute_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run one statement per row, pipelined (one round trip for the lot)."""
        try:
            with self._conn.cursor() as cursor:
                cursor.executemany(self._native(sql), rows)
        except psycopg.Error as error:
            raise _translate(error) from None

    def begin_append(self, lookups: Lookups = ()) -> tuple[int, str, list[list[Row]]]:
        """Lock the chain head row until commit (every other appender waits there), then run the lookups.

        Pipelined: BEGIN, the lock and the lookups cost one round trip.
        """
        try:
            with self._conn.pipeline():
                self._conn.execute("BEGIN")
                head = self._conn.execute(f"{HEAD} FOR UPDATE")
                found = [self._conn.execute(self._native(sql), tuple(params)) for sql, params in lookups]
            row = head.fetchone()
            if row is None:
                raise StoreError("the chain_head row is missing")
            return int(row[0]), str(row[1]), [cursor.fetchall() for cursor in found]
        except psycopg.Error as error:
            raise _translate(error) from None

    def finish_append(self, writes: Writes) -> None:
        """Run every write as ONE statement, then COMMIT, pipelined: one round trip plus the sync.

        Each INSERT becomes one statement over column arrays (:func:`_statements`), and all but
        the last run as data-modifying CTEs of the last: psycopg's per-statement cost, not the
        database, is what an append spends most on. Foreign keys are checked at the end of the
        statement, so a rule row may name a decision inserted beside it.
        """
        parts = [part for sql, rows in writes for part in _statements(self._native(sql), rows)]
        if not parts:
            self.commit()
            return
        *ctes, (last, _) = parts
        statement = "".join(
            f"{'WITH' if i == 0 else ','} w{i} AS ({sql}) " for i, (sql, _) in enumerate(ctes)
        )
        params = tuple(value for _, values in parts for value in values)
        try:
            with self._conn.pipeline():
                self._conn.execute(statement + last, params)
                self._conn.execute("COMMIT")
        except psycopg.Error as error:
            raise _translate(error) from None

    def begin_migration(self) -> None:
        """Take a transaction-scoped advisory lock: servers starting together migrate one by one."""
        self.query("BEGIN")
        self.query("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))

    def begin_snapshot(self) -> None:
        """REPEATABLE READ: every query of the transaction sees the same snapshot."""
        self.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def commit(self) -> None:
        """Commit the open transaction."""
        self.query("COMMIT")

    def rollback(self) -> None:
        """Roll back the open transaction, if any."""
        try:
            if self._conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                self._conn.execute("ROLLBACK")
        except psycopg.Error:
            pass  # the connection is being abandoned anyway

    def close(self) -> None:
        """Close the connection."""
        with contextlib.suppress(psycopg.Error):
            self._conn.close()

    def lost(self) -> bool:
        """True once the server side of the connection is gone (terminated, restarted, cut off)."""
        return bool(self._conn.broken)


def _statements(sql: str, rows: Sequence[Sequence[object]]) -> Iterator[tuple[Any, tuple[object, ...]]]:
    """Yield the statements writing ``rows``: an INSERT of several rows becomes one statement over arrays.

    ``INSERT … VALUES (%s, %s)`` with several rows is rewritten to ``INSERT … SELECT * FROM
    unnest(%b::text[], %b::bigint[])``: one binary array per column, and a text that does not
    grow with the batch (so psycopg parses it once). Measured cheaper than one ``VALUES`` group
    per row from two rows on; one row is cheaper left as it is.
    """
    values = _VALUES.search(sql)
    if values is None or len(rows) < 2:
        for row in rows:
            yield sql, tuple(row)
        return
    columns = list(zip(*rows, strict=True))
    arrays = ", ".join(f"%b::{_array_type(column[0])}[]" for column in columns)
    # Only the store's own constant statement and placeholders go into the text; values are bound.
    statement = f"{sql[:values.start()]}SELECT * FROM unnest({arrays}){sql[values.end():]}"  # noqa: S608
    yield statement, tuple(map(list, columns))


def _array_type(value: object) -> str:
    """The PostgreSQL array element type of a column whose first value is ``value``."""
    if isinstance(value, int):  # bool and IntEnum included: the integer columns
        return "bigint"
    if isinstance(value, bytes):  # records and trace entries of record format 2
        return "bytea"
    return "text"

# An arbitrary constant naming fairpath's migration lock among the database's advisory locks.
_MIGRATION_LOCK = 0x6661697270617468  # "fairpath"


def _translate(error: psycopg.Error) -> StoreError:
    # Only the SQLSTATE and the primary message: PostgreSQL's DETAIL can quote a whole failing row,
    # facts included, and whatever is raised here may end up in a log. Raised "from None" so the
    # driver's own exception, with that detail, is not chained into the traceback either.
    what = f"({error.sqlstate or 'no SQLSTATE'}): {error.diag.message_primary or type(error).__name__}"
    if isinstance(error, _RETRYABLE):
        return StoreUnavailableError(f"PostgreSQL store unavailable {what}")
    return StoreError(f"PostgreSQL store error {what}")


class PostgresStore(SqlStore):
    """The decision store in a PostgreSQL database."""

    def __init__(self, url: str) -> None:
        super().__init__(POSTGRES, lambda: PostgresSession(url), description=describe(url))
