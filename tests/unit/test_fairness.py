"""Fairness figures: suppression of small counts, reference groups, Katz intervals, zero cells, periods."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from fairpath.audit.fairness import (
    NOT_RECORDED,
    SUPPRESS_BELOW,
    OutcomeRow,
    StatsCell,
    UnknownGroupError,
    katz_interval,
    outcome_stats,
    period_of,
    relative_likelihoods,
)
from fairpath.audit.monitoring import professional_group, summary_row
from fairpath.audit.records import DecisionSummary
from fairpath.decisions import Status
from fairpath.serving.masking import MASK

WHEN = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
DIRECTED = "JCG_G_MANAGEMENT_ACTION"
NOT_DIRECTED = "JCG_E_NOT_SINGLE_OUT_SUBSTITUTION"


def rows(
    group: str, directed: int, not_directed: int, *, profession: str = "REGISTERED_NURSE",
    when: datetime = WHEN, version: str = "1.0.0",
) -> list[OutcomeRow]:
    """``directed`` individual-directed and ``not_directed`` other decisions of one equality group."""
    yes = OutcomeRow("guide", version, when, DIRECTED, True, profession, group)
    no = OutcomeRow("guide", version, when, NOT_DIRECTED, False, profession, group)
    return [yes] * directed + [no] * not_directed


def cell(cells: tuple[StatsCell, ...], group: str, pathway: str) -> StatsCell:
    """Return the one cell of ``group`` and ``pathway``."""
    (found,) = [c for c in cells if c.group == group and c.pathway == pathway]
    return found


# --- suppression ----------------------------------------------------------------------


def test_counts_under_ten_are_suppressed_and_ten_is_shown() -> None:
    """A cell of 1-9 decisions reads count 0, suppressed; a cell of exactly 10 is shown as it is."""
    (figures,) = outcome_stats(rows("G1", SUPPRESS_BELOW, 0) + rows("G2", 0, SUPPRESS_BELOW - 1)
                               + rows("G2", 0, SUPPRESS_BELOW - 1, profession="DOCTOR"))
    by_group = figures.by_equality_group
    assert cell(by_group, "G1", DIRECTED) == StatsCell("G1", DIRECTED, 10, suppressed=False)
    assert cell(by_group, "G2", NOT_DIRECTED) == StatsCell("G2", NOT_DIRECTED, 18, suppressed=False)
    assert cell(figures.by_professional_group, "DOCTOR", NOT_DIRECTED).suppressed
    assert figures.total == 28  # the slice total is not a group's cell


def test_a_lone_suppressed_cell_in_a_group_hides_the_groups_smallest_other_cell() -> None:
    """Secondary suppression.

    G1's total (19, published with its likelihood) minus a shown 10 would give its hidden 9 away, so the 10 is hidden
    too; G2's cells, none small, stay shown.
    """
    (figures,) = outcome_stats(rows("G1", SUPPRESS_BELOW, SUPPRESS_BELOW - 1) + rows("G2", 40, 60))
    by_group = figures.by_equality_group
    assert cell(by_group, "G1", DIRECTED) == StatsCell("G1", DIRECTED, 0, suppressed=True)
    assert cell(by_group, "G1", NOT_DIRECTED) == StatsCell("G1", NOT_DIRECTED, 0, suppressed=True)
    assert cell(by_group, "G2", DIRECTED) == StatsCell("G2", DIRECTED, 40, suppressed=False)
    assert cell(by_group, "G2", NOT_DIRECTED) == StatsCell("G2", NOT_DIRECTED, 60, suppressed=False)


def test_a_table_with_one_suppressed_cell_hides_its_smallest_other_cell() -> None:
    """Secondary suppression across the table.

    The slice total minus every shown cell would give a lone hidden cell away even when its group has no other cell, so
    the table's smallest shown cell is hidden too.
    """
    (figures,) = outcome_stats(rows("G1", 0, 5) + rows("G2", 12, 0) + rows("G3", 30, 0))
    by_group = figures.by_equality_group
    assert [c.suppressed for c in by_group] == [True, True, False]  # G1's 5, then G2's 12, the smaller shown
    assert figures.total == 47


def test_no_suppressed_cell_can_be_derived_from_the_published_totals() -> None:
    """Over many tables: wherever a group (or the table) holds a hidden cell, it holds at least two."""
    for small in range(1, SUPPRESS_BELOW):
        for other in (SUPPRESS_BELOW, 15, 40):
            data = rows("G1", other, small) + rows("G2", other + 1, other + 2) + rows("G3", small, 0)
            (figures,) = outcome_stats(data)
            hidden = [c for c in figures.by_equality_group if c.suppressed]
            for group in {c.group for c in hidden}:
                in_group = [c for c in figures.by_equality_group if c.group == group]
                assert len(in_group) == 1 or sum(c.suppressed for c in in_group) >= 2
            assert len(hidden) != 1


def test_an_unknown_reference_group_is_refused_with_the_groups_that_exist() -> None:
    """A reference group no decided decision has would silently give no ratios; it is refused, naming the groups."""
    with pytest.raises(UnknownGroupError, match=r"G9.*G1, G2") as raised:
        outcome_stats(rows("G1", 20, 20) + rows("G2", 20, 20), reference_group="G9")
    assert raised.value.known == ["G1", "G2"]
    assert outcome_stats([], reference_group="G9") == []  # nothing recorded: nothing to refuse


def test_a_reference_group_is_refused_when_decisions_carry_no_equality_group_at_all() -> None:
    """Decisions recorded without equality groups give no ratios to any reference group: refused, saying so."""
    with pytest.raises(UnknownGroupError, match="no equality group is recorded"):
        outcome_stats(rows("", 20, 20), reference_group="G9")


def test_a_pathway_no_one_reached_has_no_cell_rather_than_a_zero() -> None:
    """Only observed (group, pathway) pairs appear, so zero is never shown as a suppressed count."""
    (figures,) = outcome_stats(rows("G1", 12, 0))
    assert [(c.group, c.pathway) for c in figures.by_equality_group] == [("G1", DIRECTED)]


def test_ratio_is_suppressed_when_the_compared_group_has_a_small_count() -> None:
    """A group with 5 individual-directed decisions gets no ratio and its directed count hidden."""
    (likelihood,) = relative_likelihoods(rows("G1", 30, 70) + rows("G2", 5, 40))
    assert likelihood.suppressed
    assert (likelihood.ratio, likelihood.ci_low, likelihood.ci_high) == (0.0, 0.0, 0.0)
    assert likelihood.individual_directed == 0
    assert likelihood.total == 45


def test_ratio_is_suppressed_when_the_complement_is_small() -> None:
    """12 of 15 directed leaves 3 not directed: the ratio and 12 would give the 3 away, so both are hidden."""
    (likelihood,) = relative_likelihoods(rows("G1", 30, 70) + rows("G2", 12, 3))
    assert likelihood.suppressed
    assert likelihood.individual_directed == 0
    assert likelihood.total == 15


def test_ratio_is_suppressed_when_the_reference_group_has_a_small_count() -> None:
    """A small count in the reference group suppresses every ratio built on it."""
    (likelihood,) = relative_likelihoods(rows("G1", 4, 96) + rows("G2", 20, 30), reference_group="G1")
    assert likelihood.suppressed
    assert likelihood.individual_directed == 20  # the compared group's own counts are not small


def test_group_total_under_ten_is_reported_as_zero() -> None:
    """A group of 6 decisions shows neither its total nor a ratio."""
    (likelihood,) = relative_likelihoods(rows("G1", 30, 70) + rows("G2", 0, 6))
    assert likelihood.suppressed
    assert (likelihood.total, likelihood.individual_directed) == (0, 0)


# --- reference group -----------------------------------------------------------------


def test_the_largest_group_is_the_default_reference() -> None:
    """Without a reference group, the group with most decisions is the reference and is not listed itself."""
    found = relative_likelihoods(rows("G1", 20, 30) + rows("G2", 30, 70) + rows("G3", 10, 20))
    assert [item.group for item in found] == ["G1", "G3"]
    assert {item.reference_group for item in found} == {"G2"}


def test_a_tie_for_largest_goes_to_the_first_group_in_order() -> None:
    """Two groups of equal size: the one sorting first is the reference, so the choice is stable."""
    (likelihood,) = relative_likelihoods(rows("B", 20, 30) + rows("A", 10, 40))
    assert (likelihood.group, likelihood.reference_group) == ("B", "A")


def test_an_explicit_reference_group_is_used() -> None:
    """A named reference group is compared against even when it is not the largest."""
    (likelihood,) = relative_likelihoods(rows("G1", 10, 90) + rows("G2", 20, 30), reference_group="G2")
    assert (likelihood.group, likelihood.reference_group) == ("G1", "G2")
    assert likelihood.ratio == pytest.approx((10 / 100) / (20 / 50))


def test_an_unknown_reference_group_gives_no_ratios() -> None:
    """A reference group with no decisions in the slice gives no ratios rather than a wrong comparison."""
    assert relative_likelihoods(rows("G1", 20, 30) + rows("G2", 30, 70), reference_group="G9") == ()


def test_undecided_and_unmonitored_decisions_are_left_out_of_ratios() -> None:
    """NEEDS_INFORMATION rows and rows without an equality group count in cells but not in likelihoods."""
    undecided = [OutcomeRow("guide", "1.0.0", WHEN, "", False, "DOCTOR", "G2") for _ in range(50)]
    unmonitored = rows("", 40, 0)
    data = rows("G1", 20, 80) + rows("G2", 20, 30) + undecided + unmonitored
    (figures,) = outcome_stats(data)
    (likelihood,) = figures.relative_likelihood
    assert (likelihood.group, likelihood.reference_group, likelihood.total) == ("G2", "G1", 50)
    assert cell(figures.by_equality_group, "G2", "NEEDS_INFORMATION").count == 50
    assert cell(figures.by_equality_group, NOT_RECORDED, DIRECTED).count == 40
    assert cell(figures.by_professional_group, "DOCTOR", "NEEDS_INFORMATION").count == 50


# --- Katz interval ---------------------------------------------------------------------


def test_katz_interval_matches_a_hand_computed_example() -> None:
    """20/100 vs 10/100: RR 2, SE(ln RR) = sqrt(1/20 - 1/100 + 1/10 - 1/100) = 0.36056, CI 0.9866-4.0545."""
    ratio, low, high = katz_interval(20, 100, 10, 100)
    assert ratio == pytest.approx(2.0)
    assert low == pytest.approx(2.0 / math.exp(1.96 * math.sqrt(0.13)), rel=1e-4)
    assert (round(low, 4), round(high, 4)) == (0.9866, 4.0545)


def test_relative_likelihood_carries_the_katz_figures() -> None:
    """Through the figures: 30/60 against the reference 20/80 is RR 2.0 with CI 1.2674-3.1560."""
    (likelihood,) = relative_likelihoods(rows("G1", 20, 60) + rows("G2", 30, 30), reference_group="G1")
    assert not likelihood.suppressed
    assert (likelihood.individual_directed, likelihood.total) == (30, 60)
    assert likelihood.ratio == pytest.approx(2.0)
    assert (round(likelihood.ci_low, 4), round(likelihood.ci_high, 4)) == (1.2674, 3.156)


def test_zero_cell_adds_a_half_to_every_cell() -> None:
    """0/20 vs 10/40 is taken as (0.5/21)/(10.5/41): RR 0.0930, CI 0.0057-1.5104, not a division by zero."""
    ratio, low, high = katz_interval(0, 20, 10, 40)
    assert ratio == pytest.approx((0.5 / 21) / (10.5 / 41))
    assert (round(ratio, 4), round(low, 4), round(high, 4)) == (0.093, 0.0057, 1.5104)


def test_a_group_with_no_individual_directed_decisions_is_not_suppressed() -> None:
    """Zero is not a small count: a group of 20 with none directed gets a (corrected) ratio."""
    (likelihood,) = relative_likelihoods(rows("G1", 10, 30) + rows("G2", 0, 20), reference_group="G1")
    assert not likelihood.suppressed
    assert likelihood.individual_directed == 0
    assert likelihood.ratio == pytest.approx((0.5 / 21) / (10.5 / 41))


def test_reference_with_no_individual_directed_decisions_still_gives_a_finite_ratio() -> None:
    """A zero in the reference group is corrected too, so the ratio is finite."""
    ratio, low, high = katz_interval(10, 40, 0, 20)
    assert all(math.isfinite(x) for x in (ratio, low, high))
    assert low < ratio < high


# --- periods and slices ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "label"), [("all", "all"), ("year", "2026"), ("quarter", "2026-Q4"), ("month", "2026-11")]
)
def test_period_labels(period: str, label: str) -> None:
    """A moment in November 2026 falls in 2026, 2026-Q4 and 2026-11."""
    assert period_of(WHEN, period) == label


def test_figures_are_sliced_per_version_and_period_in_order() -> None:
    """Rows of two months and two versions give one slice per (policy, version, month), sorted."""
    october = datetime(2026, 10, 31, 23, 59, tzinfo=UTC)
    data = rows("G1", 10, 0, when=WHEN) + rows("G1", 0, 10, when=october) + rows("G1", 10, 0, version="1.1.0")
    found = [(s.version, s.period, s.total) for s in outcome_stats(data, "month")]
    assert found == [("1.0.0", "2026-10", 10), ("1.0.0", "2026-11", 10), ("1.1.0", "2026-11", 10)]
    assert [(s.period, s.total) for s in outcome_stats(data, "quarter")] == [("2026-Q4", 20), ("2026-Q4", 10)]
    assert [s.period for s in outcome_stats(data, "")] == ["all", "all"]


def test_an_unknown_period_is_refused_even_without_rows() -> None:
    """A bad period is an error up front, not only when a row happens to be sliced."""
    with pytest.raises(ValueError, match="period must be one of"):
        outcome_stats([], "week")


# --- professional group from recorded facts ------------------------------------------------


def test_professional_group_comes_from_the_recorded_fact_unless_masked() -> None:
    """The recorded professional_group is the group; a masked or absent one reads as not recorded."""
    assert professional_group({"professional_group": "DOCTOR"}) == "DOCTOR"
    assert professional_group({"professional_group": MASK}) == ""
    assert professional_group({"intent_to_harm": "NO"}) == ""


def test_summary_row_takes_pathway_group_and_equality_group_from_the_record() -> None:
    """A stored summary becomes a row with its pathway, individual-directed flag and both groups."""
    summary = DecisionSummary(
        sequence=1, decision_id="d1", evaluated_at=WHEN, policy="guide", version="1.0.0",
        status=Status.DECIDED, pathway=DIRECTED, individual_directed=True,
        facts={"professional_group": "MIDWIFE"}, equality_group="G7",
    )
    assert summary_row(summary) == OutcomeRow("guide", "1.0.0", WHEN, DIRECTED, True, "MIDWIFE", "G7")
