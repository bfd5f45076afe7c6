"""The SQL text of the store, and the mapping from rows back to records.

Statements use ``?`` placeholders (the PostgreSQL session rewrites them) and
are assembled only from the constant column lists below and placeholders:
every value is bound as a parameter, never formatted into the text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence

from fairpath.audit import chain
from fairpath.audit.codec import decode_decision, entry_digest, from_micros, to_micros, trace_digests
from fairpath.audit.records import DecisionFilter, DecisionSummary, OutcomeRecord, StoredDecision
from fairpath.audit.sessions import Row, Session
from fairpath.decisions import Status, TraceEntry

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
INSERT_ENTRY = "INSERT INTO trace_entries (digest, entry) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING"


def marks(count: int) -> str:
    """Return ``count`` comma-separated placeholders."""
    return ", ".join("?" * count)


INSERT_DECISION = (
    f"INSERT INTO decisions (sequence, {', '.join(chain.DECISION_COLUMNS)}, previous_hash, hash)"
    f" VALUES ({marks(len(chain.DECISION_COLUMNS) + 3)})"
)
INSERT_OUTCOME = (
    f"INSERT INTO outcomes (sequence, {', '.join(chain.OUTCOME_COLUMNS)}, previous_hash, hash)"
    f" VALUES ({marks(len(chain.OUTCOME_COLUMNS) + 3)})"
)
_DECISION = (
    "d.sequence, d.decision_id, d.document, d.facts, d.masked_facts, d.duration_us, d.hash, d.previous_hash"
)
_OUTCOME = "sequence, decision_id, action_taken, reviewer, reason, recorded_us, departs, hash, previous_hash"
_SUMMARY = (
    "d.sequence, d.decision_id, d.evaluated_us, d.policy, d.version, d.status, d.pathway,"
    " d.individual_directed, d.facts, COALESCE(e.equality_group, '')"
)


def where(query: DecisionFilter, after_sequence: int) -> tuple[str, list[object]]:
    """Return the WHERE clause (over ``decisions d``) and parameters selecting ``query`` past the cursor."""
    clauses: list[str] = ["d.sequence > ?"]
    params: list[object] = [after_sequence]
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
    return " AND ".join(clauses), params


def request_id_lookups(request_ids: Sequence[str]) -> list[tuple[str, Sequence[object]]]:
    """Return the queries whose rows are ``(request_id, decision_id)`` of those already recorded."""
    return [
        (
            # "<> ''" lets the planner use the partial unique index on request_id.
            "SELECT request_id, decision_id FROM decisions"
            f" WHERE request_id <> '' AND request_id IN ({marks(len(chunk))})",
            chunk,
        )
        for chunk in (list(request_ids[i:i + IN_CHUNK]) for i in range(0, len(request_ids), IN_CHUNK))
    ]


def decisions(
    session: Session, clause: str, params: Sequence[object], limit: int, resolve: Resolve
) -> list[StoredDecision]:
    """Return up to ``limit`` decisions matching ``clause``, oldest first, with their outcomes."""
    rows = session.query(
        f"SELECT {_DECISION} FROM decisions d WHERE {clause} ORDER BY d.sequence LIMIT ?", [*params, limit]
    )
    documents = [json.loads(row[2]) for row in rows]
    entries = resolve(session, [digest for document in documents for digest in trace_digests(document)])
    outcomes = outcomes_of(session, [str(row[1]) for row in rows])
    return [
        StoredDecision(
            sequence=int(seq), decision=decode_decision(document, entries), facts=json.loads(facts),
            masked_facts=tuple(json.loads(masked)), duration_ms=int(micros) / 1000, hash=str(digest),
            previous_hash=str(previous), outcomes=tuple(outcomes.get(str(decision_id), ())),
        )
        for (seq, decision_id, _, facts, masked, micros, digest, previous), document in zip(
            rows, documents, strict=True
        )
    ]


def trace_entries(session: Session, digests: Sequence[str]) -> list[Row]:
    """Return ``(digest, entry JSON)`` rows for those of ``digests`` that are stored."""
    rows: list[Row] = []
    for start in range(0, len(digests), IN_CHUNK):
        chunk = list(digests[start:start + IN_CHUNK])
        rows += session.query(
            f"SELECT digest, entry FROM trace_entries WHERE digest IN ({marks(len(chunk))})", chunk
        )
    return rows


def entry_problems(session: Session, chunk: int) -> tuple[set[str], dict[str, str]]:
    """Walk ``trace_entries``: return every stored digest, and a problem for each entry not matching it."""
    stored: set[str] = set()
    problems: dict[str, str] = {}
    after = ""
    while True:
        rows = session.query(
            "SELECT digest, entry FROM trace_entries WHERE digest > ? ORDER BY digest LIMIT ?", (after, chunk)
        )
        for digest, entry in rows:
            stored.add(str(digest))
            if entry_digest(str(entry)) != digest:
                problems[str(digest)] = f"trace entry {digest} was changed after it was written"
        if len(rows) < chunk:
            return stored, problems
        after = str(rows[-1][0])


def summaries(session: Session, clause: str, params: Sequence[object], limit: int) -> list[DecisionSummary]:
    """Return up to ``limit`` decision summaries matching ``clause``, oldest first."""
    rows = session.query(
        f"SELECT {_SUMMARY} FROM decisions d LEFT JOIN decision_equality e ON e.decision_id = d.decision_id"
        f" WHERE {clause} ORDER BY d.sequence LIMIT ?",
        [*params, limit],
    )
    return [
        DecisionSummary(
            int(seq), str(decision_id), from_micros(int(micros)), str(policy), str(version), Status(status),
            str(pathway), bool(directed), json.loads(facts), str(group),
        )
        for seq, decision_id, micros, policy, version, status, pathway, directed, facts, group in rows
    ]


def outcomes_of(session: Session, decision_ids: Sequence[str]) -> dict[str, list[OutcomeRecord]]:
    """Return the outcomes recorded for each of ``decision_ids``, oldest first."""
    by_decision: dict[str, list[OutcomeRecord]] = {}
    for start in range(0, len(decision_ids), IN_CHUNK):
        chunk = list(decision_ids[start:start + IN_CHUNK])
        rows = session.query(
            f"SELECT {_OUTCOME} FROM outcomes WHERE decision_id IN ({marks(len(chunk))}) ORDER BY sequence",
            chunk,
        )
        for row in rows:
            by_decision.setdefault(str(row[1]), []).append(outcome(row))
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
    session: Session, start: int, end: int, stored: Collection[str], bad: Mapping[str, str]
) -> list[chain.Link]:
    """Return the chain links of both kinds with ``start <= sequence < end``, in sequence order.

    A decision referring to a trace entry that is missing (not in ``stored``) or changed (in
    ``bad``, digest -> problem) carries that problem in its link.
    """
    linked = ", ".join(f"d.{column}" for column in chain.DECISION_COLUMNS)
    decision_rows = session.query(
        f"SELECT d.sequence, d.previous_hash, d.hash, {linked}, e.equality_group, e.salt, s.facts, s.salt"
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
    width = len(chain.DECISION_COLUMNS)
    found = []
    for row in decision_rows:
        values = tuple(row[3:3 + width])
        group, group_salt, facts, facts_salt = row[3 + width:]
        side = []
        # The commitments are the last two hashed columns: equality group, then sensitive facts.
        if group is not None:
            side.append(chain.SideValue("equality group", str(values[-2]), str(group_salt), str(group)))
        if facts is not None:
            side.append(chain.SideValue("sensitive facts", str(values[-1]), str(facts_salt), str(facts)))
        document = json.loads(str(values[chain.DECISION_COLUMNS.index("document")]))
        problem = next(
            (bad.get(d) or f"trace entry {d} is missing" for d in trace_digests(document)
             if d in bad or d not in stored),
            "",
        )
        found.append(
            chain.Link(int(row[0]), chain.DECISION, str(row[1]), str(row[2]), values, tuple(side), problem)
        )
    found += [
        chain.Link(int(row[0]), chain.OUTCOME, str(row[1]), str(row[2]), tuple(row[3:]))
        for row in outcome_rows
    ]
    return sorted(found, key=lambda link: link.sequence)
