"""The decision store over SQL, shared by the SQLite and PostgreSQL backends.

Writing. Every append runs in one transaction that holds the chain lock
(:meth:`Session.begin_append`), reads the chain head, assigns the next
sequences and hashes, inserts the rows and moves the head. Within a process
appends go through one writer connection, one batch at a time; across
processes the database's lock serialises them. A request id its caller
already recorded is answered with the recorded decision instead of a new
record when the request is the same, and refused when it is not
(:mod:`fairpath.audit.requests`): the check runs under the lock, so two
identical requests racing each other (in one process or two) still leave one
record. An item refused (a reused id, a record too large to read back) is
refused alone: the rest of its batch is recorded.

Reading. Queries select by :class:`~fairpath.audit.records.DecisionFilter`
in sequence order, ``after_sequence`` being the keyset cursor: a page never
skips or repeats a record however many are appended meanwhile, because
sequences are assigned and committed in order. Listed newest first, the
cursor bounds the sequence from above and the same index is read backwards;
records appended meanwhile are newer than the first page, so they are not
listed until the caller starts again. Each page is one range of one index in
sequence order, whatever the filter (:class:`~fairpath.audit.queries.Selection`),
and streams (export, replay, stats) are such pages one after another, each a
read of its own: memory holds a page, never the trail.

A read retries once, on a new connection, when its pooled connection turns
out to be gone (:meth:`~fairpath.audit.sessions.SessionPool.read`); an append
does so only while taking the chain lock, before it has written anything.

Verifying walks the chain and also checks what queries read outside the
hashed columns against them (:func:`fairpath.audit.queries.links`), and
reports the earliest record with a problem of either kind. It never raises
on a record edited in the database: what cannot be decoded is a problem of
that record, while reading such a record raises a
:class:`~fairpath.errors.CorruptRecordError` naming it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import structlog

from fairpath.audit import chain, halves, queries, requests
from fairpath.audit.codec import (
    JSON_DOCUMENT,
    RECORD_FORMAT,
    WIRE_RECORD,
    DecisionEncoder,
    dumps,
    from_micros,
    to_micros,
)
from fairpath.audit.entries import TraceEntries
from fairpath.audit.migrations import apply_migrations
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
from fairpath.errors import (
    CorruptRecordError,
    DecisionNotFoundError,
    FairpathError,
    FieldViolation,
    InvalidRequestError,
    RecordTooLargeError,
    RequestIdReusedError,
    StoreUnavailableError,
)
from fairpath.wire import DecisionWire

_log = structlog.get_logger(__name__)

#: Fewest characters of a decision id that ``get_decision`` looks up as a prefix, and an id's full length.
MIN_ID_PREFIX, ID_LENGTH = 8, 36
_ID_CHARS = frozenset("0123456789abcdef-")
#: Ids an ambiguous prefix lists.
_AMBIGUOUS_SHOWN = 5

#: Largest record written, in bytes as read back: below gRPC's default 4 MiB message limit, with room
#: for the protobuf framing and the outcomes appended later. A record that could not be returned is not written.
MAX_RECORD_BYTES = 3 * 1024 * 1024

_T = TypeVar("_T")
_Sequenced = TypeVar("_Sequenced", StoredDecision, DecisionSummary)
# What an append's work returns: its result, (statement, rows) to write, and the new head (sequence, hash).
_Work = tuple[_T, list[tuple[str, Sequence[Sequence[object]]]], int, str]
# What appending groups returns under the lock: each group's result (records, ids of repeated decisions
# to read back, or its refusal), and the trace entries written.
_Done = tuple[list["list[StoredDecision | str] | FairpathError"], dict[str, str | bytes]]


@dataclass
class _Rows:
    """Rows staged for one append (or for one group of it, until the group is known to be kept)."""

    rows: dict[int, list[Sequence[object]]] = field(default_factory=dict)  # by record format
    rules: list[Sequence[object]] = field(default_factory=list)
    equality: list[Sequence[object]] = field(default_factory=list)
    sensitive: list[Sequence[object]] = field(default_factory=list)
    entries: dict[str, str | bytes] = field(default_factory=dict)  # digest -> JSON (format 1) or bytes (2)
    #: Request ids recorded by these rows, (caller, request id) -> what was recorded.
    recorded: dict[tuple[str, str], requests.RecordedRequest] = field(default_factory=dict)
    #: The chain head after these rows (0 and "" when there are none).
    sequence: int = 0
    head: str = ""

    def extend(self, other: _Rows) -> None:
        """Add ``other``'s rows after these."""
        for layout, rows in other.rows.items():
            self.rows.setdefault(layout, []).extend(rows)
        self.rules += other.rules
        self.equality += other.equality
        self.sensitive += other.sensitive
        self.entries.update(other.entries)


@dataclass
class _Pending:
    """One decision encoded for the database, waiting for its place in the chain."""

    item: NewDecision
    layout: int  # its record format, which is its link's layout
    values: tuple[str | int | bytes, ...]  # the hashed columns of its record format
    entries: Mapping[str, str | bytes]  # digest -> each trace entry the record refers to, encoded
    fired: tuple[str, ...]
    equality: tuple[str, str] | None  # (salt, group)
    sensitive: tuple[str, str] | None  # (salt, facts JSON)
    request_digest: str


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
        #: Walks the second half of a long chain in another process (:mod:`fairpath.audit.halves`);
        #: None walks the whole chain here. :func:`fairpath.audit.store.open_store` sets it.
        self.walk_elsewhere: halves.Starter | None = None
        self._connect = connect
        #: The record format new decisions are written in (:mod:`fairpath.audit.codec`). Format 1 stays
        #: writable so that tests can make the trail an older fairpath wrote.
        self.record_format = RECORD_FORMAT
        self._encoder = DecisionEncoder()
        self._wire = DecisionWire()  # for decisions that come without their version's
        self._entries = TraceEntries()
        self._pool = SessionPool(connect)
        self._write_lock = threading.Lock()
        self._writer: Session | None = None
        try:
            with self._pool.session() as session:
                #: The schema version, and the migration steps opening this store applied (usually none).
                self.schema_version, self.migrated = apply_migrations(session, dialect)
        except BaseException:
            self._pool.close()  # nothing else will: the caller never gets the store
            raise

    # --- writing -------------------------------------------------------------------

    def append_decisions(self, batch: Sequence[NewDecision]) -> list[StoredDecision | FairpathError]:
        """Append decisions in one transaction; return what is recorded for each, in order.

        An item whose request id its caller already recorded (earlier, or earlier in the batch)
        appends nothing: it gets the first decision recorded under that id when it repeats that
        request, else a :class:`~fairpath.errors.RequestIdReusedError` (:mod:`fairpath.audit.requests`).
        An item too large to be read back gets a :class:`~fairpath.errors.RecordTooLargeError` and is
        not written. Either error is returned in the item's place, so the rest of the batch is recorded.

        Raises:
            StoreUnavailableError: Nothing was recorded (the transaction rolled back).

        """
        return [
            found if isinstance(found, FairpathError) else found[0]
            for found in self.append_groups([(item,) for item in batch])
        ]

    def append_groups(
        self, groups: Sequence[Sequence[NewDecision]]
    ) -> list[list[StoredDecision] | FairpathError]:
        """Append groups of decisions in one transaction, each group all or none; return each group's.

        Each group is what one request records (one decision, or an incident's). A group is refused
        whole, nothing of it written, when any of its items would be refused alone (too large, a
        request id reused for a different request), or when only part of it repeats what was
        recorded before (a repeat is a repeat of every item): the first error is returned in the
        group's place, and the other groups are recorded. A group every item of which repeats gets
        the decisions first recorded.

        Raises:
            StoreUnavailableError: Nothing was recorded (the transaction rolled back).

        """
        # CPU work, done before taking the lock.
        encoded = [[self._encode_or_refuse(item) for item in group] for group in groups]
        pending = [p for group in encoded for p in group if isinstance(p, _Pending)]
        by_caller: dict[str, list[str]] = {}
        for p in pending:
            if p.item.decision.request_id:
                by_caller.setdefault(p.item.decision.caller, []).append(p.item.decision.request_id)
        lookups = [
            lookup for caller, ids in by_caller.items()
            for lookup in queries.request_id_lookups(caller, list(dict.fromkeys(ids)))
        ]

        def work(found: list[list[Row]], sequence: int, head: str) -> _Work[_Done]:
            first = dict(queries.recorded_request(row) for rs in found for row in rs)
            batch = _Rows()
            results: list[list[StoredDecision | str] | FairpathError] = []
            for group in encoded:
                staged = _Rows()
                outcome = self._stage(group, first, staged, sequence, head)
                if isinstance(outcome, FairpathError):
                    results.append(outcome)  # nothing of the group is kept: all or none
                    continue
                batch.extend(staged)
                first.update(staged.recorded)
                sequence, head = staged.sequence or sequence, staged.head or head
                results.append(outcome)
            # Entries first: a decision row never refers to an entry that is not there.
            writes: list[tuple[str, Sequence[Sequence[object]]]] = [
                *_entry_writes(self._entries.unstored(batch.entries)),
                *((queries.INSERT_DECISIONS[layout], rows) for layout, rows in batch.rows.items()),
                (queries.INSERT_RULE, batch.rules), (queries.INSERT_EQUALITY, batch.equality),
                (queries.INSERT_SENSITIVE, batch.sensitive),
            ]
            return (results, batch.entries), writes, sequence, head

        recorded, entries = self._append(lookups, work)
        # Only what was written: a refused group's entries may not be in the table.
        self._entries.mark_stored(entries)
        return [
            outcome if isinstance(outcome, FairpathError)
            else [self.get_decision(r) if isinstance(r, str) else r for r in outcome]
            for outcome in recorded
        ]

    def _stage(
        self,
        group: Sequence[_Pending | FairpathError],
        first: Mapping[tuple[str, str], requests.RecordedRequest],
        staged: _Rows,
        sequence: int,
        head: str,
    ) -> list[StoredDecision | str] | FairpathError:
        """Stage ``group``'s rows in ``staged`` after (``sequence``, ``head``); return its result or refusal.

        Each item gets its new record, or the id of the decision its request id already recorded (a
        repeat). A refusal leaves ``staged`` to be thrown away.
        """
        outcome: list[StoredDecision | str] = []
        for p in group:
            if not isinstance(p, _Pending):
                return p
            d = p.item.decision
            key = (d.caller, d.request_id)
            earlier = (staged.recorded.get(key) or first.get(key)) if d.request_id else None
            if earlier is not None:
                # Read back once the lock is released; never another caller's, never other data's.
                if not requests.is_repeat(earlier, p.item, p.request_digest):
                    return RequestIdReusedError(d.request_id)
                outcome.append(earlier.decision_id)
                continue
            if d.request_id:
                staged.recorded[key] = requests.recorded(p.item, p.request_digest)
            sequence += 1
            digest = chain.link_hash(sequence, head, chain.DECISION, p.values, p.layout)
            staged.rows.setdefault(p.layout, []).append(
                (sequence, *p.values, head, digest, p.request_digest, *queries.ROW_TAIL[p.layout])
            )
            staged.rules += [(rule_id, sequence) for rule_id in p.fired]
            if p.equality:
                staged.equality.append((d.decision_id, p.equality[1], p.equality[0]))
            if p.sensitive:
                staged.sensitive.append((d.decision_id, p.sensitive[1], p.sensitive[0]))
            staged.entries.update(p.entries)
            outcome.append(_stored(p.item, sequence, digest, head))
            head = digest
            staged.sequence, staged.head = sequence, head
        repeats = [r for r in outcome if isinstance(r, str)]
        if repeats and len(repeats) < len(outcome):
            # Part recorded before, part new: not a repeat of one request, so a reuse of its id.
            return RequestIdReusedError(next(p.item.decision.request_id for p in group if isinstance(p, _Pending)))
        return outcome

    def append_outcome(self, outcome: NewOutcome, *, recorded_at: datetime | None = None) -> OutcomeRecord:
        """Append what people did after decision ``outcome.decision_id``, as its own record.

        Raises:
            DecisionNotFoundError: No such decision is recorded.
            StoreUnavailableError: Nothing was recorded.

        """
        recorded_us = to_micros(recorded_at or datetime.now(UTC))

        def work(found: list[list[Row]], sequence: int, head: str) -> _Work[OutcomeRecord]:
            if not found[0]:
                short = len(outcome.decision_id) < ID_LENGTH and _ID_CHARS.issuperset(outcome.decision_id)
                # An outcome names its decision for good: only the whole id will do, never a prefix.
                raise DecisionNotFoundError(outcome.decision_id, "an outcome needs the whole id" if short else "")
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
            kept = self._writer is not None
            session = self._writer or self._connect()
            self._writer = session
            try:
                try:
                    sequence, head, found = session.begin_append(lookups)
                except StoreUnavailableError:
                    if not (kept and session.lost()):
                        raise
                    # A kept connection found dead (the database restarted, or ended it) before anything
                    # was written: taking the lock on a new one is a read, safe to repeat. Never past this.
                    session.close()
                    session = self._writer = self._connect()
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

    def _encode_or_refuse(self, item: NewDecision) -> _Pending | RecordTooLargeError:
        """Encode ``item``, or refuse it when its record could not be read back in one message."""
        pending = self._encode(item)
        size = record_size(pending)
        if size > MAX_RECORD_BYTES:
            return RecordTooLargeError(
                f"decision {item.decision.decision_id} would make a record of {size} bytes, more than "
                f"the {MAX_RECORD_BYTES} a review call can return; it was not recorded"
            )
        return pending

    def _encode(self, item: NewDecision) -> _Pending:
        d = item.decision
        equality = (chain.new_salt(), item.equality_group) if item.equality_group else None
        sensitive = (chain.new_salt(), dumps(dict(item.sensitive_facts))) if item.sensitive_facts else None
        fired = tuple(dict.fromkeys(d.fired))
        entries: Mapping[str, str | bytes]
        layout = self.record_format  # read once: the values, the link and the statement must agree
        if layout == WIRE_RECORD:
            # The version's own wire: the entries' bytes are those its replies were made of.
            stored = (item.wire or self._wire).stored(d)
            record: tuple[str | bytes, ...] = (stored.record, stored.trace)
            entries = stored.entries
        else:
            encoded = self._encoder.encode(d)
            record, entries = (encoded.document,), encoded.entries
        # In the order of chain.DECISION_LINKS[layout].
        values: tuple[str | int | bytes, ...] = (
            d.decision_id, d.request_id, d.caller, to_micros(d.evaluated_at),
            d.policy.name, d.policy.version, d.policy.digest, d.status.value,
            d.pathway.code if d.pathway else "", int(bool(d.pathway and d.pathway.individual_directed)),
            d.subject.incident_ref, d.subject.staff_ref, d.subject.action_ref, item.duration_us,
            dumps(list(fired)), dumps(list(item.masked_facts)), dumps(dict(item.facts)),
            *record,
            chain.commitment(*equality) if equality else "",
            chain.commitment(*sensitive) if sensitive else "",
        )
        return _Pending(item, layout, values, entries, fired, equality, sensitive, requests.request_digest(item))

    # --- reading -------------------------------------------------------------------

    def get_decision(self, decision_id: str) -> StoredDecision:
        """Return one recorded decision with its outcomes.

        Raises:
            DecisionNotFoundError: No such decision is recorded.

        """
        found = self._pool.read(
            lambda session: queries.decisions(session, "d.decision_id = ?", [decision_id], 1, self._entries.resolve)
        )
        if not found and MIN_ID_PREFIX <= len(decision_id) < ID_LENGTH and _ID_CHARS.issuperset(decision_id):
            found = self._by_prefix(decision_id)
        if not found:
            short = len(decision_id) < MIN_ID_PREFIX and _ID_CHARS.issuperset(decision_id)
            raise DecisionNotFoundError(
                decision_id, f"give the whole id or its first {MIN_ID_PREFIX} characters or more" if short else ""
            )
        return found[0]

    def _by_prefix(self, prefix: str) -> list[StoredDecision]:
        """The decision whose id starts with ``prefix`` (people copy the first characters of an id).

        Raises:
            InvalidRequestError: Several ids start with it; the violation lists (up to 5 of) them.

        """
        # ``prefix`` holds only hex digits and hyphens, so nothing in it needs escaping. LIKE scans the
        # ids (a range on the index would depend on the database's collation); a person typed this.
        found = self._pool.read(
            lambda session: queries.decisions(
                session, "d.decision_id LIKE ?", [prefix + "%"], _AMBIGUOUS_SHOWN + 1, self._entries.resolve,
            )
        )
        if len(found) > 1:
            ids = [stored.decision.decision_id for stored in found[:_AMBIGUOUS_SHOWN]]
            more = " and more" if len(found) > _AMBIGUOUS_SHOWN else ""
            raise InvalidRequestError([FieldViolation(
                "decision_id", f"the prefix {prefix} matches several decisions: {', '.join(ids)}{more}; give more "
                "characters",
            )])
        return found

    def find_by_request_id(self, request_id: str, *, caller: str = "") -> StoredDecision | None:
        """Return the decision ``caller`` recorded under ``request_id``, if any (ids are per caller)."""
        if not request_id:
            return None
        found = self._pool.read(
            lambda session: queries.decisions(
                session, "d.request_id <> '' AND d.caller = ? AND d.request_id = ?", [caller, request_id], 1,
                self._entries.resolve,
            )
        )
        return found[0] if found else None

    def list_decisions(
        self, query: DecisionFilter, *, limit: int, after_sequence: int = 0, newest_first: bool = False
    ) -> list[StoredDecision]:
        """Return up to ``limit`` matching decisions following ``after_sequence`` (0: from the start).

        Oldest first, they are the ones with a sequence above it; ``newest_first``, below it
        (from the newest when it is 0). One range of one index in sequence order
        (:class:`~fairpath.audit.queries.Selection`): no sort, whatever the filter.
        """
        chosen = queries.selection(query)

        def read(session: Session) -> list[StoredDecision]:
            bounds = self._bounds(session, chosen, after_sequence, newest_first=newest_first)
            return queries.decision_page(
                session, chosen, after_sequence, limit, self._entries.resolve, bounds, newest_first=newest_first
            )

        return self._pool.read(read)

    def iter_decisions(
        self, query: DecisionFilter, *, after_sequence: int = 0, chunk: int = 500
    ) -> Iterator[StoredDecision]:
        """Yield every matching decision, oldest first, ``chunk`` at a time (no transaction held open)."""
        chosen = queries.selection(query)
        yield from self._stream(
            chosen, after_sequence, chunk,
            lambda session, after, bounds: queries.decision_page(
                session, chosen, after, chunk, self._entries.resolve, bounds
            ),
        )

    def iter_summaries(self, query: DecisionFilter, *, chunk: int = 2000) -> Iterator[DecisionSummary]:
        """Yield the indexed columns, facts and equality group of every matching decision, oldest first.

        Cheaper than :meth:`iter_decisions` (no trace is decoded): meant for statistics.
        """
        chosen = queries.selection(query)
        yield from self._stream(
            chosen, 0, chunk, lambda session, after, bounds: queries.summary_page(session, chosen, after, chunk, bounds)
        )

    def _stream(
        self,
        chosen: queries.Selection,
        after: int,
        chunk: int,
        read: Callable[[Session, int, queries.Bounds], Sequence[_Sequenced]],
    ) -> Iterator[_Sequenced]:
        """Yield what ``read`` returns page after page past ``after``, each page a read of its own.

        Memory holds one page. A time window's sequence range is found once, not per page, and once
        more when the range is used up, for decisions recorded in the window since (a window that
        ends in the future). Between pages no session or transaction is held.
        """
        bounds: queries.Bounds = None
        fresh: bool = True
        while True:

            def work(session: Session, fresh: bool = fresh, after: int = after) -> Sequence[_Sequenced]:
                nonlocal bounds
                if fresh:
                    bounds = self._bounds(session, chosen, after)
                return read(session, after, bounds)

            page = self._pool.read(work)
            yield from page
            if page:
                after = page[-1].sequence
            if len(page) < chunk:
                if fresh or chosen.window is None:
                    return
                fresh = True
            else:
                fresh = False

    @staticmethod
    def _bounds(
        session: Session, chosen: queries.Selection, after: int, *, newest_first: bool = False
    ) -> queries.Bounds:
        if chosen.window is None:
            return None
        return queries.window_bounds(session, chosen.window, after, newest_first=newest_first)

    def equality_groups(self, decision_ids: Sequence[str]) -> dict[str, str]:
        """Return the equality group recorded for each of ``decision_ids`` that has one."""
        rows = self._pool.read(
            lambda session: queries.side_values(session, "decision_equality", "equality_group", decision_ids)
        )
        return {str(decision_id): str(group) for decision_id, group in rows}

    def sensitive_facts(self, decision_ids: Sequence[str]) -> dict[str, dict[str, object]]:
        """Return the true values of the masked facts of each of ``decision_ids`` (for replay only)."""
        rows = self._pool.read(
            lambda session: queries.side_values(session, "decision_sensitive_facts", "facts", decision_ids)
        )
        found: dict[str, dict[str, object]] = {}
        for decision_id, facts in rows:
            with queries.reading(f"the sensitive facts of decision {decision_id}"):
                found[str(decision_id)] = json.loads(str(facts))
        return found

    # --- verifying -----------------------------------------------------------------

    def verify_chain(self, *, chunk: int = 2000, parallel_from: int = halves.PARALLEL_FROM) -> ChainReport:
        """Walk the whole chain, from one consistent snapshot, and report the first broken record.

        Besides each link, what queries read outside the hashed columns is checked against them:
        each decision's ``decision_rules`` rows against the rules fired in its trace, its indexed
        columns against its record (:func:`fairpath.audit.queries.links`). The earliest record
        with either kind of problem is reported, so every record before it is intact. From
        ``parallel_from`` records on, a child process walks the second half
        (:mod:`fairpath.audit.halves`); the report is the one a single walk would give.
        """

        def walk(session: Session) -> ChainReport:
            session.begin_snapshot()
            try:
                head = _head(session)
                top = session.query(
                    "SELECT (SELECT COALESCE(MAX(sequence), 0) FROM decisions),"
                    " (SELECT COALESCE(MAX(sequence), 0) FROM outcomes)"
                )[0]
                # Walk as far as any record goes, so records beyond the head are checked too; and no
                # further: a head moved far past them (the service role can move it forward) would
                # otherwise have verify read empty ranges for hours. chain.close reports that head.
                last = max(map(int, top))
                split, second = last + 1, None
                if self.walk_elsewhere is not None and last >= max(parallel_from, 2):
                    split = last // 2 + 1
                    try:
                        second = self.walk_elsewhere(split, last, chunk)
                    except (OSError, BrokenProcessPool) as error:  # no child: the whole walk is this process's
                        _log.warning("verify_child_failed", error=type(error).__name__, first=split, last=last)
                        split = last + 1
                inconsistent: dict[int, str] = {}
                walked = chain.walk(_links(session, 1, split, chunk, inconsistent))
                if second is not None:
                    part = self._second_half(second, split, last, chunk)
                    walked = chain.join(walked, part.walked)
                    inconsistent.update(part.inconsistent)
                # An unreadable head is checked against nothing: the records are walked, then it is reported.
                report = walked.broken or chain.close(walked, *(head or (last, _hash_of(session, last))))
                if report.intact and not head:
                    report = ChainReport(False, report.records_checked, last + 1, "the chain head cannot be read")
                # What a filter reads disagreeing with the chain is reported too, whichever comes first:
                # records before the one reported must all be intact.
                earlier = [s for s in inconsistent if report.intact or s < report.first_broken_sequence]
                if earlier:
                    first = min(earlier)
                    return ChainReport(False, first, first, inconsistent[first])
                return report
            finally:
                session.rollback()

        return self._pool.read(walk)

    def walk_part(self, first: int, last: int, *, chunk: int = 2000) -> halves.HalfWalk:
        """Walk records ``first`` to ``last`` from a snapshot of their own (the second half of a verify)."""

        def walk(session: Session) -> halves.HalfWalk:
            session.begin_snapshot()
            try:
                inconsistent: dict[int, str] = {}
                walked = chain.walk(_links(session, first, last + 1, chunk, inconsistent), first, None)
                broken = walked.broken.first_broken_sequence if walked.broken else last + 1
                earlier = [s for s in inconsistent if s < broken]
                return halves.HalfWalk(walked, {min(earlier): inconsistent[min(earlier)]} if earlier else {})
            finally:
                session.rollback()

        return self._pool.read(walk)

    def _second_half(
        self, started: tuple[ProcessPoolExecutor, Future[halves.HalfWalk]], first: int, last: int, chunk: int
    ) -> halves.HalfWalk:
        """The child's walk of the second half; walked here instead should the child fail."""
        pool, future = started
        try:
            return future.result()
        except (OSError, BrokenProcessPool) as error:
            _log.warning("verify_child_failed", error=type(error).__name__, first=first, last=last)
            return self.walk_part(first, last, chunk=chunk)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def chain_head(self) -> tuple[int, str]:
        """Return the chain head: the last sequence and its hash ((0, GENESIS) for an empty trail).

        Raises:
            CorruptRecordError: The head row is missing or cannot be read (it was changed in the database).

        """
        head = self._pool.read(_head)
        if head is None:
            raise CorruptRecordError("the chain head cannot be read: `fairpath decisions verify` reports the trail")
        return head

    def chain_hashes(self, sequences: Sequence[int]) -> dict[int, str]:
        """Return the hash of each record of ``sequences`` that exists, decision or outcome (checkpoints)."""

        def read(session: Session) -> dict[int, str]:
            found: dict[int, str] = {}
            for start in range(0, len(sequences), queries.IN_CHUNK):
                part = list(sequences[start:start + queries.IN_CHUNK])
                marks = queries.marks(len(part))
                rows = session.query(
                    f"SELECT sequence, hash FROM decisions WHERE sequence IN ({marks})"  # noqa: S608 - only "?"
                    f" UNION ALL SELECT sequence, hash FROM outcomes WHERE sequence IN ({marks})",
                    [*part, *part],
                )
                found.update((int(sequence), str(digest)) for sequence, digest in rows)
            return found

        return self._pool.read(read)

    def close(self) -> None:
        """Close every connection; the store cannot be used afterwards."""
        with self._write_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        self._pool.close()


def _links(session: Session, first: int, end: int, chunk: int, inconsistent: dict[int, str]) -> Iterator[chain.Link]:
    """Every link with ``first <= sequence < end``, a chunk at a time, read as the walk gets to them."""
    entries = queries.StoredEntries()  # read as the records refer to them, a chunk at a time
    for start in range(first, end, chunk):
        yield from queries.links(session, start, min(start + chunk, end), entries, inconsistent)


def _head(session: Session) -> tuple[int, str] | None:
    """Return the chain head (last sequence, its hash), or None when the row is missing or not one."""
    rows = session.query(queries.HEAD)
    if len(rows) != 1 or not isinstance(rows[0][0], int) or not isinstance(rows[0][1], str):
        return None
    return rows[0][0], rows[0][1]


def _hash_of(session: Session, sequence: int) -> str:
    """Return the hash of record ``sequence`` (decision or outcome), GENESIS when there is none."""
    rows = session.query(
        "SELECT hash FROM decisions WHERE sequence = ? UNION ALL SELECT hash FROM outcomes WHERE sequence = ?",
        (sequence, sequence),
    )
    return str(rows[0][0]) if rows else chain.GENESIS


def record_size(pending: _Pending) -> int:
    """Return about how many bytes the record of ``pending`` takes when read back (at least its UTF-8 size).

    The trace goes back whole (each entry in full), with the facts and the document's own fields.
    Characters are counted first; bytes only when that count is near the limit (UTF-8 is at most 4 per).
    """
    values = [value for value in (*pending.values, *pending.entries.values()) if not isinstance(value, int)]
    chars = sum(map(len, values))
    if chars * 4 <= MAX_RECORD_BYTES:
        return chars
    return sum(len(value if isinstance(value, bytes) else value.encode("utf-8")) for value in values)


def _entry_writes(unstored: Sequence[tuple[str, str | bytes]]) -> list[tuple[str, Sequence[Sequence[object]]]]:
    """The inserts of new trace entries: as JSON (record format 1) or as bytes (format 2), by what each is."""
    as_json = [(digest, entry) for digest, entry in unstored if isinstance(entry, str)]
    as_bytes = [(digest, entry, "") for digest, entry in unstored if isinstance(entry, bytes)]
    return [
        (queries.INSERT_ENTRIES[JSON_DOCUMENT], as_json), (queries.INSERT_ENTRIES[WIRE_RECORD], as_bytes)
    ]


def _stored(item: NewDecision, sequence: int, digest: str, previous: str) -> StoredDecision:
    return StoredDecision(
        sequence, item.decision, dict(item.facts), item.masked_facts, item.duration_us / 1000, digest,
        previous,
    )
