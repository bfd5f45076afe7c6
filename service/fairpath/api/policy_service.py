"""``fairpath.v1.PolicyService``: the loaded policy versions, hot reload, status and draft validation.

A thin translator, as every servicer: it raises the domain errors of :mod:`fairpath.errors` and
:func:`fairpath.api.status.report` reports them.
"""

from __future__ import annotations

import grpc
import structlog

from fairpath.api import policy_convert, policy_validation
from fairpath.errors import ReloadUnavailableError
from fairpath.policy.registry import PolicyRegistry
from fairpath.serving.evaluator import Evaluator
from fairpath.serving.reload import Reloader
from fairpath.v1 import policy_service_pb2, policy_service_pb2_grpc


class PolicyService(policy_service_pb2_grpc.PolicyServiceServicer):
    """``fairpath.v1.PolicyService``: describes the loaded policy versions."""

    def __init__(self, evaluator: Evaluator, reloader: Reloader | None = None) -> None:
        self._evaluator = evaluator
        self._reloader = reloader

    @property
    def _registry(self) -> PolicyRegistry:
        # Read per call, never kept: a reload swaps the evaluator's registry.
        return self._evaluator.registry

    def ListPolicies(  # noqa: N802 - the name is the RPC's
        self, request: policy_service_pb2.ListPoliciesRequest, context: grpc.ServicerContext
    ) -> policy_service_pb2.ListPoliciesResponse:
        """List every loaded policy version, marking the current one of each policy."""
        registry = self._registry
        return policy_service_pb2.ListPoliciesResponse(
            policies=[
                policy_convert.served_summary(registry, policy)
                for policy in registry.all()
            ]
        )

    def GetPolicy(  # noqa: N802 - the name is the RPC's
        self, request: policy_service_pb2.GetPolicyRequest, context: grpc.ServicerContext
    ) -> policy_service_pb2.GetPolicyResponse:
        """Describe one policy version (the current one when no version is given)."""
        structlog.contextvars.bind_contextvars(policy=request.name, version=request.version)
        registry = self._registry
        policy = registry.get(request.name, request.version)
        structlog.contextvars.bind_contextvars(version=policy.version)
        return policy_service_pb2.GetPolicyResponse(
            policy=policy_convert.policy_detail(
                policy, current=registry.is_current(policy), not_current_reason=registry.why_not_current(policy)
            )
        )

    def Reload(  # noqa: N802 - the name is the RPC's
        self, request: policy_service_pb2.ReloadRequest, context: grpc.ServicerContext
    ) -> policy_service_pb2.ReloadResponse:
        """Re-read the policy directory now; new versions serve once compiled and tested."""
        return _reload(self._reloader)

    def GetStatus(  # noqa: N802 - the name is the RPC's
        self, request: policy_service_pb2.GetStatusRequest, context: grpc.ServicerContext
    ) -> policy_service_pb2.GetStatusResponse:
        """Report the versions serving (digest, current) and the last reload's result."""
        return _status(self._evaluator, self._reloader)

    def ValidatePolicy(  # noqa: N802 - the name is the RPC's
        self, request: policy_service_pb2.ValidatePolicyRequest, context: grpc.ServicerContext
    ) -> policy_service_pb2.ValidatePolicyResponse:
        """Lint and test draft policy text on a throwaway engine; nothing is loaded into this server."""
        remaining = context.time_remaining()  # None without a deadline
        most = policy_validation.VALIDATION_SECONDS
        limit = most if remaining is None else min(remaining, most)
        served = [policy.path for policy in self._registry.all() if policy.path]
        return policy_validation.validate_policy(request, seconds=limit, served=served)


def _reload(reloader: Reloader | None) -> policy_service_pb2.ReloadResponse:
    """Reload now and answer with the result.

    Raises:
        ReloadUnavailableError: The server has no policy directory (no reloader).

    """
    if reloader is None:
        raise ReloadUnavailableError
    return policy_service_pb2.ReloadResponse(result=policy_convert.result_to_proto(reloader.reload("rpc")))


def _status(evaluator: Evaluator, reloader: Reloader | None) -> policy_service_pb2.GetStatusResponse:
    """Describe the versions serving now and the last reload (absent before the first)."""
    registry = evaluator.registry  # one snapshot: a reload may swap it while we read
    response = policy_service_pb2.GetStatusResponse(
        versions=[policy_convert.served_summary(registry, p) for p in registry.all()]
    )
    last = reloader.last if reloader is not None else None
    if last is not None:
        response.last_reload.CopyFrom(policy_convert.result_to_proto(last))
    return response
