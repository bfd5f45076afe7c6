"""``fairpath.v1.EvaluationService``: Evaluate and EvaluateIncident, a thin translator to the recorder.

Servicers never build a status: they raise the domain errors of
:mod:`fairpath.errors` and :func:`fairpath.api.status.report` reports them. They bind
ids (never facts) into structlog's context so the one access-log line of
:class:`fairpath.api.interceptors.CallInterceptor` says which policy version answered and
which decision it made. ``Evaluate`` replies with the decision's bytes as the deciding
version's :class:`~fairpath.wire.DecisionWire` made them (:class:`EncodedResponse`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
import structlog
from google.protobuf.message import Message

from fairpath import wire
from fairpath.api import decision_convert, incident_convert
from fairpath.api.auth import current_caller
from fairpath.api.interceptors import current_request_id, ended_by_client
from fairpath.recording import DecisionRecorder
from fairpath.v1 import evaluation_service_pb2

_log = structlog.get_logger(__name__)
_DECISION_KEY = wire.field_key(evaluation_service_pb2.EvaluateResponse.DESCRIPTOR, "decision")


@dataclass(frozen=True, slots=True)
class EncodedResponse:
    """A response message already encoded: :func:`add_to_server`'s serializer sends it as it is."""

    data: bytes


def _serialize(response: EncodedResponse | Message) -> bytes:
    return response.data if isinstance(response, EncodedResponse) else response.SerializeToString()


class EvaluationService:
    """``fairpath.v1.EvaluationService``: evaluates actions against a policy, recording the decisions."""

    def __init__(self, recorder: DecisionRecorder) -> None:
        self._recorder = recorder
        self._wire = wire.DecisionWire()  # an incident's decisions share most of their trace entries

    def Evaluate(  # noqa: N802 - the name is the RPC's
        self, request: evaluation_service_pb2.EvaluateRequest, context: grpc.ServicerContext
    ) -> EncodedResponse:
        """Evaluate the request's facts and return the decision with its trace (an encoded ``EvaluateResponse``)."""
        structlog.contextvars.bind_contextvars(policy=request.policy, version=request.version)
        # Recorded before it is returned (unless dry_run); the equality group is stored apart, not evaluated.
        recommended = self._recorder.recommend(
            request.policy,
            decision_convert.facts_from_proto(request.facts),
            version=request.version,
            subject=decision_convert.subject_from_proto(request.subject),
            request_id=current_request_id(),
            caller=current_caller(),
            equality_group=request.subject.equality_group,
            dry_run=request.dry_run,
        )
        decision = recommended.decision
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
        # The decision's bytes as its version's wire made them, sent as they are (see add_to_server).
        return EncodedResponse(wire.length_delimited(_DECISION_KEY, recommended.encoded))

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
        return incident_convert.incident_to_proto(result, self._wire)


def add_to_server(servicer: EvaluationService, server: grpc.Server) -> None:
    """Serve ``servicer`` on ``server``, as the generated ``add_EvaluationServiceServicer_to_server`` would.

    Written out for one difference: a response may arrive encoded (:class:`EncodedResponse`), and
    goes out as it is rather than parsed into a message only to be serialised again.
    """
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "Evaluate": grpc.unary_unary_rpc_method_handler(
            servicer.Evaluate,
            request_deserializer=evaluation_service_pb2.EvaluateRequest.FromString,
            response_serializer=_serialize,
        ),
        "EvaluateIncident": grpc.unary_unary_rpc_method_handler(
            servicer.EvaluateIncident,
            request_deserializer=evaluation_service_pb2.EvaluateIncidentRequest.FromString,
            response_serializer=_serialize,
        ),
    }
    name = evaluation_service_pb2.DESCRIPTOR.services_by_name["EvaluationService"].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))
    server.add_registered_method_handlers(name, handlers)
