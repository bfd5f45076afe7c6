"""The two fairpath services, as thin translators between protobuf and the evaluator.

Servicers never build a status: they raise the domain errors of
:mod:`fairpath.errors` and :class:`fairpath.api.status.StatusInterceptor`
reports them. They bind ids (never facts) into structlog's context so the one
access-log line of :class:`fairpath.api.interceptors.AccessLogInterceptor`
says which policy version answered and which decision it made.
"""

from __future__ import annotations

import grpc
import structlog

from fairpath.api import convert
from fairpath.api.interceptors import current_request_id
from fairpath.evaluation import Evaluator
from fairpath.v1 import (
    evaluation_service_pb2,
    evaluation_service_pb2_grpc,
    policy_service_pb2,
    policy_service_pb2_grpc,
)


class EvaluationService(evaluation_service_pb2_grpc.EvaluationServiceServicer):
    """``fairpath.v1.EvaluationService``: evaluates one action against a policy."""

    def __init__(self, evaluator: Evaluator) -> None:
        self._evaluator = evaluator

    def Evaluate(  # noqa: N802 - the name is the RPC's
        self, request: evaluation_service_pb2.EvaluateRequest, context: grpc.ServicerContext
    ) -> evaluation_service_pb2.EvaluateResponse:
        """Evaluate the request's facts and return the decision with its trace."""
        structlog.contextvars.bind_contextvars(policy=request.policy, version=request.version)
        decision = self._evaluator.evaluate(
            request.policy,
            convert.facts_from_proto(request.facts),
            version=request.version,
            subject=convert.subject_from_proto(request.subject),
            request_id=current_request_id(),
        )
        structlog.contextvars.bind_contextvars(
            version=decision.policy.version,
            decision_id=decision.decision_id,
            decision_status=decision.status.value,
            pathway=decision.pathway.code if decision.pathway else "",
        )
        return evaluation_service_pb2.EvaluateResponse(decision=convert.decision_to_proto(decision))


class PolicyService(policy_service_pb2_grpc.PolicyServiceServicer):
    """``fairpath.v1.PolicyService``: describes the loaded policy versions."""

    def __init__(self, evaluator: Evaluator) -> None:
        self._registry = evaluator.registry

    def ListPolicies(  # noqa: N802 - the name is the RPC's
        self, request: policy_service_pb2.ListPoliciesRequest, context: grpc.ServicerContext
    ) -> policy_service_pb2.ListPoliciesResponse:
        """List every loaded policy version, marking the current one of each policy."""
        return policy_service_pb2.ListPoliciesResponse(
            policies=[
                convert.policy_summary(policy, current=self._registry.is_current(policy))
                for policy in self._registry.all()
            ]
        )

    def GetPolicy(  # noqa: N802 - the name is the RPC's
        self, request: policy_service_pb2.GetPolicyRequest, context: grpc.ServicerContext
    ) -> policy_service_pb2.GetPolicyResponse:
        """Describe one policy version (the current one when no version is given)."""
        structlog.contextvars.bind_contextvars(policy=request.name, version=request.version)
        policy = self._registry.get(request.name, request.version)
        structlog.contextvars.bind_contextvars(version=policy.version)
        return policy_service_pb2.GetPolicyResponse(
            policy=convert.policy_detail(policy, current=self._registry.is_current(policy))
        )

    # The proto grew these after the servicer was written; until the evaluator can reload and the
    # authoring tools are wired in, say so plainly instead of grpc's generic "Method not implemented!".
    def Reload(  # noqa: N802 - the name is the RPC's
        self, request: policy_service_pb2.ReloadRequest, context: grpc.ServicerContext
    ) -> policy_service_pb2.ReloadResponse:
        """Not implemented yet: answers UNIMPLEMENTED."""
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "Reload is not implemented by this server yet")

    def GetStatus(  # noqa: N802 - the name is the RPC's
        self, request: policy_service_pb2.GetStatusRequest, context: grpc.ServicerContext
    ) -> policy_service_pb2.GetStatusResponse:
        """Not implemented yet: answers UNIMPLEMENTED."""
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "GetStatus is not implemented by this server yet")

    def ValidatePolicy(  # noqa: N802 - the name is the RPC's
        self, request: policy_service_pb2.ValidatePolicyRequest, context: grpc.ServicerContext
    ) -> policy_service_pb2.ValidatePolicyResponse:
        """Not implemented yet: answers UNIMPLEMENTED."""
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "ValidatePolicy is not implemented by this server yet")
