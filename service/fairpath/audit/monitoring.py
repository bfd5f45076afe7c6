"""Fairness monitoring over the trail: recorded decisions in, :mod:`fairpath.audit.fairness` figures out.

The use case behind ``OutcomeStats`` (and the ``recorded_stats`` of a replay):
it reads :meth:`~fairpath.audit.store.DecisionStore.iter_summaries` (indexed
columns, masked facts and the equality group, no trace decoding) and reduces
each decision to an :class:`~fairpath.audit.fairness.OutcomeRow`.

The professional group is the recorded fact ``professional_group`` where the
policy declared it (the recorded facts passed the policy's validation, so a
fact present there was declared). A policy that marks it ``sensitive`` has it
masked in the record, and it then counts as not recorded: figures are built
from what a reviewer may see, never from the values kept apart for replay.

Nothing here logs facts or equality groups.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime

from fairpath.audit.fairness import OutcomeRow, StatsSlice, UnknownGroupError, check_period, outcome_stats
from fairpath.audit.records import DecisionFilter, DecisionSummary
from fairpath.audit.store import DecisionStore
from fairpath.decisions import Decision
from fairpath.errors import FieldViolation, InvalidRequestError
from fairpath.serving.masking import MASK

#: The fact a policy declares to say which staff group someone belongs to (never a protected characteristic).
PROFESSIONAL_GROUP = "professional_group"


def professional_group(facts: Mapping[str, object]) -> str:
    """Return the recorded professional group, or "" when the facts hold none (or only a masked one)."""
    value = facts.get(PROFESSIONAL_GROUP)
    return value if isinstance(value, str) and value != MASK else ""


def period(requested: str, field: str = "period") -> str:
    """Return the period to report by ("" meaning ``all``).

    Raises:
        InvalidRequestError: Not one of ``all``, ``year``, ``quarter``, ``month``.

    """
    try:
        return check_period(requested)
    except ValueError as error:
        raise InvalidRequestError([FieldViolation(field, str(error))]) from None


def summary_row(summary: DecisionSummary) -> OutcomeRow:
    """Reduce one recorded decision summary to what the figures need."""
    return OutcomeRow(
        policy=summary.policy,
        version=summary.version,
        evaluated_at=summary.evaluated_at,
        pathway=summary.pathway,
        individual_directed=summary.individual_directed,
        professional_group=professional_group(summary.facts),
        equality_group=summary.equality_group,
    )


def decision_row(
    decision: Decision, facts: Mapping[str, object], equality_group: str, *, evaluated_at: datetime
) -> OutcomeRow:
    """Reduce a decision (recorded or replayed) to a row dated ``evaluated_at``.

    A replayed decision is dated when the recorded one was made, so that both fall in the same periods.
    """
    pathway = decision.pathway
    return OutcomeRow(
        policy=decision.policy.name,
        version=decision.policy.version,
        evaluated_at=evaluated_at,
        pathway=pathway.code if pathway else "",
        individual_directed=bool(pathway and pathway.individual_directed),
        professional_group=professional_group(facts),
        equality_group=equality_group,
    )


def recorded_rows(store: DecisionStore, query: DecisionFilter) -> Iterator[OutcomeRow]:
    """Yield one row per recorded decision matching ``query``, oldest first."""
    return (summary_row(summary) for summary in store.iter_summaries(query))


def outcome_figures(
    store: DecisionStore, query: DecisionFilter, *, period_name: str = "all", reference_group: str = ""
) -> list[StatsSlice]:
    """Fairness figures of the recorded decisions matching ``query``, per policy version and period.

    Raises:
        InvalidRequestError: An unknown period, or a reference group no matching decision has.
        StoreUnavailableError: The store cannot be read now.

    """
    chosen = period(period_name)
    try:
        return outcome_stats(recorded_rows(store, query), chosen, reference_group)
    except UnknownGroupError as error:
        raise InvalidRequestError([FieldViolation("reference_group", str(error))]) from None
