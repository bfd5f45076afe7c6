"""Text for replay reports and fairness figures, as ``fairpath replay`` and ``fairpath stats`` print them.

Tables are laid out like the other commands' (two spaces between columns).
Counts the service suppressed print as ``suppressed``, not as ``<10``: besides
every count under the threshold it reports, the service hides as many others as
it takes that no hidden count can be worked out from a total (secondary
suppression), and those are not small. Every set of figures ends by saying so.
Relative likelihoods outside the 0.8 to 1.25 "non-adverse" range are flagged.
Programs should use ``--json``: this layout may change.
"""

from __future__ import annotations

import textwrap
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
from fairpath_client._term import output_width

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
    note = "\n".join(textwrap.wrap(suppression_note(threshold), output_width(), break_long_words=False))
    return "\n\n".join([*(_slice(s, threshold) for s in slices), note]) + "\n"


def suppression_note(threshold: int = DEFAULT_THRESHOLD) -> str:
    """What "suppressed" means in the figures (the service's ``fairpath.audit.fairness.SUPPRESSION_NOTE``)."""
    return (
        f"Counts under {threshold} are suppressed, and so are as many other counts as it takes that no "
        "suppressed count can be worked out from a total (secondary suppression); a suppressed count is not "
        f"always under {threshold}."
    )


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
            ratio, interval, flag = "-", "-", f"suppressed (a count under {threshold}, or derivable)"
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
    """One block per changed decision: its id and recorded version, the change, then what else changed.

    A block rather than one table row: a decision id, two pathway codes and lists of advice codes
    and fact names are wider than a terminal together, and none of them may be broken.
    """
    if not report.changed_decisions:
        return ""
    shown = len(report.changed_decisions)
    more = f" (first {shown} of {report.changed})" if shown < report.changed else ""
    lines = [f"Changed decisions{more}:"]
    for change in report.changed_decisions:
        lines.append(f"  {change.decision_id}  recorded under {change.from_version}")
        lines.append(f"    {change.from_pathway} → {change.to_pathway}")
        details = [
            f"{label}: {', '.join(codes)}"
            for label, codes in (("advice added", change.advice_added), ("advice removed", change.advice_removed),
                                 ("now missing", change.missing_facts))
            if codes
        ]
        if details:
            lines += textwrap.wrap("; ".join(details), output_width(), initial_indent="    ",
                                   subsequent_indent="      ", break_long_words=False, break_on_hyphens=False)
    return "\n".join(lines)


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
    del threshold  # a suppressed count may be hidden by the second round, so it is not always "<threshold"
    return "suppressed" if suppressed else str(count)
