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
(other than zero) is suppressed, and so is any ratio built from one. A suppressed
count must not be recoverable by subtraction either (a group's total, shown with
its likelihood, minus its other cells; the slice's total minus every other cell),
so a second round suppresses, as official statistics do, the smallest shown cell
of any group left with exactly one suppressed cell, and the smallest shown cell of
the table when it holds exactly one suppressed cell. A suppressed cell is therefore
not always a small one: :data:`SUPPRESSION_NOTE` says so wherever figures are shown. A ratio
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
from dataclasses import dataclass, field
from datetime import datetime

SUPPRESS_BELOW = 10
#: What a reader of suppressed figures is told (the CLI, the console and its CSV), ``{n}`` the threshold.
SUPPRESSION_NOTE = (
    "Counts under {n} are suppressed, and so are as many other counts as it takes that no suppressed count "
    "can be worked out from a total (secondary suppression); a suppressed count is not always under {n}."
)
NOT_RECORDED = "(not recorded)"
PERIODS = ("all", "year", "quarter", "month")
_Z95 = 1.959964


class UnknownGroupError(ValueError):
    """The reference group asked for has no decided decision among those the figures cover."""

    def __init__(self, group: str, known: Iterable[str]) -> None:
        self.group = group
        self.known = sorted(known)
        recorded = f"the groups recorded are {', '.join(self.known)}" if self.known else "no equality group is recorded"
        super().__init__(f"no decided decision has equality group {group!r}; {recorded}")


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
        UnknownGroupError: ``reference_group`` is not the equality group of any decided row.

    """
    tally = StatsTally(period)
    for row in rows:
        tally.add(row)
    return tally.figures(reference_group)


@dataclass
class _Counts:
    """What one slice's figures are made of: counts only, however many rows went in."""

    total: int = 0
    professional: Counter[tuple[str, str]] = field(default_factory=Counter)
    equality: Counter[tuple[str, str]] = field(default_factory=Counter)
    decided: Counter[str] = field(default_factory=Counter)  # decided rows per equality group
    directed: Counter[str] = field(default_factory=Counter)  # of which individual-directed


class StatsTally:
    """The figures of :func:`outcome_stats`, accumulated one row at a time.

    Memory grows with the slices, groups and pathways seen, never with the rows: a trail of any
    length is counted as it is read.

    Raises:
        ValueError: ``period`` is not one of :data:`PERIODS`.

    """

    def __init__(self, period: str = "all") -> None:
        self.period = check_period(period)
        self._slices: dict[tuple[str, str, str], _Counts] = defaultdict(_Counts)

    def add(self, row: OutcomeRow) -> None:
        """Count one row."""
        counts = self._slices[(row.policy, row.version, period_of(row.evaluated_at, self.period))]
        counts.total += 1
        counts.professional[(row.professional_group or NOT_RECORDED, row.pathway)] += 1
        counts.equality[(row.equality_group or NOT_RECORDED, row.pathway)] += 1
        if row.equality_group and row.pathway:  # undecided and unrecorded rows say nothing to the ratios
            counts.decided[row.equality_group] += 1
            counts.directed[row.equality_group] += row.individual_directed

    def figures(self, reference_group: str = "") -> list[StatsSlice]:
        """Return the figures of the rows counted so far, per policy version and period.

        Raises:
            UnknownGroupError: ``reference_group`` is not the equality group of any decided row.

        """
        groups = {group for counts in self._slices.values() for group in counts.decided}
        # With decisions but no such group the ratios would all be missing without a word: refuse.
        if reference_group and self._slices and reference_group not in groups:
            raise UnknownGroupError(reference_group, groups)
        return [
            StatsSlice(
                policy=policy,
                version=version,
                period=label,
                total=counts.total,
                by_professional_group=_cells(counts.professional),
                by_equality_group=_cells(counts.equality),
                relative_likelihood=_likelihoods(counts.decided, counts.directed, reference_group),
            )
            for (policy, version, label), counts in sorted(self._slices.items())
        ]


def _cells(counts: Counter[tuple[str, str]]) -> tuple[StatsCell, ...]:
    hidden = suppressed_cells(counts)
    return tuple(
        StatsCell(key[0], key[1] or "NEEDS_INFORMATION", 0 if key in hidden else counts[key], key in hidden)
        for key in sorted(counts)
    )


def suppressed_cells(counts: Counter[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (group, pathway) cells to hide: every small count, then enough others that none can be derived.

    Primary: counts from 1 to ``SUPPRESS_BELOW - 1``. Secondary: a group left with exactly one hidden
    cell hides its smallest shown cell too (its total is published beside its likelihood), and a table
    left with exactly one hidden cell hides its smallest shown cell (the slice's total is published).
    """
    hidden = {key for key, n in counts.items() if _small(n)}
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key in counts:
        groups[key[0]].append(key)
    for cells in groups.values():
        if sum(key in hidden for key in cells) == 1:
            _hide_smallest(counts, [key for key in cells if key not in hidden], hidden)
    if len(hidden) == 1:
        _hide_smallest(counts, [key for key in counts if key not in hidden], hidden)
    return hidden


def _hide_smallest(
    counts: Counter[tuple[str, str]], shown: list[tuple[str, str]], hidden: set[tuple[str, str]]
) -> None:
    if shown:
        hidden.add(min(shown, key=lambda key: (counts[key], key)))


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
    return _likelihoods(totals, directed, reference_group)


def _likelihoods(
    totals: Counter[str], directed: Counter[str], reference_group: str
) -> tuple[RelativeLikelihood, ...]:
    """:func:`relative_likelihoods` from the decided and individual-directed counts per group."""
    if not totals:
        return ()
    reference = reference_group or max(sorted(totals), key=lambda group: totals[group])
    if reference not in totals:
        return ()  # not in this slice (outcome_stats refuses a group no slice has)
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
