"""Translations for ``EvaluateIncident``: the request's actions in, the decisions and incident advice out.

Pure functions, no gRPC calls; facts and decisions are translated as for
``Evaluate`` (:mod:`fairpath.api.decision_convert`), so each action's decision is on the
wire exactly what ``Evaluate`` would send.
"""

from __future__ import annotations

from fairpath.api import decision_convert
from fairpath.serving.incidents import IncidentAction, IncidentAdvice, IncidentResult, check_request
from fairpath.v1 import evaluation_service_pb2 as pb
from fairpath.wire import DecisionWire, decision_to_proto


def actions_from_proto(request: pb.EvaluateIncidentRequest) -> list[IncidentAction]:
    """Return the domain actions of an ``EvaluateIncident`` request.

    Raises:
        InvalidRequestError: No incident reference, no action, an action without a staff reference
            or naming another incident (:func:`fairpath.serving.incidents.check_request`).

    """
    actions = [
        IncidentAction(
            staff_ref=action.subject.staff_ref,
            action_ref=action.subject.action_ref,
            facts=decision_convert.facts_from_proto(action.facts),
            equality_group=action.subject.equality_group,
        )
        for action in request.actions
    ]
    check_request(request.incident_ref, actions, [action.subject.incident_ref for action in request.actions])
    return actions


def incident_to_proto(result: IncidentResult, encoder: DecisionWire | None = None) -> pb.EvaluateIncidentResponse:
    """Return the wire form of an incident's decisions and advice.

    ``encoder`` encodes the decisions, as for :func:`fairpath.wire.decision_to_proto`.
    """
    return pb.EvaluateIncidentResponse(
        incident_ref=result.incident_ref,
        decisions=[decision_to_proto(decision, encoder) for decision in result.decisions],
        advice=[_advice(advice) for advice in result.advice],
        request_id=result.request_id,
        dry_run=result.dry_run,
    )


def _advice(advice: IncidentAdvice) -> pb.IncidentAdvice:
    return pb.IncidentAdvice(
        code=advice.code, text=advice.text, rule_id=advice.rule_id, reason=advice.reason,
        action_indexes=list(advice.action_indexes),
    )
