"""The decision store over SQL, shared by the SQLite and PostgreSQL backends.

Writing. Every append runs in one transaction that holds the chain lock
(:meth:`Session.begin_append`), reads the chain head, assigns the next
sequences and hashes, inserts the rows and moves the head. Within a process
appends go through one writer connection, one batch at a time; across
processes the database's lock serialises them. A request id already recorded
is answered with the recorded decision instead of a new record: the check
runs under the lock, so two identical requests racing each other (in one
process or two) still leave one record.

Reading. Queries select by :class:`~fairpath.audit.records.DecisionFilter`
in sequence order, ``after_sequence`` being the keyset cursor: a page never
skips or repeats a record however many are appended meanwhile, because
sequences are assigned and committed in order.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from fairpath.audit import chain, queries
from fairpath.audit.codec import DecisionEncoder, dumps, from_micros, to_micros
from fairpath.audit.entries import TraceEntries
from fairpath.audit.migrations import migrate
from fairpath.audit.records import (
    ChainReport,
    DecisionFilter,
    DecisionSummary,
    NewDecision,
    NewOutcome,
    OutcomeRecord,
    StoredDecision,
)
from fairpath.audit.sessions import Row, Session, SessionPool
from fairpath.errors import DecisionNotFoundError, StoreUnavailableError

_T = TypeVar("_T")
# What an append's work returns: its result, (statement, rows) to write, and the new head (sequence, hash).
_Work = tuple[_T, list[tuple[str, Sequence[Sequence[object]]]], int, str]


@dataclass
class _Pending:
    """One decision encoded for the database, waiting for its place in the chain."""

    item: NewDecision
    values: tuple[str | int, ...]
    entries: dict[str, str]  # digest -> JSON of the trace entries the document refers to
    fired: tuple[str, ...]
    equality: tuple[str, str] | None  # (salt, group)
    sensitive: tuple[str, str] | None  # (salt, facts JSON)


class SqlStore:
    """A :class:`~fairpath.audit.store.DecisionStore` over a backend's sessions.

    Args:
        dialect: ``"sqlite"`` or ``"postgresql"`` (which migration statements to run).
        connect: Opens a new session; raises StoreUnavailableError when it cannot.
        description: How logs name the store (never a password).

    Raises:
        StoreUnavailableError: The database cannot be reached or migrated now.
        StoreError: The schema is newer than this fairpath, or the database is corrupt.

    """

    def __init__(self, dialect: str, connect: Callable[[], Session], *, description: str) -> None:
        self.dialect = dialect
        self.description = description
        self._connect = connect
        self._encoder = DecisionEncoder()
        self._entries = TraceEntries()
        self._pool = SessionPool(connect)
        self._write_lock = threading.Lock()
        self._writer: Session | None = None
        try:
            with self._pool.session() as session:
                self.schema_version = migrate(session, dialect)
        except BaseException:
            self._pool.close()  # nothing else will: the caller never gets the store
            raise

    # --- writing -------------------------------------------------------------------

    def append_decisions(self, batch: Sequence[NewDecision]) -> list[StoredDecision]:
        """Append decisions in one transaction; return what is recorded for each, in order.

        An item whose request id is already recorded (earlier, or earlier in the batch)
        appends nothing and gets the first decision recorded under that id.

        Raises:
            StoreUnavailableError: Nothing was recorded (the transaction rolled back).

        """
        pending = [self._encode(item) for item in batch]  # CPU work, done before taking the lock
        request_ids = list(dict.fromkeys(p.item.decision.request_id for p in pending))
        request_ids = [request_id for request_id in request_ids if request_id]

        def work(found: list[list[Row]], sequence: int, head: str) -> _Work[list[StoredDecision | str]]:
            first = {str(request_id): str(decision_id) for rs in found for request_id, decision_id in rs}
            results: list[StoredDecision | str] = []
            entries: dict[str, str] = {}
            rows: list[Sequence[object]] = []
            rules: list[Sequence[object]] = []
            equality: list[Sequence[object]] = []
            sensitive: list[Sequence[object]] = []
            for p in pending:
                request_id, decision_id = p.item.decision.request_id, p.item.decision.decision_id
                if request_id in first:
                    results.append(first[request_id])  # read back once the lock is released
                    continue
                if request_id:
                    first[request_id] = decision_id
                sequence += 1
                digest = chain.link_hash(sequence, head, chain.DECISION, p.values)
                rows.append((sequence, *p.values, head, digest))
                rules += [(rule_id, sequence) for rule_id in p.fired]
                if p.equality:
                    equality.append((decision_id, p.equality[1], p.equality[0]))
                if p.sensitive:
                    sensitive.append((decision_id, p.sensitive[1], p.sensitive[0]))
                entries.update(p.entries)
                results.append(_stored(p.item, sequence, digest, head))
                head = digest
            # Entries first: a decision row never refers to an entry that is not there.
            writes: list[tuple[str, Sequence[Sequence[object]]]] = [
                (queries.INSERT_ENTRY, self._entries.unstored(entries)), (queries.INSERT_DECISION, rows),
                (queries.INSERT_RULE, rules), (queries.INSERT_EQUALITY, equality),
                (queries.INSERT_SENSITIVE, sensitive),
            ]
            return results, writes, sequence, head

        recorded = self._append(queries.request_id_lookups(request_ids), work)
        self._entries.mark_stored(digest for p in pending for digest in p.entries)
        return [r if isinstance(r, StoredDecision) else self.get_decision(r) for r in recorded]

    def append_outcome(self, outcome: NewOutcome, *, recorded_at: datetime | None = None) -> OutcomeRecord:
        """Append what people did after decision ``outcome.decision_id``, as its own record.

        Raises:
            DecisionNotFoundError: No such decision is recorded.
            StoreUnavailableError: Nothing was recorded.

        """
        recorded_us = to_micros(recorded_at or datetime.now(UTC))

        def work(found: list[list[Row]], sequence: int, head: str) -> _Work[OutcomeRecord]:
            if not found[0]:
                raise DecisionNotFoundError(outcome.decision_id)
            pathway = str(found[0][0][0])
            # No pathway (NEEDS_INFORMATION) means no recommendation, so nothing to depart from.
            departs = bool(pathway) and outcome.action_taken != pathway
            values = (outcome.decision_id, outcome.action_taken, outcome.reviewer, outcome.reason,
                      recorded_us, int(departs))
            sequence += 1
            digest = chain.link_hash(sequence, head, chain.OUTCOME, values)
            record = OutcomeRecord(
                sequence, outcome.decision_id, outcome.action_taken, outcome.reviewer, outcome.reason,
                from_micros(recorded_us), departs, digest, head,
            )
            return record, [(queries.INSERT_OUTCOME, [(sequence, *values, head, digest)])], sequence, digest

        return self._append([(queries.PATHWAY_OF, (outcome.decision_id,))], work)

    def _append(
        self,
        lookups: Sequence[tuple[str, Sequence[object]]],
        work: Callable[[list[list[Row]], int, str], _Work[_T]],
    ) -> _T:
        """Append in one transaction holding the chain lock.

        ``lookups`` run under the lock; ``work`` gets their rows and the chain head and
        returns its result, the rows to write, and where the head moves to.
        """
        with self._write_lock:
            session = self._writer or self._connect()
            self._writer = session
            try:
                sequence, head, found = session.begin_append(lookups)
                result, writes, last, last_hash = work(found, sequence, head)
                if last != sequence:
                    writes.append((queries.MOVE_HEAD, [(last, last_hash)]))
                session.finish_append([(sql, rows) for sql, rows in writes if rows])
            except StoreUnavailableError:
                # The connection may be what failed: start the next append on a fresh one.
                session.rollback()
                session.close()
                self._writer = None
                raise
            except BaseException:
                session.rollback()
                raise
            return result

    def _encode(self, item: NewDecision) -> _Pending:
        d = item.decision
        equality = (chain.new_salt(), item.equality_group) if item.equality_group else None
        sensitive = (chain.new_salt(), dumps(dict(item.sensitive_facts))) if item.sensitive_facts else None
        encoded = self._encoder.encode(d)
        fired = tuple(dict.fromkeys(d.fired))
        # In the order of chain.DECISION_COLUMNS.
        values: tuple[str | int, ...] = (
            d.decision_id, d.request_id, d.caller, to_micros(d.evaluated_at),
            d.policy.name, d.policy.version, d.policy.digest, d.status.value,
            d.pathway.code if d.pathway else "", int(bool(d.pathway and d.pathway.individual_directed)),
            d.subject.incident_ref, d.subject.staff_ref, d.subject.action_ref, item.duration_us,
            dumps(list(fired)), dumps(list(item.masked_facts)), dumps(dict(item.facts)),
            encoded.document,
            chain.commitment(*equality) if equality else "",
            chain.commitment(*sensitive) if sensitive else "",
        )
        return _Pending(item, values, encoded.entries, fired, equality, sensitive)

    # --- reading -------------------------------------------------------------------

    def get_decision(self, decision_id: str) -> StoredDecision:
        """Return one recorded decision with its outcomes.

        Raises:
            DecisionNotFoundError: No such decision is recorded.

        """
        with self._pool.session() as session:
            found = queries.decisions(
                session, "d.decision_id = ?", [decision_id], 1, self._entries.resolve
            )
        if not found:
            raise DecisionNotFoundError(decision_id)
        return found[0]

    def find_by_request_id(self, request_id: str) -> StoredDecision | None:
        """Return the decision recorded under ``request_id``, if any."""
        if not request_id:
            return None
        with self._pool.session() as session:
            found = queries.decisions(
                session, "d.request_id <> '' AND d.request_id = ?", [request_id], 1, self._entries.resolve
            )
        return found[0] if found else None

    def list_decisions(
        self, query: DecisionFilter, *, limit: int, after_sequence: int = 0
    ) -> list[StoredDecision]:
        """Return up to ``limit`` matching decisions with sequence above ``after_sequence``, oldest first."""
        clause, params = queries.where(query, after_sequence)
        with self._pool.session() as session:
            return queries.decisions(session, clause, params, limit, self._entries.resolve)

    def iter_decisions(
        self, query: DecisionFilter, *, after_sequence: int = 0, chunk: int = 500
    ) -> Iterator[StoredDecision]:
        """Yield every matching decision, oldest first, ``chunk`` at a time (no transaction held open)."""
        while True:
            page = self.list_decisions(query, limit=chunk, after_sequence=after_sequence)
            yield from page
            if len(page) < chunk:
                return
            after_sequence = page[-1].sequence

    def iter_summaries(self, query: DecisionFilter, *, chunk: int = 2000) -> Iterator[DecisionSummary]:
        """Yield the indexed columns, facts and equality group of every matching decision, oldest first.

        Cheaper than :meth:`iter_decisions` (no trace is decoded): meant for statistics.
        """
        after = 0
        while True:
            clause, params = queries.where(query, after)
            with self._pool.session() as session:
                page = queries.summaries(session, clause, params, chunk)
            yield from page
            if len(page) < chunk:
                return
            after = page[-1].sequence

    def equality_groups(self, decision_ids: Sequence[str]) -> dict[str, str]:
        """Return the equality group recorded for each of ``decision_ids`` that has one."""
        with self._pool.session() as session:
            rows = queries.side_values(session, "decision_equality", "equality_group", decision_ids)
        return {str(decision_id): str(group) for decision_id, group in rows}

    def sensitive_facts(self, decision_ids: Sequence[str]) -> dict[str, dict[str, object]]:
        """Return the true values of the masked facts of each of ``decision_ids`` (for replay only)."""
        with self._pool.session() as session:
            rows = queries.side_values(session, "decision_sensitive_facts", "facts", decision_ids)
        return {str(decision_id): json.loads(facts) for decision_id, facts in rows}

    # --- verifying -----------------------------------------------------------------

    def verify_chain(self, *, chunk: int = 2000) -> ChainReport:
        """Walk the whole chain, from one consistent snapshot, and report the first broken link."""
        with self._pool.session() as session:
            session.begin_snapshot()
            try:
                head_sequence, head_hash = session.query(queries.HEAD)[0]
                stored, bad = queries.entry_problems(session, chunk)
                top = session.query(
                    "SELECT (SELECT COALESCE(MAX(sequence), 0) FROM decisions),"
                    " (SELECT COALESCE(MAX(sequence), 0) FROM outcomes)"
                )[0]
                # Walk as far as any record goes, so records beyond the head are checked too.
                last = max(int(head_sequence), int(top[0]), int(top[1]))
                walk = (
                    link
                    for start in range(1, last + 1, chunk)
                    for link in queries.links(session, start, start + chunk, stored, bad)
                )
                return chain.verify(walk, int(head_sequence), str(head_hash))
            finally:
                session.rollback()

    def close(self) -> None:
        """Close every connection; the store cannot be used afterwards."""
        with self._write_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        self._pool.close()


def _stored(item: NewDecision, sequence: int, digest: str, previous: str) -> StoredDecision:
    return StoredDecision(
        sequence, item.decision, dict(item.facts), item.masked_facts, item.duration_us / 1000, digest,
        previous,
    )
