"""SessionPool.read: a read is retried once on a new connection only when its pooled one was found gone."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import pytest
from fairpath.audit.sessions import Lookups, Row, SessionPool, Writes
from fairpath.errors import StoreUnavailableError


class _Session:
    """A connection that answers reads, or fails them once it is marked dead (``gone``) or refusing."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.gone = False
        self.refusing = False
        self.closed = False

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        if self.gone or self.refusing:
            raise StoreUnavailableError(f"{self.name} cannot answer")
        return [(self.name,)]

    def execute_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        raise NotImplementedError

    def begin_append(self, lookups: Lookups = ()) -> tuple[int, str, list[list[Row]]]:
        raise NotImplementedError

    def finish_append(self, writes: Writes) -> None:
        raise NotImplementedError

    def begin_migration(self) -> None:
        raise NotImplementedError

    def begin_snapshot(self) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def lost(self) -> bool:
        return self.gone


class _Database:
    """Hands out numbered sessions and remembers them."""

    def __init__(self) -> None:
        self.opened: list[_Session] = []

    def connect(self) -> _Session:
        session = _Session(f"s{len(self.opened)}")
        self.opened.append(session)
        return session


def _warm(pool: SessionPool, count: int) -> None:
    """Leave ``count`` sessions idle in the pool (as after that many concurrent reads)."""
    with contextlib.ExitStack() as stack:
        for _ in range(count):
            stack.enter_context(pool.session())


def test_a_read_on_a_dead_pooled_connection_is_retried_once_on_a_new_one() -> None:
    """Every idle connection died together (a database restart): the read answers, on a fresh connection."""
    database = _Database()
    pool = SessionPool(database.connect)
    _warm(pool, 3)
    for session in database.opened:
        session.gone = True

    answer = pool.read(lambda session: session.query("SELECT 1"))

    assert answer == [("s3",)]
    assert all(session.closed for session in database.opened[:3])  # the other dead ones are dropped too
    assert pool.read(lambda session: session.query("SELECT 1")) == [("s3",)]


def test_a_refused_read_is_not_retried() -> None:
    """A connection that is alive but refused (locked, disk full) gives the same answer again: no retry."""
    database = _Database()
    pool = SessionPool(database.connect)
    _warm(pool, 1)
    database.opened[0].refusing = True

    with pytest.raises(StoreUnavailableError, match="s0"):
        pool.read(lambda session: session.query("SELECT 1"))

    assert len(database.opened) == 1


def test_a_read_failing_on_a_new_connection_is_not_retried() -> None:
    """With nothing pooled the connection is fresh: if it fails, the database really is unavailable."""
    database = _Database()

    def connect() -> _Session:
        session = database.connect()
        session.gone = True
        return session

    pool = SessionPool(connect)

    with pytest.raises(StoreUnavailableError, match="s0"):
        pool.read(lambda session: session.query("SELECT 1"))

    assert len(database.opened) == 1
