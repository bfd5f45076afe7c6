"""Plain, frozen values for replay reports and fairness figures.

They mirror ``fairpath.v1`` messages (``ReplayReport``, ``OutcomeStatsResponse``
and their parts) like :mod:`fairpath_client._models`, so callers never handle
generated classes. A pathway reads ``"NEEDS_INFORMATION"`` in a transition or a
changed decision where the walk stopped for a missing answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from fairpath.v1 import decision_service_pb2 as pb

from fairpath_client._models import _Model

#: The "non-adverse" range of a relative likelihood (WRES): a ratio outside it is worth a look.
NON_ADVERSE_LOW = 0.8
NON_ADVERSE_HIGH = 1.25


@dataclass(frozen=True, kw_only=True)
class StatsCell(_Model):
    """How many decisions of one group reached one pathway; ``count`` is 0 when ``suppressed`` (under 10)."""

    group: str
    pathway: str
    count: int
    suppressed: bool

    @classmethod
    def from_proto(cls, message: pb.StatsCell) -> StatsCell:
        """Build from a ``fairpath.v1.StatsCell`` message."""
        return cls(
            group=message.group, pathway=message.pathway, count=message.count, suppressed=message.suppressed
        )


@dataclass(frozen=True, kw_only=True)
class RelativeLikelihood(_Model):
    """How likely an individual-directed pathway is for ``group`` relative to ``reference_group``.

    Attributes:
        ratio: (individual-directed share of the group) / (share of the reference group).
        ci_low: Lower end of the 95% confidence interval (Katz).
        ci_high: Upper end.
        suppressed: A count behind it is under the threshold: ratio and interval are 0, and so
            are the counts that would give a small one away.

    """

    group: str
    reference_group: str
    individual_directed: int
    total: int
    ratio: float
    ci_low: float
    ci_high: float
    suppressed: bool

    @property
    def outside_non_adverse(self) -> bool:
        """True when the ratio is outside the 0.8 to 1.25 range (never for a suppressed one)."""
        return not self.suppressed and not NON_ADVERSE_LOW <= self.ratio <= NON_ADVERSE_HIGH

    @classmethod
    def from_proto(cls, message: pb.RelativeLikelihood) -> RelativeLikelihood:
        """Build from a ``fairpath.v1.RelativeLikelihood`` message."""
        return cls(
            group=message.group, reference_group=message.reference_group,
            individual_directed=message.individual_directed, total=message.total, ratio=message.ratio,
            ci_low=message.ci_low, ci_high=message.ci_high, suppressed=message.suppressed,
        )


@dataclass(frozen=True, kw_only=True)
class StatsSlice(_Model):
    """The fairness figures of one policy version over one period (``"all"``, ``"2026"``, ``"2026-Q4"``…)."""

    policy: str
    version: str
    period: str
    total: int
    by_professional_group: tuple[StatsCell, ...]
    by_equality_group: tuple[StatsCell, ...]
    relative_likelihood: tuple[RelativeLikelihood, ...]

    @classmethod
    def from_proto(cls, message: pb.StatsSlice) -> StatsSlice:
        """Build from a ``fairpath.v1.StatsSlice`` message."""
        return cls(
            policy=message.policy, version=message.version, period=message.period, total=message.total,
            by_professional_group=tuple(StatsCell.from_proto(c) for c in message.by_professional_group),
            by_equality_group=tuple(StatsCell.from_proto(c) for c in message.by_equality_group),
            relative_likelihood=tuple(RelativeLikelihood.from_proto(r) for r in message.relative_likelihood),
        )


@dataclass(frozen=True, kw_only=True)
class OutcomeStats(_Model):
    """The fairness figures :meth:`FairpathClient.outcome_stats` returns, and the suppression threshold."""

    slices: tuple[StatsSlice, ...]
    suppression_threshold: int

    @classmethod
    def from_proto(cls, message: pb.OutcomeStatsResponse) -> OutcomeStats:
        """Build from a ``fairpath.v1.OutcomeStatsResponse`` message."""
        return cls(
            slices=tuple(StatsSlice.from_proto(s) for s in message.slices),
            suppression_threshold=message.suppression_threshold,
        )


@dataclass(frozen=True, kw_only=True)
class Transition(_Model):
    """How many replayed decisions went from one pathway to another (equal codes: unchanged)."""

    from_pathway: str
    to_pathway: str
    count: int


@dataclass(frozen=True, kw_only=True)
class RuleChange(_Model):
    """A rule whose firing changed: in how many decisions it fired before and after, and which way."""

    rule_id: str
    fired_before: int
    fired_after: int
    started_firing: int
    stopped_firing: int


@dataclass(frozen=True, kw_only=True)
class ChangedDecision(_Model):
    """A recorded decision whose pathway or advice the candidate changes."""

    decision_id: str
    from_version: str
    from_pathway: str
    to_pathway: str
    advice_added: tuple[str, ...]
    advice_removed: tuple[str, ...]
    missing_facts: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class SkipReason(_Model):
    """Why some decisions could not be replayed, how many, and the ids of the first few."""

    reason: str
    count: int
    decision_ids: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ReplayReport(_Model):
    """The impact of a candidate policy version on recorded decisions (nothing was recorded by it).

    Attributes:
        replayed: Decisions re-evaluated.
        changed: Of those, how many changed pathway or advice.
        skipped: Decisions the candidate could not evaluate (see ``skip_reasons``).
        transitions: Pathway from -> to with counts, unchanged ones included.
        rule_changes: Rules whose firing changed in at least one decision.
        changed_decisions: The decisions that change, up to the requested cap.
        candidate_stats: Fairness figures of the candidate's outcomes.
        recorded_stats: The same figures for the recorded outcomes of the replayed decisions.
        suppression_threshold: Counts under this are suppressed in the figures.

    """

    replayed: int
    changed: int
    skipped: int
    transitions: tuple[Transition, ...]
    rule_changes: tuple[RuleChange, ...]
    changed_decisions: tuple[ChangedDecision, ...]
    skip_reasons: tuple[SkipReason, ...]
    candidate_stats: tuple[StatsSlice, ...]
    recorded_stats: tuple[StatsSlice, ...]
    suppression_threshold: int

    @classmethod
    def from_proto(cls, message: pb.ReplayReport) -> ReplayReport:
        """Build from a ``fairpath.v1.ReplayReport`` message."""
        return cls(
            replayed=message.replayed,
            changed=message.changed,
            skipped=message.skipped,
            transitions=tuple(
                Transition(from_pathway=t.from_pathway, to_pathway=t.to_pathway, count=t.count)
                for t in message.transitions
            ),
            rule_changes=tuple(
                RuleChange(
                    rule_id=r.rule_id, fired_before=r.fired_before, fired_after=r.fired_after,
                    started_firing=r.started_firing, stopped_firing=r.stopped_firing,
                )
                for r in message.rule_changes
            ),
            changed_decisions=tuple(
                ChangedDecision(
                    decision_id=c.decision_id, from_version=c.from_version, from_pathway=c.from_pathway,
                    to_pathway=c.to_pathway, advice_added=tuple(c.advice_added),
                    advice_removed=tuple(c.advice_removed), missing_facts=tuple(c.missing_facts),
                )
                for c in message.changed_decisions
            ),
            skip_reasons=tuple(
                SkipReason(reason=s.reason, count=s.count, decision_ids=tuple(s.decision_ids))
                for s in message.skip_reasons
            ),
            candidate_stats=tuple(StatsSlice.from_proto(s) for s in message.candidate_stats),
            recorded_stats=tuple(StatsSlice.from_proto(s) for s in message.recorded_stats),
            suppression_threshold=message.suppression_threshold,
        )
