"""Text and CSV for the decision trail, as ``fairpath decisions`` prints it.

``show`` prints one record: the decision as :func:`render_decision` words it
(outcome, advice, missing information, the walk taken), then the facts as
recorded (sensitive ones masked), what people did afterwards, and where the
record sits in the hash chain. ``list`` prints one line per record; ``export
--format csv`` one row per record with the columns of :data:`CSV_COLUMNS`.
Programs should prefer ``--json`` / ``--format jsonl``: this layout may change.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from fairpath_client._records import ChainReport, DecisionRecord, OutcomeRecord
from fairpath_client._render import _table, _value, render_decision

_HASH_PREFIX = 16

#: The columns of ``fairpath decisions export --format csv``, in order.
CSV_COLUMNS = (
    "sequence", "decision_id", "evaluated_at", "policy", "version", "digest", "status", "pathway",
    "sub_reason", "individual_directed", "advice", "warnings", "missing_facts", "fired_rules",
    "incident_ref", "staff_ref", "action_ref", "request_id", "caller", "duration_ms", "masked_facts",
    "facts", "outcomes", "last_action", "departs_from_recommendation", "hash", "previous_hash",
)


def render_record(record: DecisionRecord) -> str:
    """Describe one recorded decision for a person: the decision and its walk, facts, outcomes, chain.

    Returns:
        Multi-line text ending in a newline.

    """
    sections = [
        render_decision(record.decision).rstrip("\n"),
        "\n".join(_facts(record)),
        "\n".join(_outcomes(record.outcomes, record)),
        f"Record {record.sequence} in the hash chain: sha256 {record.hash[:_HASH_PREFIX]}…, "
        f"previous {record.previous_hash[:_HASH_PREFIX]}…; evaluated in {record.duration_ms:.3f} ms",
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def render_records(records: Sequence[DecisionRecord]) -> str:
    """Tabulate records, two lines each: sequence, id, time and policy; then status, pathway, subject, outcome.

    Two lines because a decision id, a timestamp, a policy name and a pathway code are together wider
    than 100 columns, and none of them may be broken: the first line is a table of identifiers, the
    second (indented) says what was decided and what people did.
    """
    if not records:
        return "No decisions match.\n"
    rows = [["SEQ", "DECISION", "EVALUATED AT", "POLICY"]]
    details = []
    for record in records:
        d = record.decision
        rows.append([
            str(record.sequence), d.decision_id, d.evaluated_at.isoformat(timespec="seconds"),
            f"{d.policy.name}@{d.policy.version}",
        ])
        details.append(
            f"{d.status} {d.pathway.code if d.pathway else '-'}; incident {d.subject.incident_ref or '-'}, "
            f"staff {d.subject.staff_ref or '-'}; outcome {_last_outcome(record)}"
        )
    header, *lines = _table(rows)
    indent = " " * (len(str(records[-1].sequence)) + 2)
    body = [f"{line}\n{indent}{detail}" for line, detail in zip(lines, details, strict=True)]
    return "".join(line + "\n" for line in [header, *body])


def render_chain_report(report: ChainReport) -> str:
    """Say whether the chain is intact and, if not, which record is the first broken link."""
    if report.intact:
        anchored = (
            f"; the trail contains and extends {report.checkpoints_verified} signed checkpoint(s)"
            if report.checkpoints_verified else ""
        )
        return f"Chain intact: {report.records_checked} record(s) checked{anchored}.\n"
    return (
        f"Chain BROKEN at record {report.first_broken_sequence}: {report.problem}\n"
        f"({report.records_checked} record(s) checked; records before it are intact.)\n"
    )


def csv_row(record: DecisionRecord) -> list[str]:
    """Return one record as the cells of :data:`CSV_COLUMNS`; lists are ``;``-joined, facts JSON."""
    d = record.decision
    p = d.pathway
    last = record.outcomes[-1] if record.outcomes else None
    cells = {
        "sequence": str(record.sequence), "decision_id": d.decision_id,
        "evaluated_at": d.evaluated_at.isoformat(), "policy": d.policy.name, "version": d.policy.version,
        "digest": d.policy.digest, "status": d.status, "pathway": p.code if p else "",
        "sub_reason": p.sub_reason if p else "",
        "individual_directed": _flag(p.individual_directed if p else None),
        "advice": ";".join(a.code for a in d.advice), "warnings": ";".join(w.code for w in d.warnings),
        "missing_facts": ";".join(m.fact for m in d.missing_facts),
        "fired_rules": ";".join(e.rule_id for e in d.trace if e.result == "FIRED"),
        "incident_ref": d.subject.incident_ref, "staff_ref": d.subject.staff_ref,
        "action_ref": d.subject.action_ref, "request_id": d.request_id, "caller": d.caller,
        "duration_ms": f"{record.duration_ms:.3f}", "masked_facts": ";".join(record.masked_facts),
        "facts": json.dumps(record.facts, sort_keys=True, ensure_ascii=False),
        "outcomes": str(len(record.outcomes)), "last_action": last.action_taken if last else "",
        "departs_from_recommendation": _flag(last.departs_from_recommendation if last else None),
        "hash": record.hash, "previous_hash": record.previous_hash,
    }
    return [cells[column] for column in CSV_COLUMNS]


def _facts(record: DecisionRecord) -> list[str]:
    if not record.facts:
        return []
    width = max(len(name) for name in record.facts)
    lines = ["Facts as recorded, in the order the walk asked them"]
    for name in _walk_order(record):
        value = record.facts[name]
        shown = _value(value) if isinstance(value, str | float | bool) else json.dumps(value)
        lines.append(f"  {name.ljust(width)}  {shown}")
    if record.masked_facts:
        lines.append(f"  (masked as sensitive: {', '.join(record.masked_facts)})")
    return lines


def _walk_order(record: DecisionRecord) -> list[str]:
    """The recorded facts in the order the walk read them (its trace), then the others by name.

    A record keeps facts as a mapping, whose order is the sender's; the walk's is the one a reviewer
    follows, question by question.
    """
    order = [name for entry in record.decision.trace for name in entry.facts_seen if name in record.facts]
    walked = list(dict.fromkeys(order))
    return [*walked, *sorted(name for name in record.facts if name not in walked)]


def _outcomes(outcomes: Sequence[OutcomeRecord], record: DecisionRecord) -> list[str]:
    if not outcomes:
        return ["Outcomes: none recorded yet"]
    recommended = record.decision.pathway.code if record.decision.pathway else "no pathway"
    lines = ["Outcomes"]
    for outcome in outcomes:
        departs = f"  DEPARTS from {recommended}" if outcome.departs_from_recommendation else ""
        when = outcome.recorded_at.isoformat(timespec="seconds")
        lines.append(f"  {when}  {outcome.reviewer}: {outcome.action_taken}{departs}")
        if outcome.reason:
            lines.append(f"    reason: {outcome.reason}")
    return lines


def _last_outcome(record: DecisionRecord) -> str:
    if not record.outcomes:
        return "-"
    last = record.outcomes[-1]
    return f"{last.action_taken}{' (departs)' if last.departs_from_recommendation else ''}"


def _flag(value: bool | None) -> str:
    return "" if value is None else ("true" if value else "false")
