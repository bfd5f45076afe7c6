"""The SQLite backend: an embedded file, nothing to set up (the default store).

Durability. The database runs in WAL mode with ``synchronous=NORMAL``: a
commit appends the transaction to the write-ahead log with ``write()`` and
returns without ``fsync``; the log is synced at checkpoints. A transaction
that committed therefore survives the *process* being killed (SIGKILL, OOM,
a crash): the bytes are in the operating system's page cache and the next
open replays the log. What it does not survive is the *machine* losing power
or the kernel crashing before the next checkpoint: the last commits may
then be lost (never corrupted). ``synchronous=FULL`` would close that gap at
the price of one fsync per commit; run PostgreSQL (whose commits are synced,
``synchronous_commit=on``) where that matters. Appends from several threads
are grouped into one transaction (:mod:`fairpath.audit.batching`), which is
what keeps either setting affordable.

Several processes may share one file (``fairpath serve --workers N``):
``BEGIN IMMEDIATE`` takes SQLite's single write lock, which serialises
appends to the chain across processes; readers are never blocked in WAL mode.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from fairpath.audit.migrations import SQLITE
from fairpath.audit.queries import HEAD
from fairpath.audit.sessions import Lookups, Row, Writes
from fairpath.audit.sql import SqlStore
from fairpath.errors import StoreError, StoreUnavailableError

#: How long a writer waits for another process's write lock before giving up (UNAVAILABLE).
BUSY_TIMEOUT_SECONDS = 10.0


def path_of(url: str) -> str:
    """Return the file path of a ``sqlite:///relative`` or ``sqlite:////absolute`` URL.

    Raises:
        StoreError: The URL names no file, or an in-memory database (which each connection
            would see separately).

    """
    path = url.removeprefix("sqlite://")
    path = path[1:] if path.startswith("/") else path
    if not path or path == ":memory:" or path.startswith("file:"):
        raise StoreError(f"sqlite store URL must name a file, e.g. sqlite:///fairpath.sqlite3, got {url!r}")
    return path


class SqliteSession:
    """A :class:`~fairpath.audit.sessions.Session` over one :mod:`sqlite3` connection."""

    def __init__(self, path: str, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        try:
            # Autocommit mode (isolation_level=None): transactions are begun explicitly below.
            # Sessions are pooled and may move between threads, one thread at a time.
            self._conn = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=busy_timeout
            )
        except sqlite3.Error as error:
            raise StoreUnavailableError(f"cannot open the sqlite store {path}: {error}") from error
        try:
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreUnavailableError(f"cannot put the sqlite store {path} in WAL mode (got {mode})")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as error:
            self._conn.close()
            raise _translate(error) from None

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run one statement and return its rows (text that is not UTF-8 read with U+FFFD in its place)."""
        try:
            return self._conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as error:
            if not str(error).startswith(_NOT_UTF8):
                raise _translate(error) from None
        # fairpath writes only UTF-8: such bytes were put there in the database. Read again, replacing
        # them, so verify reports that record's hash broken; the default decoding raises (a store
        # "unavailable") quoting the text, perhaps facts. Only now: the default is twice as fast.
        # The statement is a read (only reads return text), so running it again is safe.
        self._conn.text_factory = _TEXT
        try:
            return self._conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as error:
            raise _translate(error) from None
        finally:
            self._conn.text_factory = str

    def execute_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run one statement once per parameter row."""
        try:
            self._conn.executemany(sql, rows)
        except sqlite3.Error as error:
            raise _translate(error) from None

    def begin_append(self, lookups: Lookups = ()) -> tuple[int, str, list[list[Row]]]:
        """Take the database's one write lock at once (BEGIN IMMEDIATE), then read the head and lookups."""
        self.query("BEGIN IMMEDIATE")
        sequence, head = self.query(HEAD)[0]
        return int(sequence), str(head), [self.query(sql, params) for sql, params in lookups]

    def finish_append(self, writes: Writes) -> None:
        """Run the writes and commit."""
        for sql, rows in writes:
            self.execute_many(sql, rows)
        self.commit()

    def begin_migration(self) -> None:
        """BEGIN IMMEDIATE: one migrating process at a time."""
        self.query("BEGIN IMMEDIATE")

    def begin_snapshot(self) -> None:
        """Start a deferred transaction: it reads one snapshot of the WAL from its first read on."""
        self.query("BEGIN")

    def commit(self) -> None:
        """Commit the open transaction."""
        self.query("COMMIT")

    def rollback(self) -> None:
        """Roll back the open transaction, if any."""
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the connection is being abandoned anyway

    def close(self) -> None:
        """Close the connection."""
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def lost(self) -> bool:
        """Always False: an embedded database has no connection to lose."""
        return False


#: Decodes a TEXT value, invalid UTF-8 (written behind fairpath's back) replaced rather than raised.
_TEXT = functools.partial(str, encoding="utf-8", errors="replace")
#: How sqlite3 starts the message of a TEXT value it cannot decode.
_NOT_UTF8 = "Could not decode to UTF-8"


def _translate(error: sqlite3.Error) -> StoreError:
    # SQLite's messages name tables and columns, never values; still raised "from None" (as the
    # PostgreSQL backend does) so no driver exception is chained into logged tracebacks.
    # OperationalError covers locked, read-only, unopenable, disk full and I/O errors: the store is
    # unavailable now and may be later. Integrity or "not a database" errors are defects or corruption.
    if isinstance(error, sqlite3.OperationalError):
        return StoreUnavailableError(f"sqlite store unavailable: {error}")
    return StoreError(f"sqlite store error: {error}")


class SqliteStore(SqlStore):
    """The decision store in one SQLite file.

    Args:
        url: ``sqlite:///relative/path`` or ``sqlite:////absolute/path``.
        busy_timeout: Seconds an append waits for another process's write lock.

    """

    def __init__(self, url: str, *, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        path = path_of(url)
        self.path = Path(path)
        super().__init__(SQLITE, lambda: SqliteSession(path, busy_timeout), description=f"sqlite:///{path}")
