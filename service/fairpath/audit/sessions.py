"""Database sessions: the small interface the SQL store is written against, and a pool of them.

Each backend (:mod:`fairpath.audit.sqlite`, :mod:`fairpath.audit.postgres`)
adapts its driver to :class:`Session`: ``?`` placeholders, rows as tuples,
explicit transactions, and driver exceptions already translated into
:class:`~fairpath.errors.StoreUnavailableError` (cannot reach or write the
database: retrying later may work) or :class:`~fairpath.errors.StoreError`
(anything else). The SQL store above never sees a driver exception.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from fairpath.errors import StoreUnavailableError

_T = TypeVar("_T")
Row = tuple[Any, ...]
#: Statements to run with their parameters.
Lookups = Sequence[tuple[str, Sequence[object]]]
#: Statements to run once per parameter row.
Writes = Sequence[tuple[str, Sequence[Sequence[object]]]]


class Session(Protocol):
    """One database connection, used by one thread at a time."""

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run one statement and return its rows (an empty list for statements without rows)."""
        ...

    def execute_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run one statement once per parameter row."""
        ...

    def begin_append(self, lookups: Lookups = ()) -> tuple[int, str, list[list[Row]]]:
        """Start a write transaction holding the chain lock; return the head and the lookups' rows.

        Only one transaction across every process writing the database holds the lock at a time,
        so appends are numbered and hashed strictly one after another. ``lookups`` (statement,
        parameters) run after the lock is taken, so what they read cannot change before commit.

        Returns:
            The head's sequence and hash, and the rows of each lookup in order.

        """
        ...

    def finish_append(self, writes: Writes) -> None:
        """Run each ``(statement, parameter rows)`` write, then commit (the lock is released)."""
        ...

    def begin_migration(self) -> None:
        """Start a write transaction that no other process can run beside (schema changes)."""
        ...

    def begin_snapshot(self) -> None:
        """Start a read-only transaction that sees one consistent state (verification)."""
        ...

    def commit(self) -> None:
        """Commit the transaction; once this returns the records survive a process kill."""
        ...

    def rollback(self) -> None:
        """Abandon the transaction, if one is open; never raises."""
        ...

    def close(self) -> None:
        """Close the connection; never raises."""
        ...

    def lost(self) -> bool:
        """Return True when the connection is known to be gone (e.g. its server process was ended).

        Only then is a read retried on a new connection: a connection that is merely refused
        (a lock held too long, a full disk) gives the same answer again.
        """
        ...


class SessionPool:
    """Reusable sessions for reads: taken per call, returned after, dropped when broken.

    Never blocks: when every idle session is in use a new one is opened, and at
    most ``keep`` idle ones are kept (the gRPC thread pool already bounds how many
    calls run at once).
    """

    def __init__(self, connect: Callable[[], Session], keep: int = 4) -> None:
        self._connect = connect
        self._keep = keep
        self._idle: list[Session] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Lend a session for the duration of the block."""
        with self._lock:
            session = self._idle.pop() if self._idle else None
        if session is None:
            session = self._connect()
        with self._returned(session):
            yield session

    def read(self, work: Callable[[Session], _T]) -> _T:
        """Run ``work`` (reads only) on a lent session; once more on a new connection if a pooled one was stale.

        After the database restarts or ends the store's server processes, every idle connection
        is dead but does not know it until used: the first read would fail for no reason the
        caller could act on. Only reads are retried, never a write: a write that failed may
        still have committed.
        """
        with self._lock:
            session = self._idle.pop() if self._idle else None
        if session is not None:
            try:
                return self._run(session, work)
            except StoreUnavailableError:
                if not session.lost():
                    raise
                self._drop_idle()  # opened before the same outage: as dead as this one
        return self._run(self._connect(), work)

    def _run(self, session: Session, work: Callable[[Session], _T]) -> _T:
        with self._returned(session):
            return work(session)

    @contextmanager
    def _returned(self, session: Session) -> Iterator[None]:
        """Give ``session`` back to the pool after the block; close it instead if the store broke."""
        try:
            yield
        except StoreUnavailableError:
            # The connection may be the thing that broke; a fresh one is cheap.
            session.close()
            raise
        except BaseException:
            session.rollback()
            self._give_back(session)
            raise
        self._give_back(session)

    def _drop_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for session in idle:
            session.close()

    def _give_back(self, session: Session) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self._keep:
                self._idle.append(session)
                return
        session.close()

    def close(self) -> None:
        """Close every idle session; sessions still lent out are closed when given back."""
        with self._lock:
            self._closed = True
        self._drop_idle()
