"""Human-readable text for decisions and policy lists, as the CLI prints them.

The text is for people reading a terminal; programs should use
:meth:`Decision.to_dict` (``--json`` on the command line) instead, because this
layout may change.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from fairpath_client._incident import IncidentResult
from fairpath_client._models import Decision, FactValue, PolicyDetail, PolicySummary, RequiredDecision, TraceEntry
from fairpath_client._term import output_width, table

# Wider questions wrap onto continuation lines so the answer column stays readable.
_QUESTION_WIDTH = 56
_TEXT_WIDTH = 88
_DIGEST_PREFIX = 12


def render_decision(decision: Decision) -> str:
    """Describe a decision for a person: outcome, advice, gaps and the walk taken.

    Sections, each only when it has content: the outcome (pathway code, title,
    branch and recommendation, or the fact that information is missing),
    advice, warnings, missing facts with their questions, the walk (one line
    per question rule the walk reached: rule id, question, the answer(s) seen
    and where it led), then the policy, engine and ids.

    Args:
        decision: The decision to describe.

    Returns:
        Multi-line text ending in a newline.

    """
    sections = [
        _outcome(decision),
        _bullets("Advice", [f"{a.code}: {a.text}  (rule {a.rule_id})" for a in decision.advice]),
        _bullets("Warnings", [_warning(w.code, w.text, w.facts) for w in decision.warnings]),
        _bullets(
            "Missing information",
            [f"{m.fact}: {m.question}  (rule {m.rule_id})" for m in decision.missing_facts],
        ),
        _walk(decision.trace),
        _footer(decision),
        *(_required(link) for link in decision.required),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections if lines) + "\n"


def _required(link: RequiredDecision) -> list[str]:
    """Return a chained policy's required decision: what was taken from it, then it in full, indented."""
    taken = ", ".join(f"{fact} = its {source}" for fact, source in sorted(link.facts.items()))
    head = f"Required {link.policy}@{link.version}: decision {link.decision_id} (took {taken})"
    if link.decision is None:
        return [head, "  (recorded on its own: fairpath decisions show " + link.decision_id + ")"]
    return [head, *("  " + line if line else "" for line in render_decision(link.decision).splitlines())]


def render_incident(result: IncidentResult) -> str:
    """Describe an incident's result for a person: the incident's advice, a summary, then each decision.

    The advice comes first because it is about how to read the decisions below it (a cohort
    signal says to look at the system before any one person). A table gives one line per action
    (index, references, pathway or status, whether it is individual-directed, decision id); then
    each decision is rendered by :func:`render_decision` under a heading naming the action.

    Args:
        result: What :meth:`FairpathClient.evaluate_incident` returned.

    Returns:
        Multi-line text ending in a newline.

    """
    count = len(result.decisions)
    headline = f"Incident {result.incident_ref}: {count} action{'' if count == 1 else 's'}"
    if result.dry_run:
        headline += " (dry run: nothing recorded)"
    advice = _bullets(
        "Incident advice",
        [f"{a.code}: {a.text}  (rule {a.rule_id}: {a.reason})" for a in result.advice],
    ) or ["Incident advice: none"]
    # "DIRECTED": individual-directed; the shorter heading keeps the row within 100 columns.
    rows = [["ACTION", "STAFF", "REF", "OUTCOME", "DIRECTED", "DECISION"]]
    rows += [
        [
            f"actions[{index}]", d.subject.staff_ref or "-", d.subject.action_ref or "-",
            d.pathway.code if d.pathway else d.status,
            ("yes" if d.pathway.individual_directed else "no") if d.pathway else "-",
            d.decision_id,
        ]
        for index, d in enumerate(result.decisions)
    ]
    parts = ["\n".join([headline, "", *advice, "", *_table(rows)]) + "\n"]
    for index, decision in enumerate(result.decisions):
        refs = decision.subject
        heading = f"== actions[{index}]  staff {refs.staff_ref or '-'}  action {refs.action_ref or '-'} =="
        parts.append(heading + "\n" + render_decision(decision))
    return "\n".join(parts)


def render_walk(trace: Sequence[TraceEntry]) -> str:
    """Render only the walk: one line per question rule the walk reached.

    Example::

        G1  Is this a patient safety incident?        YES         -> rule G2
        1a  Was there any intention to cause harm?    NO          -> rule 2a
        2a  Was the individual unwell?                unanswered

    Args:
        trace: A decision's trace; advice, check and unreached rules are skipped.

    Returns:
        The lines, each ending in a newline ("" if no question was reached).

    """
    return "".join(line + "\n" for line in _walk_rows(trace))


def render_policies(policies: Sequence[PolicySummary]) -> str:
    """Tabulate policy versions: name, version, status, current, digest prefix, title.

    Args:
        policies: Summaries as returned by :meth:`FairpathClient.list_policies`.

    Returns:
        A table with a header row, ending in a newline.

    """
    if not policies:
        return "No policies loaded.\n"
    rows = [["NAME", "VERSION", "STATUS", "EFFECTIVE", "CURRENT", "DIGEST", "TITLE"]]
    rows += [
        [p.name, p.version, p.status, p.effective_from or "-", _currency(p), p.digest[:_DIGEST_PREFIX], p.title]
        for p in policies
    ]
    return "".join(line + "\n" for line in _table(rows))


def render_policy_detail(detail: PolicyDetail) -> str:
    """Describe one policy version for a person answering or reviewing it.

    Sections: the version (status, whether current and why not, effective date, full digest),
    its description, its questions in the order the walk asks them (fact, type, allowed values,
    wording), its pathways and its advice codes.

    Returns:
        Multi-line text ending in a newline.

    """
    summary = detail.summary
    head = [f"{summary.name} {summary.version}: {summary.title}".rstrip(": ")]
    why = f" ({summary.not_current_reason})" if summary.not_current_reason else ""
    head.append(f"  status {summary.status}; " + ("current" if summary.current else f"not current{why}"))
    head.append(f"  effective from {summary.effective_from or '(no date: as soon as it is served)'}")
    head.append(f"  sha256 {summary.digest}")
    head += [f"  requires the decision of {r.policy}@{r.version}: send its facts too" for r in detail.requires]
    if detail.description:
        head += ["", *textwrap.wrap(" ".join(detail.description.split()), _TEXT_WIDTH, break_long_words=False,
                                     break_on_hyphens=False)]
    questions = ["Questions, in the order the walk asks them:"]
    for number, fact in enumerate(detail.facts_in_walk_order(), 1):
        kind = fact.type.lower() + (", sensitive: masked in the trail" if fact.sensitive else "")
        kind += f", taken from {fact.taken_from}: not sent" if fact.taken_from else ""
        questions += ["", f"{number:>3}. {fact.name}  ({kind})"]
        if fact.allowed_values:
            questions += _wrapped("values: " + ", ".join(fact.allowed_values), "       ", "               ")
        if fact.question or fact.description:
            questions += _wrapped(fact.question or fact.description, "       ", "       ")
    pathways = [["PATHWAY", "INDIVIDUAL-DIRECTED", "TITLE"]]
    pathways += [[p.code, "yes" if p.individual_directed else "no", p.title] for p in detail.pathways]
    advice = ["Advice codes:"]
    for item in detail.advice:
        advice += ["", f"  {item.code}  (rule {item.rule_id})", *_wrapped(item.text, "    ", "    ")]
    sections = [
        "\n".join(head),
        "\n".join(questions),
        "Pathways:\n" + "\n".join(_table(pathways)),
        "\n".join(advice) if detail.advice else "Advice codes: none",
    ]
    return "\n\n".join(sections) + "\n"


def _wrapped(text: str, first: str, rest: str) -> list[str]:
    """``text`` (its whitespace folded) wrapped to the output's width, words and identifiers whole."""
    return textwrap.wrap(" ".join(text.split()), output_width(), initial_indent=first, subsequent_indent=rest,
                         break_long_words=False, break_on_hyphens=False)


def _currency(summary: PolicySummary) -> str:
    """``yes`` for the current version, else ``no (why)``."""
    if summary.current:
        return "yes"
    return f"no ({summary.not_current_reason})" if summary.not_current_reason else "no"


def _outcome(decision: Decision) -> list[str]:
    """Return the headline: the pathway and its recommendation, or why there is none yet."""
    pathway = decision.pathway
    if decision.status == "NEEDS_INFORMATION":
        return ["NEEDS INFORMATION  the walk stopped at a question that has no answer yet"]
    if pathway is None:
        return [f"{decision.status}  no pathway recommended"]
    headline = f"{decision.status}  {pathway.code}  {pathway.title}"
    if pathway.sub_reason:
        headline += f"  (branch {pathway.sub_reason})"
    # A long title wraps onto indented lines; the status and code always lead the first.
    lines = textwrap.wrap(headline, max(output_width(), 60), subsequent_indent="  ", break_long_words=False,
                          break_on_hyphens=False) or [headline]
    if pathway.recommendation:
        lines += textwrap.wrap(
            pathway.recommendation,
            _TEXT_WIDTH,
            initial_indent="  Recommendation: ",
            subsequent_indent="  ",
            break_long_words=False,
            break_on_hyphens=False,
        )
    details = []
    if pathway.category:
        details.append(f"category {pathway.category}")
    details.append("directed at the individual" if pathway.individual_directed else "not individual-directed")
    lines.append("  " + "; ".join(details))
    return lines


def _bullets(title: str, items: list[str]) -> list[str]:
    """Return a titled, wrapped list; nothing when there are no items."""
    if not items:
        return []
    lines = [title]
    for item in items:
        lines += textwrap.wrap(
            item, _TEXT_WIDTH, initial_indent="  - ", subsequent_indent="    ", break_long_words=False,
            break_on_hyphens=False,  # an identifier (a rule id, a fact name) stays on one line
        )
    return lines


def _warning(code: str, text: str, facts: Sequence[str]) -> str:
    """Return one warning line, naming the facts that look contradictory."""
    return f"{code}: {text}  (facts: {', '.join(facts)})" if facts else f"{code}: {text}"


def _walk(trace: Sequence[TraceEntry]) -> list[str]:
    """Return the titled walk section; nothing when no question was reached."""
    rows = _walk_rows(trace)
    return ["Walk", *("  " + row for row in rows)] if rows else []


def _walk_rows(trace: Sequence[TraceEntry]) -> list[str]:
    """Return aligned lines for the reached question rules, long questions wrapped."""
    reached = [e for e in trace if e.kind == "QUESTION" and e.result != "NOT_REACHED"]
    if not reached:
        return []
    questions = [
        textwrap.wrap(_question(e), _QUESTION_WIDTH, break_long_words=False, break_on_hyphens=False) or [""]
        for e in reached
    ]
    answers = [_answer(e) for e in reached]
    id_width = max(len(e.rule_id) for e in reached)
    question_width = max(len(line) for wrapped in questions for line in wrapped)
    answer_width = max(len(a) for a in answers)
    lines = []
    for entry, wrapped, answer in zip(reached, questions, answers, strict=True):
        arrow = f"-> {entry.leads_to}" if entry.leads_to else ""
        cells = [entry.rule_id.ljust(id_width), wrapped[0].ljust(question_width), answer.ljust(answer_width)]
        lines.append("  ".join([*cells, arrow]).rstrip())
        lines += [f"{'':<{id_width}}  {more}" for more in wrapped[1:]]
    return lines


def _question(entry: TraceEntry) -> str:
    """Return what the rule asks, falling back to its title or condition."""
    return entry.question or entry.title or entry.condition


def _answer(entry: TraceEntry) -> str:
    """Return the answer(s) the rule saw: a bare value for one fact, name=value for several."""
    if entry.result == "UNANSWERED":
        return "unanswered"
    seen = entry.facts_seen
    if len(seen) == 1:
        return _value(next(iter(seen.values())))
    if seen:
        return ", ".join(f"{name}={_value(value)}" for name, value in seen.items())
    # A condition that reads no fact (a constant gate) still held or not.
    return {"FIRED": "held", "NOT_FIRED": "not held"}.get(entry.result, entry.result.lower())


def _value(value: FactValue) -> str:
    """Format a fact value as a person writes it: true/false, 3 rather than 3.0."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple):  # a set fact
        return "[" + ", ".join(value) + "]"
    return str(value)


def _footer(decision: Decision) -> list[str]:
    """Return which policy and engine answered, and the ids to quote when asking about it."""
    policy = decision.policy
    engine = f"{decision.engine_name} {decision.engine_version}".strip()
    lines = [f"Policy {policy.name} {policy.version} (sha256 {policy.digest[:_DIGEST_PREFIX]})"]
    if engine:
        lines[0] += f"; engine {engine}"
    ids = [f"Decision {decision.decision_id} at {decision.evaluated_at.isoformat()}"]
    if decision.request_id:
        ids.append(f"request {decision.request_id}")
    refs = decision.subject
    if refs.incident_ref or refs.staff_ref or refs.action_ref:
        ids.append(f"subject {refs.incident_ref or '-'}/{refs.staff_ref or '-'}/{refs.action_ref or '-'}")
    if decision.required_by:
        ids.append(f"required by decision {decision.required_by}")
    if decision.dry_run:
        ids.append("dry run, not recorded")  # its id will not be found in the audit trail
    lines.append("; ".join(ids))
    return lines


def _table(rows: list[list[str]]) -> list[str]:
    """Lay out left-aligned columns two spaces apart, fitting the output's width (see :mod:`._term`)."""
    return table(rows)
