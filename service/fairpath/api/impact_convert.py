"""Translations for replay and fairness monitoring: requests in, reports and figures out.

Pure functions, no gRPC calls. Filters are read by :mod:`fairpath.api.record_convert`,
as ``ListDecisions`` reads them, so a replay selects exactly what a listing shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC

from fairpath.api.record_convert import filter_from_proto
from fairpath.audit.fairness import SUPPRESS_BELOW, RelativeLikelihood, StatsCell, StatsSlice
from fairpath.audit.records import DecisionFilter
from fairpath.audit.replay import ReplayReport, ReplayRequest
from fairpath.errors import FieldViolation, InvalidRequestError
from fairpath.v1 import decision_service_pb2 as pb


def replay_request(message: pb.ReplayDecisionsRequest) -> ReplayRequest:
    """Return the domain request of a ``ReplayDecisions`` call (values checked by the replayer).

    Raises:
        InvalidRequestError: A malformed filter.

    """
    return ReplayRequest(
        query=filter_from_proto(message.filter),
        version=message.version.strip(),
        policy=message.policy.strip(),
        max_changed=message.max_changed,
        period=message.period,
        reference_group=message.reference_group,
    )


def stats_query(message: pb.OutcomeStatsRequest) -> DecisionFilter:
    """Return the decisions an ``OutcomeStats`` call covers.

    Raises:
        InvalidRequestError: A time range that ends before it starts.

    """
    from_time = message.from_time.ToDatetime(tzinfo=UTC) if message.HasField("from_time") else None
    to_time = message.to_time.ToDatetime(tzinfo=UTC) if message.HasField("to_time") else None
    if from_time and to_time and to_time < from_time:
        raise InvalidRequestError([FieldViolation("to_time", "must not be before from_time")])
    return DecisionFilter(
        from_time=from_time, to_time=to_time, policy=message.policy, version=message.version
    )


def stats_response(slices: Iterable[StatsSlice]) -> pb.OutcomeStatsResponse:
    """Return the wire form of fairness figures."""
    return pb.OutcomeStatsResponse(slices=slices_to_proto(slices), suppression_threshold=SUPPRESS_BELOW)


def report_to_proto(report: ReplayReport) -> pb.ReplayReport:
    """Return the wire form of a replay report."""
    return pb.ReplayReport(
        replayed=report.replayed,
        changed=report.changed,
        skipped=report.skipped,
        transitions=[
            pb.Transition(from_pathway=t.from_pathway, to_pathway=t.to_pathway, count=t.count)
            for t in report.transitions
        ],
        rule_changes=[
            pb.RuleChange(
                rule_id=r.rule_id, fired_before=r.fired_before, fired_after=r.fired_after,
                started_firing=r.started_firing, stopped_firing=r.stopped_firing,
            )
            for r in report.rule_changes
        ],
        changed_decisions=[
            pb.ChangedDecision(
                decision_id=c.decision_id, from_version=c.from_version, from_pathway=c.from_pathway,
                to_pathway=c.to_pathway, advice_added=c.advice_added, advice_removed=c.advice_removed,
                missing_facts=c.missing_facts,
            )
            for c in report.changed_decisions
        ],
        skip_reasons=[
            pb.SkipReason(reason=s.reason, count=s.count, decision_ids=s.decision_ids)
            for s in report.skip_reasons
        ],
        candidate_stats=slices_to_proto(report.candidate_stats),
        recorded_stats=slices_to_proto(report.recorded_stats),
        suppression_threshold=SUPPRESS_BELOW,
    )


def slices_to_proto(slices: Iterable[StatsSlice]) -> list[pb.StatsSlice]:
    """Return the wire form of fairness figures, slice by slice."""
    return [
        pb.StatsSlice(
            policy=s.policy,
            version=s.version,
            period=s.period,
            total=s.total,
            by_professional_group=[_cell(cell) for cell in s.by_professional_group],
            by_equality_group=[_cell(cell) for cell in s.by_equality_group],
            relative_likelihood=[_likelihood(item) for item in s.relative_likelihood],
        )
        for s in slices
    ]


def _cell(cell: StatsCell) -> pb.StatsCell:
    return pb.StatsCell(group=cell.group, pathway=cell.pathway, count=cell.count, suppressed=cell.suppressed)


def _likelihood(item: RelativeLikelihood) -> pb.RelativeLikelihood:
    return pb.RelativeLikelihood(
        group=item.group, reference_group=item.reference_group,
        individual_directed=item.individual_directed, total=item.total, ratio=item.ratio,
        ci_low=item.ci_low, ci_high=item.ci_high, suppressed=item.suppressed,
    )
