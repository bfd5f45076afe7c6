"""Replay and stats translation: requests in, reports and figures out, and the client reading them back."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fairpath.api import impact_convert
from fairpath.api.decision_service import DecisionService
from fairpath.audit import open_store
from fairpath.audit.fairness import RelativeLikelihood, StatsCell, StatsSlice
from fairpath.audit.replay import ChangedDecision, ReplayReport, RuleChange, SkipReason, Transition
from fairpath.errors import InvalidRequestError, UnimplementedError
from fairpath.v1 import decision_service_pb2 as pb
from fairpath_client import OutcomeStats
from fairpath_client import ReplayReport as ClientReport
from google.protobuf import timestamp_pb2

FIGURES = StatsSlice(
    policy="p", version="1.1.0", period="2026-Q4", total=42,
    by_professional_group=(StatsCell("DOCTOR", "G", 12, False), StatsCell("NURSE", "G", 0, True)),
    by_equality_group=(StatsCell("G1", "E", 30, False),),
    relative_likelihood=(RelativeLikelihood("G1", "G2", 12, 40, 1.5, 0.9, 2.5, False),),
)
REPORT = ReplayReport(
    replayed=40, changed=2, skipped=3,
    transitions=(Transition("D", "E", 2), Transition("G", "G", 38)),
    rule_changes=(RuleChange("4a", 1, 3, 2, 0),),
    changed_decisions=(ChangedDecision("d1", "1.0.0", "D", "NEEDS_INFORMATION", ("X",), ("Y",), ("peers",)),),
    skip_reasons=(SkipReason("facts.x: not a fact of p@1.1.0", 3, ("d7", "d8", "d9")),),
    candidate_stats=(FIGURES,),
    recorded_stats=(dataclasses.replace(FIGURES, version="1.0.0"),),
)


def plain(value: Any) -> Any:
    """Return a dataclass tree as dicts, lists and scalars, for comparing domain and client values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [plain(item) for item in value]
    return value


def test_a_replay_report_reaches_the_client_field_for_field() -> None:
    """Every field of the domain report survives the wire and the client's from_proto unchanged."""
    received = ClientReport.from_proto(impact_convert.report_to_proto(REPORT))
    expected = plain(REPORT) | {"suppression_threshold": 10}
    assert plain(received) == expected


def test_outcome_stats_reach_the_client_with_the_threshold() -> None:
    """Slices and the suppression threshold come back as the client's OutcomeStats."""
    received = OutcomeStats.from_proto(impact_convert.stats_response([FIGURES]))
    assert received.suppression_threshold == 10
    assert plain(received.slices) == [plain(FIGURES)]


def test_a_replay_request_is_read_with_its_filter_trimmed_names_and_options() -> None:
    """Filter, candidate, cap, period and reference group all reach the domain request."""
    message = pb.ReplayDecisionsRequest(
        filter=pb.DecisionFilter(pathway="D"), policy=" p ", version=" 1.1.0 ", max_changed=7,
        period="year", reference_group="G2",
    )
    request = impact_convert.replay_request(message)
    assert (request.query.pathway, request.policy, request.version) == ("D", "p", "1.1.0")
    assert (request.max_changed, request.period, request.reference_group) == (7, "year", "G2")


def test_a_stats_window_ending_before_it_starts_is_refused() -> None:
    """to_time before from_time is an invalid request naming to_time, not an empty answer."""
    message = pb.OutcomeStatsRequest(
        from_time=timestamp_pb2.Timestamp(seconds=20), to_time=timestamp_pb2.Timestamp(seconds=10)
    )
    with pytest.raises(InvalidRequestError) as refused:
        impact_convert.stats_query(message)
    assert [v.field for v in refused.value.violations] == ["to_time"]


def test_a_stats_window_becomes_the_filter() -> None:
    """Policy, version and times select the decisions the figures cover."""
    message = pb.OutcomeStatsRequest(policy="p", version="1", from_time=timestamp_pb2.Timestamp(seconds=0))
    query = impact_convert.stats_query(message)
    assert (query.policy, query.version, query.from_time, query.to_time) == (
        "p", "1", datetime(1970, 1, 1, tzinfo=UTC), None,
    )


def test_a_service_without_an_evaluator_says_replay_is_unimplemented(tmp_path: Path) -> None:
    """A DecisionService built with only a store refuses replay with UNIMPLEMENTED, never half-works."""
    store = open_store(f"sqlite:///{tmp_path / 'trail.sqlite3'}")
    try:
        with pytest.raises(UnimplementedError):
            DecisionService(store).ReplayDecisions(pb.ReplayDecisionsRequest(version="1.1.0"), None)  # type: ignore[arg-type]
    finally:
        store.close()
