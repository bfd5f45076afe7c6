"""``fairpath.v1.EvaluationService``: Evaluate and EvaluateIncident, a thin translator to the recorder.

Servicers never build a status: they raise the domain errors of
:mod:`fairpath.errors` and :class:`fairpath.api.status.StatusInterceptor`
reports them. They bind ids (never facts) into structlog's context so the one
access-log line of :class:`fairpath.api.interceptors.AccessLogInterceptor`
says which policy version answered and which decision it made.
"""

from __future__ import annotations

import grpc
import structlog

from fairpath.api import decision_convert, incident_convert
from fairpath.api.auth import current_caller
from fairpath.api.interceptors import current_request_id, ended_by_client
from fairpath.recording import DecisionRecorder
from fairpath.v1 import evaluation_service_pb2, evaluation_service_pb2_grpc

_log = structlog.get_logger(__name__)


class EvaluationService(evaluation_service_pb2_grpc.EvaluationServiceServicer):
    """``fairpath.v1.EvaluationService``: evaluates actions against a policy, recording the decisions."""

    def __init__(self, recorder: DecisionRecorder) -> None:
        self._recorder = recorder

    def Evaluate(  # noqa: N802 - the name is the RPC's
        self, request: evaluation_service_pb2.EvaluateRequest, context: grpc.ServicerContext
    ) -> evaluation_service_pb2.EvaluateResponse:
        """Evaluate the request's facts and return the decision with its trace."""
        structlog.contextvars.bind_contextvars(policy=request.policy, version=request.version)
        # Recorded before it is returned (unless dry_run); the equality group is stored apart, not evaluated.
        decision = self._recorder.evaluate(
            request.policy,
            decision_convert.facts_from_proto(request.facts),
            version=request.version,
            subject=decision_convert.subject_from_proto(request.subject),
            request_id=current_request_id(),
            caller=current_caller(),
            equality_group=request.subject.equality_group,
            dry_run=request.dry_run,
        )
        structlog.contextvars.bind_contextvars(
            version=decision.policy.version,
            decision_id=decision.decision_id,
            decision_status=decision.status.value,
            pathway=decision.pathway.code if decision.pathway else "",
        )
        ended = None if request.dry_run else ended_by_client(context)
        if ended is not None:
            # Recorded (the record is the truth) but the caller has gone: say so where it can be found.
            # The converse is not knowable: a caller still there now may yet miss the answer.
            _log.warning("decision_recorded_caller_gone", ended=ended.name)
        return evaluation_service_pb2.EvaluateResponse(decision=decision_convert.decision_to_proto(decision))

    def EvaluateIncident(  # noqa: N802 - the name is the RPC's
        self, request: evaluation_service_pb2.EvaluateIncidentRequest, context: grpc.ServicerContext
    ) -> evaluation_service_pb2.EvaluateIncidentResponse:
        """Evaluate every action of one incident, recording all its decisions or none, and advise on the whole."""
        structlog.contextvars.bind_contextvars(policy=request.policy, version=request.version)
        actions = incident_convert.actions_from_proto(request)
        result = self._recorder.evaluate_incident(
            request.policy,
            decision_convert.facts_from_proto(request.facts),
            actions,
            incident_ref=request.incident_ref,
            version=request.version,
            request_id=current_request_id(),
            caller=current_caller(),
            dry_run=request.dry_run,
        )
        structlog.contextvars.bind_contextvars(
            version=result.decisions[0].policy.version,
            decision_ids=[decision.decision_id for decision in result.decisions],
            advice=[advice.rule_id for advice in result.advice],
        )
        ended = None if request.dry_run else ended_by_client(context)
        if ended is not None:
            _log.warning("decisions_recorded_caller_gone", ended=ended.name)
        return incident_convert.incident_to_proto(result)


