"""The decision store interface, and :func:`open_store` to open one from a URL.

Two implementations pass one shared test suite: :class:`~fairpath.audit.sqlite.SqliteStore`
(``sqlite:///path``, the default) and :class:`~fairpath.audit.postgres.PostgresStore`
(``postgresql://…``). The trail is append-only: this interface has no method
that updates or deletes a decision or an outcome.

What comes next builds on the read side: replay selects decisions with
:meth:`DecisionStore.iter_decisions` (facts and trace decoded) and reads the
true values of masked facts with :meth:`DecisionStore.sensitive_facts`;
fairness statistics read :meth:`DecisionStore.iter_summaries` (indexed columns,
facts and equality group, no trace decoding).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Protocol

from fairpath.audit import halves
from fairpath.audit.migrations import POSTGRES, SQLITE, Migration, apply_migrations
from fairpath.audit.records import (
    ChainReport,
    DecisionFilter,
    DecisionSummary,
    NewDecision,
    NewOutcome,
    OutcomeRecord,
    StoredDecision,
)
from fairpath.audit.sessions import Session
from fairpath.audit.sql import SqlStore
from fairpath.config import SQLITE_PREFIX, STORE_SCHEMES
from fairpath.errors import FairpathError, StoreError


class DecisionStore(Protocol):
    """Where decisions and outcomes are recorded; safe to share between threads.

    Every method may raise :class:`~fairpath.errors.StoreUnavailableError` (the
    database cannot be reached or written now) or
    :class:`~fairpath.errors.StoreError` (anything else the database refuses).
    """

    #: How logs name the store: backend, host and database or file; never a password.
    description: str

    def append_decisions(self, batch: Sequence[NewDecision]) -> Sequence[StoredDecision | FairpathError]:
        """Append decisions in one transaction; return what is recorded for each, or why it was not.

        A request id its caller already recorded returns the first decision when the request is
        the same, or RequestIdReusedError when it is not; a record too large to read back is
        RecordTooLargeError. Neither appends anything, and neither fails the rest of the batch.
        """
        ...

    def append_groups(
        self, groups: Sequence[Sequence[NewDecision]]
    ) -> Sequence[Sequence[StoredDecision] | FairpathError]:
        """Append groups of decisions in one transaction, each group all or none (an incident's decisions).

        A group is refused whole, in its place, when any item would be refused alone or when only part
        of it repeats earlier requests; the other groups are recorded. A group that repeats every item
        gets the decisions first recorded.
        """
        ...

    def append_outcome(self, outcome: NewOutcome, *, recorded_at: datetime | None = None) -> OutcomeRecord:
        """Append an outcome record (DecisionNotFoundError when the decision is unknown)."""
        ...

    def get_decision(self, decision_id: str) -> StoredDecision:
        """Return one decision with its outcomes (DecisionNotFoundError when unknown)."""
        ...

    def find_by_request_id(self, request_id: str, *, caller: str = "") -> StoredDecision | None:
        """Return the decision ``caller`` recorded under a request id, if any."""
        ...

    def list_decisions(
        self, query: DecisionFilter, *, limit: int, after_sequence: int = 0, newest_first: bool = False
    ) -> list[StoredDecision]:
        """Return up to ``limit`` matching decisions following a sequence, oldest (or newest) first."""
        ...

    def iter_decisions(
        self, query: DecisionFilter, *, after_sequence: int = 0, chunk: int = 500
    ) -> Iterator[StoredDecision]:
        """Yield every matching decision, oldest first, a chunk at a time."""
        ...

    def iter_summaries(self, query: DecisionFilter, *, chunk: int = 2000) -> Iterator[DecisionSummary]:
        """Yield indexed columns, facts and equality group of matching decisions (no trace decoding)."""
        ...

    def equality_groups(self, decision_ids: Sequence[str]) -> dict[str, str]:
        """Return the equality group of each decision that has one."""
        ...

    def sensitive_facts(self, decision_ids: Sequence[str]) -> dict[str, dict[str, object]]:
        """Return the true values of masked facts, per decision (replay only; never for display)."""
        ...

    def verify_chain(self) -> ChainReport:
        """Walk the whole hash chain and report the first broken link.

        Also checks what queries read outside the hashed columns (rule rows, indexed columns)
        against the chained data, reporting the first decision that disagrees.
        """
        ...

    def chain_head(self) -> tuple[int, str]:
        """Return the chain head's last sequence and hash (what a checkpoint signs)."""
        ...

    def chain_hashes(self, sequences: Sequence[int]) -> dict[int, str]:
        """Return the hash of each existing record of ``sequences`` (to check checkpoints against)."""
        ...

    def close(self) -> None:
        """Release every connection."""
        ...


def check_url(url: str) -> str:
    """Return ``url`` if it names a store this fairpath can open.

    Raises:
        StoreError: Neither ``sqlite:///…`` nor ``postgresql://…``.

    """
    if url.startswith(STORE_SCHEMES):
        return url
    raise StoreError(
        f"store URL must start with {SQLITE_PREFIX} or postgresql://, got {url.split('://', maxsplit=1)[0]!r}"
    )


def open_store(url: str) -> DecisionStore:
    """Open (and migrate) the store ``url`` names.

    Raises:
        StoreUnavailableError: The database cannot be reached or written.
        StoreError: The URL is not supported, or the schema is newer than this fairpath.

    """
    check_url(url)
    store: SqlStore
    if url.startswith(SQLITE_PREFIX):
        from fairpath.audit.sqlite import SqliteStore  # noqa: PLC0415 - only the backend in use is loaded

        store = SqliteStore(url)
        url = f"sqlite:///{store.path.resolve()}"  # the child's working directory may differ
    else:
        from fairpath.audit.postgres import PostgresStore  # noqa: PLC0415

        store = PostgresStore(url)
    # A long chain's second half is verified in a child process that opens the store by its URL.
    store.walk_elsewhere = functools.partial(halves.start, walk_part, url)
    return store


def walk_part(url: str, first: int, last: int, chunk: int) -> halves.HalfWalk:
    """Walk records ``first`` to ``last`` of the store ``url`` (in a child process: verify's second half)."""
    store = open_store(url)
    try:
        assert isinstance(store, SqlStore)
        return store.walk_part(first, last, chunk=chunk)
    finally:
        store.close()


def migrate_store(url: str) -> tuple[int, list[Migration]]:
    """Apply the schema migrations the store ``url`` names lacks; return its version and the steps applied.

    What ``fairpath store migrate`` runs, as the database's owner; opening a store does the same
    when its role may.

    Raises:
        StoreUnavailableError: The database cannot be reached or written.
        StoreError: The URL is not supported, the schema is newer than this fairpath, or a step failed.

    """
    check_url(url)
    session: Session
    if url.startswith(SQLITE_PREFIX):
        from fairpath.audit.sqlite import SqliteSession, path_of  # noqa: PLC0415 - only the backend in use

        session, dialect = SqliteSession(path_of(url)), SQLITE
    else:
        from fairpath.audit.postgres import PostgresSession  # noqa: PLC0415

        session, dialect = PostgresSession(url), POSTGRES
    try:
        return apply_migrations(session, dialect)
    finally:
        session.close()
