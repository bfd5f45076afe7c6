"""The SQL text of the store, and the mapping from rows back to records.

Statements use ``?`` placeholders (the PostgreSQL session rewrites them) and
are assembled only from the constant column lists below and placeholders:
every value is bound as a parameter, never formatted into the text.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from google.protobuf.message import DecodeError

from fairpath.audit import chain
from fairpath.audit.codec import (
    JSON_DOCUMENT,
    WIRE_RECORD,
    decode_decision,
    from_micros,
    to_micros,
    trace_digests,
)
from fairpath.audit.codec import entry_digest as json_digest
from fairpath.audit.records import DecisionFilter, DecisionSummary, OutcomeRecord, StoredDecision
from fairpath.audit.requests import RecordedRequest
from fairpath.audit.sessions import Row, Session
from fairpath.decisions import RuleResult, Status, TraceEntry
from fairpath.errors import CorruptRecordError
from fairpath.v1.decision_pb2 import Decision, DecisionStatus
from fairpath.wire import DIGEST_HEX, decision_from_record, trace_entry_from_body
from fairpath.wire import entry_digest as wire_digest

#: Decodes the trace entries of the given digests (see :class:`fairpath.audit.entries.TraceEntries`).
Resolve = Callable[[Session, Sequence[str]], Mapping[str, TraceEntry]]

#: Most ids put in one ``IN (…)`` list.
IN_CHUNK = 500
HEAD = "SELECT sequence, hash FROM chain_head WHERE id = 1"
MOVE_HEAD = "UPDATE chain_head SET sequence = ?, hash = ? WHERE id = 1"
PATHWAY_OF = "SELECT pathway FROM decisions WHERE decision_id = ?"
INSERT_RULE = "INSERT INTO decision_rules (rule_id, sequence) VALUES (?, ?)"
INSERT_EQUALITY = "INSERT INTO decision_equality (decision_id, equality_group, salt) VALUES (?, ?, ?)"
INSERT_SENSITIVE = "INSERT INTO decision_sensitive_facts (decision_id, facts, salt) VALUES (?, ?, ?)"
# Another process may have stored the same entry a moment ago: identical content, so nothing to do.
#: Inserting trace entries, by record format: the entry's JSON (1) or its bytes (2).
#: (Only placeholders in VALUES, constants bound too: PostgreSQL batches such a statement as one over arrays.)
INSERT_ENTRIES = {
    JSON_DOCUMENT: "INSERT INTO trace_entries (digest, entry) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING",
    WIRE_RECORD: "INSERT INTO trace_entries (digest, body, entry) VALUES (?, ?, ?) ON CONFLICT (digest) DO NOTHING",
}


#: What decoding a stored value can raise when someone edited it in the database: not JSON (json's
#: error is a ValueError), JSON of the wrong shape, nested too deep to parse, an unknown enum name.
UNREADABLE = (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError, DecodeError)


@contextlib.contextmanager
def reading(what: str) -> Iterator[None]:
    """Turn a stored value that cannot be decoded into a CorruptRecordError naming ``what`` (a record).

    Only the exception's type is named: its text may quote the value, and values can be facts.
    """
    try:
        yield
    except UNREADABLE as error:
        raise CorruptRecordError(
            f"{what} cannot be read ({type(error).__name__}): it was changed in the database;"
            " `fairpath decisions verify` reports where the trail breaks"
        ) from None


def loads(text: str) -> Any:
    """Parse stored JSON as :func:`json.loads` does, by orjson (twice as fast) whenever it can.

    What orjson refuses (an integer beyond 64 bits, a lone surrogate, text that is not JSON) is
    parsed by :func:`json.loads`, which accepts or refuses it as before: the result never differs.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def marks(count: int) -> str:
    """Return ``count`` comma-separated placeholders."""
    return ", ".join("?" * count)


# request_digest is not chained: it only tells a repeated request from a reused id (fairpath.audit.requests).
#: Inserting a decision, by record format (format 1 names only the columns schema version 4 had).
INSERT_DECISIONS = {
    JSON_DOCUMENT: (
        f"INSERT INTO decisions (sequence, {', '.join(chain.DECISION_COLUMNS)}, previous_hash, hash, request_digest)"
        f" VALUES ({marks(len(chain.DECISION_COLUMNS) + 4)})"
    ),
    WIRE_RECORD: (
        f"INSERT INTO decisions (sequence, {', '.join(chain.DECISION_COLUMNS_2)}, previous_hash, hash,"
        f" request_digest, format, document) VALUES ({marks(len(chain.DECISION_COLUMNS_2) + 6)})"
    ),
}
#: What each format's decision row ends with, after the request digest: its format and empty document.
ROW_TAIL: dict[int, tuple[object, ...]] = {JSON_DOCUMENT: (), WIRE_RECORD: (WIRE_RECORD, "")}
INSERT_OUTCOME = (
    f"INSERT INTO outcomes (sequence, {', '.join(chain.OUTCOME_COLUMNS)}, previous_hash, hash)"
    f" VALUES ({marks(len(chain.OUTCOME_COLUMNS) + 3)})"
)
_DECISION = (
    "d.sequence, d.decision_id, d.document, d.facts, d.masked_facts, d.duration_us, d.hash, d.previous_hash,"
    " d.format, d.record, d.trace"
)
_OUTCOME = "sequence, decision_id, action_taken, reviewer, reason, recorded_us, departs, hash, previous_hash"
_SUMMARY = (
    "d.sequence, d.decision_id, d.evaluated_us, d.policy, d.version, d.status, d.pathway,"
    " d.individual_directed, d.facts, COALESCE(e.equality_group, '')"
)


def where(query: DecisionFilter, after_sequence: int, *, newest_first: bool = False) -> tuple[str, list[object]]:
    """Return the WHERE clause (over ``decisions d``) and parameters selecting ``query`` past the cursor.

    ``after_sequence`` is the last sequence already read in the order of reading (0: none yet), so
    newest first it is an upper bound (and none at all before the first page).
    """
    clauses: list[str] = []
    params: list[object] = []
    if not newest_first:
        clauses.append("d.sequence > ?")
        params.append(after_sequence)
    elif after_sequence:
        clauses.append("d.sequence < ?")
        params.append(after_sequence)
    if query.from_time is not None:
        clauses.append("d.evaluated_us >= ?")
        params.append(to_micros(query.from_time))
    if query.to_time is not None:
        clauses.append("d.evaluated_us < ?")
        params.append(to_micros(query.to_time))
    exact: list[tuple[str, str]] = [
        ("d.policy", query.policy), ("d.version", query.version),
        ("d.status", query.status.value if query.status else ""), ("d.pathway", query.pathway),
        ("d.incident_ref", query.incident_ref), ("d.staff_ref", query.staff_ref),
        ("d.action_ref", query.action_ref),
    ]
    for column, value in exact:
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    if query.rule_fired:
        clauses.append("d.sequence IN (SELECT r.sequence FROM decision_rules r WHERE r.rule_id = ?)")
        params.append(query.rule_fired)
    return " AND ".join(clauses) or "1 = 1", params


def order_by(newest_first: bool) -> str:
    """Return the ORDER BY of a :func:`where` selection: the sequence index read forwards or backwards."""
    return "d.sequence DESC" if newest_first else "d.sequence"


FROM_DECISIONS = "decisions d"
# The rule filter, when it drives the read, starts from the rule rows' primary key (rule_id, sequence): its
# entries for one rule are in sequence order, so pages need no sort, and the join adds no row (one per rule
# per decision).
_FROM_RULE = "decision_rules r JOIN decisions d ON d.sequence = r.sequence"
_RULE_EXISTS = "EXISTS (SELECT 1 FROM decision_rules r WHERE r.rule_id = ? AND r.sequence = d.sequence)"
_RULE = "rule_fired"


@dataclass(frozen=True)
class Selection:
    """Which decisions a read selects: a FROM clause, a WHERE clause over it, and the time window.

    One filter *drives* the read: the one likely to match fewest decisions, in the order of
    :data:`DRIVING`. Its index holds the sequence as the key after the filtered column (migration
    4), so a page is one range of one index, read in sequence order: no sort, and no row before the
    cursor read again, however long the trail. The other filters are checked on the rows that index
    yields, written so that no planner can read them through their own index instead (``+`` before
    a number, ``|| ''`` after a text) and sort: the plan is the same on SQLite and PostgreSQL,
    whatever their statistics say. With no filter, the primary key drives. The time filter never
    drives: its index is in time order, so it is first turned into the sequence range its decisions
    span (:func:`window_bounds`), a range of the driving index.

    Attributes:
        source: The FROM clause (``decisions d``, joined to ``decision_rules r`` when the rule drives).
        key: The column that orders and pages the read (``d.sequence`` or the equal ``r.sequence``).
        clause: Conditions besides the cursor and the window's sequence range ("1 = 1" when none).
        params: Their parameters.
        window: ``(from, to)`` evaluation times in microseconds (either None); None without a time filter.
        index: The filters whose index drives the read (``()`` for the primary key).

    """

    source: str
    key: str
    clause: str
    params: tuple[object, ...]
    window: tuple[int | None, int | None] | None
    index: tuple[str, ...] = ()


#: Which filters drive a read when several are given, first first: a subject reference names a
#: handful of decisions, a rule or pathway a share of them, a version, policy or status most.
#: (policy and version together use the ``(policy, version, sequence)`` index.)
DRIVING: tuple[tuple[str, ...], ...] = (
    ("action_ref",), ("staff_ref",), ("incident_ref",), (_RULE,), ("pathway",), ("policy", "version"),
    ("version",), ("policy",), ("status",),
)


def selection(query: DecisionFilter) -> Selection:
    """Return the :class:`Selection` of ``query`` (no cursor yet)."""
    given: dict[str, str] = {
        name: value for name, value in (
            ("policy", query.policy), ("version", query.version),
            ("status", query.status.value if query.status else ""), ("pathway", query.pathway),
            ("incident_ref", query.incident_ref), ("staff_ref", query.staff_ref),
            ("action_ref", query.action_ref), (_RULE, query.rule_fired),
        ) if value
    }
    index = next((names for names in DRIVING if all(name in given for name in names)), ())
    clauses: list[str] = []
    params: list[object] = []
    window = None
    if query.from_time is not None or query.to_time is not None:
        window = (
            None if query.from_time is None else to_micros(query.from_time),
            None if query.to_time is None else to_micros(query.to_time),
        )
        for bound, operator in zip(window, (">=", "<"), strict=True):
            if bound is not None:
                clauses.append(f"+d.evaluated_us {operator} ?")
                params.append(bound)
    for name, value in given.items():
        if name == _RULE:
            if index != (_RULE,):
                clauses.append(_RULE_EXISTS)
                params.append(value)
            continue
        if name in index:
            clauses.append(f"d.{name} = ?")
            if name in _PARTIAL:
                # Their indexes leave out the empty reference; saying so lets the planner use them.
                clauses.append(f"d.{name} <> ''")
        else:
            clauses.append(f"d.{name} || '' = ?")  # text: what unary "+" does to a number
        params.append(value)
    if index == (_RULE,):
        clauses.append("r.rule_id = ?")
        params.append(given[_RULE])
        return Selection(_FROM_RULE, "r.sequence", " AND ".join(clauses), tuple(params), window, index)
    return Selection(FROM_DECISIONS, "d.sequence", " AND ".join(clauses) or "1 = 1", tuple(params), window, index)


_PARTIAL = ("incident_ref", "staff_ref", "action_ref")

#: The sequence range ``(first, last)`` a time window spans; None when no decision falls in it.
Bounds = tuple[int, int] | None


def window_bounds(
    session: Session, window: tuple[int | None, int | None], after_sequence: int = 0, *, newest_first: bool = False
) -> Bounds:
    """Return the first and last sequence of the decisions evaluated in ``window`` past the cursor.

    One pass over the window's entries of the time index, which holds the sequence too (SQLite's
    index carries the rowid, PostgreSQL's is ``(evaluated_us, sequence)``): an index-only read, no
    decision row. A page of the window then reads its driving index between the two, in order.
    """
    clauses, params = [], []
    for bound, operator in zip(window, (">=", "<"), strict=True):
        if bound is not None:
            clauses.append(f"evaluated_us {operator} ?")
            params.append(bound)
    if after_sequence:
        clauses.append("sequence < ?" if newest_first else "sequence > ?")
        params.append(after_sequence)
    low, high = session.query(
        f"SELECT MIN(sequence), MAX(sequence) FROM decisions WHERE {' AND '.join(clauses)}", params
    )[0]
    return None if low is None else (int(low), int(high))


def paged(
    chosen: Selection, columns: str, after_sequence: int, limit: int, bounds: Bounds, *,
    newest_first: bool = False, joins: str = "",
) -> tuple[str, list[object]] | None:
    """Return the statement reading the next ``limit`` rows of ``columns`` of ``chosen`` past the cursor.

    ``bounds`` is what :func:`window_bounds` returned for a selection with a time window (ignored
    without one). None when nothing can match (an empty window, or a cursor already past it).
    """
    clauses, params = [chosen.clause], list(chosen.params)
    low, high = 1, None
    if chosen.window is not None:
        if bounds is None:
            return None
        low, high = bounds
    if not newest_first:
        low = max(low, after_sequence + 1)
    elif after_sequence:
        high = after_sequence - 1 if high is None else min(high, after_sequence - 1)
    if high is not None and high < low:
        return None
    clauses.append(f"{chosen.key} >= ?")
    params.append(low)
    if high is not None:
        clauses.append(f"{chosen.key} <= ?")
        params.append(high)
    order = f"{chosen.key} DESC" if newest_first else chosen.key
    sql = (
        f"SELECT {columns} FROM {chosen.source}{joins} WHERE {' AND '.join(clauses)} ORDER BY {order} LIMIT ?"
    )
    return sql, [*params, limit]


def request_id_lookups(caller: str, request_ids: Sequence[str]) -> list[tuple[str, Sequence[object]]]:
    """Return the queries finding what ``caller`` already recorded under any of ``request_ids``.

    Each row is ``(caller, request_id, decision_id, request_digest, sensitive_commitment,
    sensitive facts JSON or NULL, equality_commitment, equality group or NULL)``: what
    :func:`recorded_request` needs to tell a repeat from a reuse.
    """
    return [
        (
            # "<> ''" lets the planner use the partial unique index on (caller, request_id).
            "SELECT d.caller, d.request_id, d.decision_id, d.request_digest, d.sensitive_commitment, s.facts,"
            " d.equality_commitment, e.equality_group FROM decisions d"
            " LEFT JOIN decision_sensitive_facts s ON s.decision_id = d.decision_id"
            " LEFT JOIN decision_equality e ON e.decision_id = d.decision_id"
            f" WHERE d.request_id <> '' AND d.caller = ? AND d.request_id IN ({marks(len(chunk))})",
            [caller, *chunk],
        )
        for chunk in (list(request_ids[i:i + IN_CHUNK]) for i in range(0, len(request_ids), IN_CHUNK))
    ]


def recorded_request(row: Row) -> tuple[tuple[str, str], RecordedRequest]:
    """Return the ``(caller, request_id)`` key and the recorded request of a :func:`request_id_lookups` row."""
    caller, request_id, decision_id, digest, sensitive_commitment, facts, equality_commitment, group = row
    return (str(caller), str(request_id)), RecordedRequest(
        str(decision_id), str(digest), None if facts is None else json.loads(facts), bool(sensitive_commitment),
        None if group is None else str(group), bool(equality_commitment),
    )


def decisions(
    session: Session, clause: str, params: Sequence[object], limit: int, resolve: Resolve, *,
    newest_first: bool = False,
) -> list[StoredDecision]:
    """Return up to ``limit`` decisions matching ``clause`` with their outcomes, oldest (or newest) first."""
    rows = session.query(
        f"SELECT {_DECISION} FROM decisions d WHERE {clause} ORDER BY {order_by(newest_first)} LIMIT ?",
        [*params, limit],
    )
    return _decisions(session, rows, resolve)


def decision_page(  # noqa: PLR0917 - the page's parts, as summary_page's plus how to decode
    session: Session, chosen: Selection, after_sequence: int, limit: int, resolve: Resolve, bounds: Bounds, *,
    newest_first: bool = False,
) -> list[StoredDecision]:
    """Return the next ``limit`` decisions of ``chosen`` past the cursor, with their outcomes (see :func:`paged`)."""
    statement = paged(chosen, _DECISION, after_sequence, limit, bounds, newest_first=newest_first)
    return [] if statement is None else _decisions(session, session.query(*statement), resolve)


def _decisions(session: Session, rows: list[Row], resolve: Resolve) -> list[StoredDecision]:
    documents: list[tuple[Any, list[str]]] = []  # (parsed document, or the record's bytes; entry digests)
    for row in rows:
        with reading(f"record {row[0]}"):
            if row[8] == WIRE_RECORD:
                documents.append((bytes(row[9]), split_digests(str(row[10]))))
            else:
                document = loads(str(row[2]))
                documents.append((document, trace_digests(document)))
    with reading(f"a trace entry of records {rows[0][0]}-{rows[-1][0]}" if rows else "a trace entry"):
        entries = resolve(session, [digest for _, digests in documents for digest in digests])
    outcomes = outcomes_of(session, [str(row[1]) for row in rows])
    found: list[StoredDecision] = []
    for (seq, decision_id, _, facts, masked, micros, digest, previous, *_), (document, digests) in zip(
        rows, documents, strict=True
    ):
        with reading(f"record {seq}"):
            decision = (
                decision_from_record(document, tuple(entries[d] for d in digests)) if isinstance(document, bytes)
                else decode_decision(document, entries)
            )
            found.append(StoredDecision(
                sequence=int(seq), decision=decision, facts=loads(str(facts)),
                masked_facts=tuple(json.loads(str(masked))), duration_ms=int(micros) / 1000, hash=str(digest),
                previous_hash=str(previous), outcomes=tuple(outcomes.get(str(decision_id), ())),
            ))
    return found


def split_digests(trace: str) -> list[str]:
    """Return the entry digests of a format-2 record's ``trace`` column, in order."""
    return [trace[i:i + DIGEST_HEX] for i in range(0, len(trace), DIGEST_HEX)]


def trace_entries(session: Session, digests: Sequence[str]) -> list[Row]:
    """Return ``(digest, entry JSON, entry bytes)`` rows for those of ``digests`` that are stored.

    An entry of a format-1 record has its JSON and no bytes (NULL); of format 2, its bytes and "".
    """
    rows: list[Row] = []
    for start in range(0, len(digests), IN_CHUNK):
        chunk = list(digests[start:start + IN_CHUNK])
        rows += session.query(
            f"SELECT digest, entry, body FROM trace_entries WHERE digest IN ({marks(len(chunk))})", chunk
        )
    return rows


class StoredEntries:
    """Trace entries as verification sees them, checked when the records referring to them are walked.

    Each entry is read, its text checked against its digest and its rule result noted the first
    time a record refers to it; what was learnt is remembered for the records after, up to
    ``limit`` entries (then forgotten and read again when needed), so memory does not grow with
    the trail. An entry no record refers to cannot change what any record says, so it is never read.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        #: A problem for each entry that is missing or does not match its digest ("" when it is intact).
        self.problems: dict[str, str] = {}
        #: The rule id of each entry read whose result is FIRED, by digest.
        self.fired: dict[str, str] = {}
        # Whole traces met before (most decisions share their walk): trace -> (problem, fired rules).
        self._traces: dict[object, tuple[str, tuple[str, ...]]] = {}

    def trace(self, session: Session, key: object, digests: Callable[[], Sequence[str]]) -> tuple[str, tuple[str, ...]]:
        """Return the first problem of a trace's entries ("" if none) and the rules it fired, in order.

        ``key`` names the trace (a format-2 record's ``trace`` column, a tuple of digests); ``digests``
        lists its entries, asked for only the first time the trace is met.
        """
        known = self._traces.get(key)
        if known is None:
            listed = digests()
            self.load(session, listed)
            problems, fired = self.problems, self.fired
            problem = next((problems[d] for d in listed if problems[d]), "")
            known = (problem, tuple(dict.fromkeys(fired[d] for d in listed if d in fired)))
            if len(self._traces) >= self._limit:
                self._traces = {}
            self._traces[key] = known
        return known

    def load(self, session: Session, digests: Sequence[str]) -> None:
        """Read and check those of ``digests`` not checked yet (all of them stay known until the next load)."""
        wanted = [digest for digest in dict.fromkeys(digests) if digest not in self.problems]
        if not wanted:
            return
        if len(self.problems) + len(wanted) > self._limit:
            self.problems, self.fired, self._traces = {}, {}, {}
            wanted = list(dict.fromkeys(digests))
        for digest in wanted:
            self.problems[digest] = f"trace entry {digest} is missing"
        for stored, entry, body in trace_entries(session, wanted):
            digest = str(stored)
            if body is not None and not isinstance(body, bytes | memoryview):
                # Only an edit puts text or a number in the column (never bytes() of a number: n zeros).
                self.problems[digest] = f"trace entry {digest} cannot be read"
                continue
            encoded = None if body is None else bytes(body)
            if (json_digest(str(entry)) if encoded is None else wire_digest(encoded)) != digest:
                self.problems[digest] = f"trace entry {digest} was changed after it was written"
                continue
            try:
                if encoded is None:
                    parsed = json.loads(str(entry))
                    result, rule_id = parsed.get("result"), parsed.get("rule_id")
                else:
                    read = trace_entry_from_body(encoded)
                    result, rule_id = read.result.value, read.rule_id
            except UNREADABLE:
                # Its digest matches, so it was written so: the record referring to it is reported.
                self.problems[digest] = f"trace entry {digest} cannot be read"
                continue
            self.problems[digest] = ""
            if result == RuleResult.FIRED.value:
                self.fired[digest] = str(rule_id)


def summary_page(
    session: Session, chosen: Selection, after_sequence: int, limit: int, bounds: Bounds
) -> list[DecisionSummary]:
    """Return the next ``limit`` decision summaries of ``chosen`` past the cursor, oldest first."""
    statement = paged(
        chosen, _SUMMARY, after_sequence, limit, bounds,
        joins=" LEFT JOIN decision_equality e ON e.decision_id = d.decision_id",
    )
    rows = [] if statement is None else session.query(*statement)
    found: list[DecisionSummary] = []
    for seq, decision_id, micros, policy, version, status, pathway, directed, facts, group in rows:
        with reading(f"record {seq}"):
            found.append(DecisionSummary(
                int(seq), str(decision_id), from_micros(int(micros)), str(policy), str(version), Status(status),
                str(pathway), bool(directed), loads(str(facts)), str(group),
            ))
    return found


def outcomes_of(session: Session, decision_ids: Sequence[str]) -> dict[str, list[OutcomeRecord]]:
    """Return the outcomes recorded for each of ``decision_ids``, oldest first."""
    by_decision: dict[str, list[OutcomeRecord]] = {}
    for start in range(0, len(decision_ids), IN_CHUNK):
        chunk = list(decision_ids[start:start + IN_CHUNK])
        # Ordered here, per decision, not by the database: the (decision_id, sequence) index yields each
        # decision's outcomes in order, and a page's handful need no sort of the statement's rows.
        rows = session.query(f"SELECT {_OUTCOME} FROM outcomes WHERE decision_id IN ({marks(len(chunk))})", chunk)
        for row in rows:
            by_decision.setdefault(str(row[1]), []).append(outcome(row))
    for found in by_decision.values():
        found.sort(key=lambda record: record.sequence)
    return by_decision


def outcome(row: Row) -> OutcomeRecord:
    """Return the outcome record of an ``outcomes`` row selected in the order above."""
    seq, decision_id, action, reviewer, reason, recorded_us, departs, digest, previous = row
    return OutcomeRecord(
        int(seq), str(decision_id), str(action), str(reviewer), str(reason), from_micros(int(recorded_us)),
        bool(departs), str(digest), str(previous),
    )


def side_values(session: Session, table: str, column: str, decision_ids: Sequence[str]) -> list[Row]:
    """Return ``(decision_id, column)`` rows of a side table (``table`` and ``column`` are constants)."""
    rows: list[Row] = []
    for start in range(0, len(decision_ids), IN_CHUNK):
        chunk = list(decision_ids[start:start + IN_CHUNK])
        rows += session.query(
            f"SELECT decision_id, {column} FROM {table} WHERE decision_id IN ({marks(len(chunk))})", chunk
        )
    return rows


def links(
    session: Session, start: int, end: int, entries: StoredEntries, inconsistent: dict[int, str]
) -> list[chain.Link]:
    """Return the chain links of both kinds with ``start <= sequence < end``, in sequence order.

    A link carries a problem (reported once its hash checks out) when its decision refers to a
    trace entry that is missing or changed. What queries read outside the hashed columns is
    checked against them, and each disagreement is added to ``inconsistent`` (sequence -> problem):
    a decision's ``decision_rules`` rows (the ``--rule-fired`` filter) against the rules fired in
    its trace, its indexed columns (the other filters) against its document, and rule rows
    naming an outcome. The caller reports whichever comes first, such a disagreement or a
    broken link. Nothing here raises on a value edited in the database: a document that cannot
    be read is the link's problem, a fired column that cannot be read a disagreement.
    """
    decision_rows = session.query(
        f"SELECT d.sequence, d.previous_hash, d.hash, d.format, {_LINKED}, e.equality_group, e.salt, s.facts, s.salt"
        " FROM decisions d"
        " LEFT JOIN decision_equality e ON e.decision_id = d.decision_id"
        " LEFT JOIN decision_sensitive_facts s ON s.decision_id = d.decision_id"
        " WHERE d.sequence >= ? AND d.sequence < ?",
        (start, end),
    )
    outcome_rows = session.query(
        f"SELECT sequence, previous_hash, hash, {', '.join(chain.OUTCOME_COLUMNS)} FROM outcomes"
        " WHERE sequence >= ? AND sequence < ?",
        (start, end),
    )
    rules: dict[int, set[str]] = {}
    for sequence, rule_id in session.query(
        "SELECT sequence, rule_id FROM decision_rules WHERE sequence >= ? AND sequence < ?", (start, end)
    ):
        rules.setdefault(int(sequence), set()).add(str(rule_id))
    found = []
    for row in decision_rows:
        layout = row[3]
        # A format edited into one this fairpath does not know: read as format 1, its hash (made with the
        # format written) fails. Every layout ends with the two commitments (side values, below). The
        # values go to the hash as the database returns them: text, integers, bytes (link_hash's types).
        values = tuple([row[at] for at in _LINK_AT.get(layout, _LINK_AT[JSON_DOCUMENT])])
        group, group_salt, facts, facts_salt = row[_SIDE_AT:]
        side = []
        # The commitments are the last two hashed columns: equality group, then sensitive facts.
        if group is not None:
            side.append(chain.SideValue("equality group", str(values[-2]), str(group_salt), str(group)))
        if facts is not None:
            side.append(chain.SideValue("sensitive facts", str(values[-1]), str(facts_salt), str(facts)))
        sequence = int(row[0])
        fired: tuple[str, ...] = ()
        try:
            said, key, digests = _record_of(layout, row)
        except UNREADABLE:
            # Reported once its hash checks out (a record rewritten and rehashed); else the hash is.
            said = None
            problem = "its document cannot be read" if layout == JSON_DOCUMENT else "its record cannot be read"
        else:
            # Entries and whole traces already checked are not read again: most decisions share them.
            problem, fired = entries.trace(session, key, digests)
        if not problem and said is not None and (
            disagreement := _disagreement(row, said, layout, fired, rules.pop(sequence, set()))
        ):
            inconsistent[sequence] = disagreement
        found.append(
            chain.Link(sequence, chain.DECISION, str(row[1]), str(row[2]), values, tuple(side), problem, layout)
        )
    for row in outcome_rows:
        sequence = int(row[0])
        if named := rules.pop(sequence, set()):
            inconsistent[sequence] = f"decision_rules rows ({', '.join(sorted(named))}) name an outcome record"
        found.append(chain.Link(sequence, chain.OUTCOME, str(row[1]), str(row[2]), tuple(row[3:])))
    # Rule rows left name no record: no query can return them (the filter selects decisions). Should a
    # decision be appended at that sequence later, they become its rows and are checked with it.
    return sorted(found, key=lambda link: link.sequence)


# Every hashed column of either record format, in the order links() selects them after four others.
_LINKED_COLUMNS = tuple(dict.fromkeys((*chain.DECISION_COLUMNS, *chain.DECISION_COLUMNS_2)))
_LINKED = ", ".join(f"d.{column}" for column in _LINKED_COLUMNS)
_AT = {column: 4 + index for index, column in enumerate(_LINKED_COLUMNS)}
# Where each layout's hashed columns are in a links() row, and where the side values start.
_LINK_AT = {layout: tuple(_AT[column] for column in columns) for layout, columns in chain.DECISION_LINKS.items()}
_SIDE_AT = 4 + len(_LINKED_COLUMNS)

# Indexed columns (what the filters read), in the order :func:`_said` reads the same from the document.
_INDEXED = (
    "decision_id", "request_id", "caller", "evaluated_us", "policy", "version", "digest", "status", "pathway",
    "individual_directed", "incident_ref", "staff_ref", "action_ref",
)
_INDEXED_AT = tuple(_AT[column] for column in _INDEXED)


def _record_of(layout: object, row: Row) -> tuple[tuple[object, ...], object, Callable[[], Sequence[str]]]:
    """Return what a decision's record says of :data:`_INDEXED`'s columns, its trace's key and its digests.

    Raises:
        ValueError, KeyError, DecodeError …: the record cannot be read (:data:`UNREADABLE`).

    """
    if layout == WIRE_RECORD:
        record, trace = row[_AT["record"]], row[_AT["trace"]]
        if not isinstance(record, bytes):
            raise TypeError("a record is bytes")
        return _said_of_record(record), trace, lambda: split_digests(str(trace))
    if layout == JSON_DOCUMENT:
        document = loads(str(row[_AT["document"]]))
        digests = trace_digests(document)
        return _said(document), tuple(digests), lambda: digests
    raise ValueError(f"record format {layout!r}")


def _disagreement(
    row: Row, said: tuple[object, ...], layout: object, fired: tuple[str, ...], rule_rows: set[str]
) -> str:
    """Return how one decision's queried data disagrees with its chained data ("" if not), naming it."""
    name = f"decision {row[_AT['decision_id']]}"
    # Compared all at once (verify does this a million times): the columns as the database returns them
    # first, then (only when they differ) as text and integers; which columns differ only when some do.
    if said != tuple([row[at] for at in _INDEXED_AT]) and said != tuple(
        [_same_type(row[at]) for at in _INDEXED_AT]
    ):
        differing = [
            column for column, at, value in zip(_INDEXED, _INDEXED_AT, said, strict=True)
            if _same_type(row[at]) != value
        ]
        what = "document" if layout == JSON_DOCUMENT else "record"
        return f"{name}: its indexed column(s) {', '.join(differing)} disagree with its {what}"
    try:
        recorded = loads(str(row[_AT["fired"]]))
    except UNREADABLE:
        return f"{name}: its fired column cannot be read"
    if not isinstance(recorded, list) or tuple(recorded) != fired:
        return f"{name}: its fired rules disagree with its trace"
    if rule_rows != set(fired):
        extra, lost = sorted(rule_rows - set(fired)), sorted(set(fired) - rule_rows)
        what = "; ".join(part for part in (
            f"rows for rules that did not fire: {', '.join(extra)}" if extra else "",
            f"rows missing for fired rules: {', '.join(lost)}" if lost else "",
        ) if part)
        return f"{name}: its decision_rules rows disagree with its trace ({what})"
    return ""


def _said(d: Mapping[str, Any]) -> tuple[object, ...]:
    """What the document says of each of :data:`_INDEXED`'s columns, in that order."""
    policy, pathway, subject = d["policy"], d.get("pathway") or {}, d.get("subject") or {}
    return (
        d["decision_id"], d.get("request_id", ""), d.get("caller", ""),
        to_micros(datetime.fromisoformat(d["evaluated_at"])), policy["name"], policy["version"], policy["digest"],
        d["status"], pathway.get("code", ""), int(bool(pathway.get("individual_directed"))),
        subject.get("incident_ref", ""), subject.get("staff_ref", ""), subject.get("action_ref", ""),
    )


def _said_of_record(record: bytes) -> tuple[object, ...]:
    """What a format-2 record says of each of :data:`_INDEXED`'s columns, in that order."""
    d = Decision.FromString(record)
    at = d.evaluated_at
    return (
        d.decision_id, d.request_id, d.caller, at.seconds * 1_000_000 + at.nanos // 1000, d.policy.name,
        d.policy.version, d.policy.digest, DecisionStatus.Name(d.status), d.pathway.code,
        int(d.pathway.individual_directed), d.subject.incident_ref, d.subject.staff_ref, d.subject.action_ref,
    )


def _same_type(value: object) -> object:
    # SQLite and PostgreSQL both return integers for the integer columns; anything else is text.
    return value if isinstance(value, int) else str(value)
