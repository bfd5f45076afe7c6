"""Fairness figures over recorded outcomes: do individual-directed pathways fall unevenly on some groups.

*Being fair* asks trusts to watch whether formal processes fall unevenly on
some staff groups; the Workforce Race Equality Standard's indicator 3 measures
the relative likelihood of staff from one group entering a formal disciplinary
process compared with another (the "non-adverse" range is 0.8 to 1.25). fairpath
computes the same kind of figure over its own recommendations: for each group,
the share of its decisions whose pathway is *individual-directed*, divided by
the reference group's share, with a 95% confidence interval (Katz's log method,
adding 0.5 to every cell when a count is zero).

Small numbers identify people, so every count under :data:`SUPPRESS_BELOW`
(other than zero) is suppressed, and so is any ratio built from one. A ratio
also gives away its complements (a group's total minus its individual-directed
count), so it is suppressed when either group's complement is small too, and a
group total under the threshold is reported as 0.

The inputs are plain rows; the store decides how to fetch them. Equality groups
are pseudonymous codes supplied by the caller, kept apart from the facts and
never rule inputs.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

SUPPRESS_BELOW = 10
NOT_RECORDED = "(not recorded)"
PERIODS = ("all", "year", "quarter", "month")
_Z95 = 1.959964


@dataclass(frozen=True)
class OutcomeRow:
    """One recorded decision, reduced to what fairness figures need."""

    policy: str
    version: str
    evaluated_at: datetime
    pathway: str  # "" when the decision needed more information
    individual_directed: bool
    professional_group: str = ""
    equality_group: str = ""


@dataclass(frozen=True)
class StatsCell:
    """How many decisions of one group reached one pathway."""

    group: str
    pathway: str
    count: int
    suppressed: bool


@dataclass(frozen=True)
class RelativeLikelihood:
    """A group's likelihood of an individual-directed pathway relative to the reference group.

    When ``suppressed``, ratio and interval are 0, and so is ``individual_directed`` if it or its
    complement is under the threshold, and ``total`` if it is.
    """

    group: str
    reference_group: str
    individual_directed: int
    total: int
    ratio: float
    ci_low: float
    ci_high: float
    suppressed: bool


@dataclass(frozen=True)
class StatsSlice:
    """The figures for one policy version and period."""

    policy: str
    version: str
    period: str
    total: int
    by_professional_group: tuple[StatsCell, ...]
    by_equality_group: tuple[StatsCell, ...]
    relative_likelihood: tuple[RelativeLikelihood, ...]


def check_period(period: str) -> str:
    """Return ``period`` ("" meaning ``all``) if it is one of :data:`PERIODS`; raise ValueError otherwise."""
    chosen = period or "all"
    if chosen not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, got {period!r}")
    return chosen


def period_of(moment: datetime, period: str) -> str:
    """Return the label of the period ``moment`` falls in: ``all``, ``2026``, ``2026-Q4`` or ``2026-11``."""
    if period == "year":
        return f"{moment.year}"
    if period == "quarter":
        return f"{moment.year}-Q{(moment.month - 1) // 3 + 1}"
    if period == "month":
        return f"{moment.year}-{moment.month:02d}"
    if period == "all":
        return "all"
    raise ValueError(f"period must be one of {', '.join(PERIODS)}")


def outcome_stats(
    rows: Iterable[OutcomeRow], period: str = "all", reference_group: str = ""
) -> list[StatsSlice]:
    """Return the fairness figures per policy version and period, small cells suppressed.

    Raises:
        ValueError: ``period`` is not one of :data:`PERIODS` (checked even when there are no rows).

    """
    period = check_period(period)
    slices: dict[tuple[str, str, str], list[OutcomeRow]] = defaultdict(list)
    for row in rows:
        slices[(row.policy, row.version, period_of(row.evaluated_at, period))].append(row)
    return [
        _slice(policy, version, label, members, reference_group)
        for (policy, version, label), members in sorted(slices.items())
    ]


def _slice(
    policy: str, version: str, period: str, rows: list[OutcomeRow], reference_group: str
) -> StatsSlice:
    return StatsSlice(
        policy=policy,
        version=version,
        period=period,
        total=len(rows),
        by_professional_group=_cells(
            Counter((r.professional_group or NOT_RECORDED, r.pathway) for r in rows)
        ),
        by_equality_group=_cells(Counter((r.equality_group or NOT_RECORDED, r.pathway) for r in rows)),
        relative_likelihood=relative_likelihoods(rows, reference_group),
    )


def _cells(counts: Counter[tuple[str, str]]) -> tuple[StatsCell, ...]:
    return tuple(
        StatsCell(group, pathway or "NEEDS_INFORMATION", 0 if _small(n) else n, _small(n))
        for (group, pathway), n in sorted(counts.items())
    )


def _small(count: int) -> bool:
    return 0 < count < SUPPRESS_BELOW


def relative_likelihoods(
    rows: Iterable[OutcomeRow], reference_group: str = ""
) -> tuple[RelativeLikelihood, ...]:
    """Compare each recorded equality group against the reference (default: the group with most decisions)."""
    totals: Counter[str] = Counter()
    directed: Counter[str] = Counter()
    for row in rows:
        if row.equality_group and row.pathway:  # undecided and unrecorded rows say nothing here
            totals[row.equality_group] += 1
            directed[row.equality_group] += row.individual_directed
    if not totals:
        return ()
    reference = reference_group or max(sorted(totals), key=lambda group: totals[group])
    if reference not in totals:
        return ()
    b, n0 = directed[reference], totals[reference]
    results = []
    for group in sorted(totals):
        if group == reference:
            continue
        a, n1 = directed[group], totals[group]
        # Both totals and all four cells: shown with the totals, a ratio would give any of them away.
        small = any(_small(n) for n in (a, n1 - a, b, n0 - b))
        suppressed = n1 < SUPPRESS_BELOW or n0 < SUPPRESS_BELOW or small
        ratio, low, high = (0.0, 0.0, 0.0) if suppressed else katz_interval(a, n1, b, n0)
        shown_a = 0 if _small(a) or _small(n1 - a) else a
        shown_n1 = 0 if n1 < SUPPRESS_BELOW else n1
        results.append(RelativeLikelihood(group, reference, shown_a, shown_n1, ratio, low, high, suppressed))
    return tuple(results)


def katz_interval(a: int, n1: int, b: int, n0: int) -> tuple[float, float, float]:
    """Risk ratio (a/n1)/(b/n0) and its 95% interval by Katz's log method (0.5 added to zero cells)."""
    if 0 in (a, b, n1 - a, n0 - b):
        a, b, n1, n0 = a + 0.5, b + 0.5, n1 + 1, n0 + 1  # type: ignore[assignment]  # Haldane-Anscombe
    ratio = (a / n1) / (b / n0)
    spread = _Z95 * math.sqrt(1 / a - 1 / n1 + 1 / b - 1 / n0)
    return ratio, ratio * math.exp(-spread), ratio * math.exp(spread)
