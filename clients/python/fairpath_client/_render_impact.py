"""Text for replay reports and fairness figures, as ``fairpath replay`` and ``fairpath stats`` print them.

Tables are laid out like the other commands' (two spaces between columns).
Counts the service suppressed print as ``<10`` (the threshold it reports);
relative likelihoods outside the 0.8 to 1.25 "non-adverse" range are flagged.
Programs should use ``--json``: this layout may change.
"""

from __future__ import annotations

from collections.abc import Sequence

from fairpath_client._impact import (
    NON_ADVERSE_HIGH,
    NON_ADVERSE_LOW,
    RelativeLikelihood,
    ReplayReport,
    StatsCell,
    StatsSlice,
)
from fairpath_client._render import _table

#: The threshold assumed when a response does not carry one (an older server).
DEFAULT_THRESHOLD = 10


def render_replay(report: ReplayReport) -> str:
    """Describe a replay: counts, transition matrix, rule changes, changed and skipped decisions, figures.

    Returns:
        Multi-line text ending in a newline.

    """
    head = (
        f"Replayed {report.replayed} decision(s): {report.changed} changed, {report.skipped} skipped."
        " Nothing was recorded."
    )
    sections = [head, _transitions(report), _rule_changes(report), _changed(report), _skipped(report)]
    threshold = report.suppression_threshold or DEFAULT_THRESHOLD
    if report.recorded_stats or report.candidate_stats:
        sections += [
            "Fairness figures as recorded:\n\n" + render_stats(report.recorded_stats, threshold),
            "Fairness figures of the candidate:\n\n" + render_stats(report.candidate_stats, threshold),
        ]
    return "\n\n".join(section.rstrip("\n") for section in sections if section) + "\n"


def render_stats(slices: Sequence[StatsSlice], threshold: int = DEFAULT_THRESHOLD) -> str:
    """Describe fairness figures slice by slice: counts by professional and equality group, likelihoods.

    Returns:
        Multi-line text ending in a newline.

    """
    if not slices:
        return "No decisions match.\n"
    return "\n\n".join(_slice(s, threshold) for s in slices) + "\n"


def _slice(figures: StatsSlice, threshold: int) -> str:
    parts = [
        f"{figures.policy}@{figures.version}, period {figures.period}: {figures.total} decision(s)",
        "Pathways by professional group:\n" + _cells(figures.by_professional_group, threshold),
        "Pathways by equality group:\n" + _cells(figures.by_equality_group, threshold),
        _likelihoods(figures.relative_likelihood, threshold),
    ]
    return "\n\n".join(part for part in parts if part)


def _cells(cells: Sequence[StatsCell], threshold: int) -> str:
    rows = [["GROUP", "PATHWAY", "COUNT"]]
    rows += [[c.group, c.pathway, _count(c.count, c.suppressed, threshold)] for c in cells]
    return "\n".join(_table(rows))


def _likelihoods(items: Sequence[RelativeLikelihood], threshold: int) -> str:
    if not items:
        return "Relative likelihood: no equality groups to compare."
    title = (
        "Relative likelihood of an individual-directed pathway (reference group"
        f" {items[0].reference_group}; flagged outside {NON_ADVERSE_LOW}-{NON_ADVERSE_HIGH}):"
    )
    rows = [["GROUP", "DIRECTED", "TOTAL", "RATIO", "95% CI", ""]]
    for item in items:
        if item.suppressed:
            ratio, interval, flag = "-", "-", f"suppressed (a count under {threshold})"
        else:
            ratio, interval = f"{item.ratio:.2f}", f"{item.ci_low:.2f}-{item.ci_high:.2f}"
            flag = "OUTSIDE 0.8-1.25" if item.outside_non_adverse else ""
        directed_hidden = item.suppressed and item.individual_directed == 0
        rows.append([
            item.group,
            _count(item.individual_directed, directed_hidden, threshold),
            _count(item.total, item.suppressed and item.total == 0, threshold),
            ratio, interval, flag,
        ])
    return title + "\n" + "\n".join(_table(rows))


def _transitions(report: ReplayReport) -> str:
    if not report.transitions:
        return ""
    rows = [["FROM (RECORDED)", "TO (CANDIDATE)", "COUNT", ""]]
    rows += [
        [t.from_pathway, t.to_pathway, str(t.count), "" if t.from_pathway == t.to_pathway else "changed"]
        for t in report.transitions
    ]
    return "Pathway transitions:\n" + "\n".join(_table(rows))


def _rule_changes(report: ReplayReport) -> str:
    if not report.rule_changes:
        return "No rule fires differently." if report.replayed else ""
    rows = [["RULE", "FIRED BEFORE", "FIRED AFTER", "STARTED FIRING", "STOPPED FIRING"]]
    rows += [
        [r.rule_id, str(r.fired_before), str(r.fired_after), str(r.started_firing), str(r.stopped_firing)]
        for r in report.rule_changes
    ]
    return "Rules whose firing changed:\n" + "\n".join(_table(rows))


def _changed(report: ReplayReport) -> str:
    if not report.changed_decisions:
        return ""
    shown = len(report.changed_decisions)
    more = f" (first {shown} of {report.changed})" if shown < report.changed else ""
    title = f"Changed decisions{more}:"
    rows = [["DECISION", "VERSION", "FROM", "TO", "ADVICE ADDED", "ADVICE REMOVED", "MISSING"]]
    rows += [
        [
            c.decision_id, c.from_version, c.from_pathway, c.to_pathway, ", ".join(c.advice_added) or "-",
            ", ".join(c.advice_removed) or "-", ", ".join(c.missing_facts) or "-",
        ]
        for c in report.changed_decisions
    ]
    return title + "\n" + "\n".join(_table(rows))


def _skipped(report: ReplayReport) -> str:
    if not report.skip_reasons:
        return ""
    lines = ["Skipped (the candidate could not evaluate them):"]
    lines += [
        f"  {s.count} x {s.reason}" + (f" (e.g. {', '.join(s.decision_ids)})" if s.decision_ids else "")
        for s in report.skip_reasons
    ]
    return "\n".join(lines)


def _count(count: int, suppressed: bool, threshold: int) -> str:
    return f"<{threshold}" if suppressed else str(count)
