"""Typed Python client for the fairpath gRPC service.

Callers get frozen dataclasses (:class:`Decision`, :class:`PolicySummary`,
:class:`PolicyDetail` …) rather than protobuf messages, and typed exceptions
(:class:`FairpathClientError` and its subclasses) rather than
:class:`grpc.RpcError`::

    from fairpath_client import FairpathClient, InvalidFactsError

    with FairpathClient("127.0.0.1:50051", timeout=5.0) as client:
        try:
            decision = client.evaluate("nhs-just-culture-guide", {"intent_to_harm": "NO"})
        except InvalidFactsError as error:
            for violation in error.violations:
                print(violation.field, violation.description)

The command line lives in :mod:`fairpath_client.cli` (``python -m fairpath_client``).
"""

from fairpath_client._client import DEFAULT_TARGET, DEFAULT_TIMEOUT, FairpathClient
from fairpath_client._errors import (
    DeadlineExceededError,
    DecisionNotFoundError,
    FairpathClientError,
    FieldViolation,
    InvalidFactsError,
    InvalidRequestError,
    PermissionDeniedError,
    PolicyNotFoundError,
    ReloadUnavailableError,
    RequestIdReusedError,
    ServerError,
    ServiceBusyError,
    ServiceUnavailableError,
    UnauthenticatedError,
    UnimplementedError,
    from_rpc_error,
)
from fairpath_client._impact import (
    ChangedDecision,
    OutcomeStats,
    RelativeLikelihood,
    ReplayReport,
    RuleChange,
    SkipReason,
    StatsCell,
    StatsSlice,
    Transition,
)
from fairpath_client._incident import IncidentAction, IncidentAdvice, IncidentResult
from fairpath_client._models import (
    Advice,
    AdviceSpec,
    Decision,
    DecisionStatus,
    DecisionWarning,
    FactSpec,
    FactType,
    FactValue,
    MissingFact,
    Pathway,
    PathwaySpec,
    PolicyDetail,
    PolicyRef,
    PolicySummary,
    RequiredDecision,
    RuleKind,
    RuleResult,
    RuleSpec,
    Subject,
    TraceEntry,
)
from fairpath_client._records import (
    ChainReport,
    DecisionFilter,
    DecisionPage,
    DecisionRecord,
    OutcomeRecord,
    SignedCheckpoint,
)
from fairpath_client._render import render_decision, render_policies, render_walk
from fairpath_client._render_impact import render_replay, render_stats
from fairpath_client._render_records import render_record
from fairpath_client._security import TlsConfig
from fairpath_client._validation import CaseResult, PolicyProblem, ReloadReport, ServiceStatus, ValidationReport

__all__ = [
    "DEFAULT_TARGET",
    "DEFAULT_TIMEOUT",
    "Advice",
    "AdviceSpec",
    "CaseResult",
    "ChainReport",
    "ChangedDecision",
    "DeadlineExceededError",
    "Decision",
    "DecisionFilter",
    "DecisionNotFoundError",
    "DecisionPage",
    "DecisionRecord",
    "DecisionStatus",
    "DecisionWarning",
    "FactSpec",
    "FactType",
    "FactValue",
    "FairpathClient",
    "FairpathClientError",
    "FieldViolation",
    "IncidentAction",
    "IncidentAdvice",
    "IncidentResult",
    "InvalidFactsError",
    "InvalidRequestError",
    "MissingFact",
    "OutcomeRecord",
    "OutcomeStats",
    "Pathway",
    "PathwaySpec",
    "PermissionDeniedError",
    "PolicyDetail",
    "PolicyNotFoundError",
    "PolicyProblem",
    "PolicyRef",
    "PolicySummary",
    "RelativeLikelihood",
    "ReloadReport",
    "ReloadUnavailableError",
    "ReplayReport",
    "RequestIdReusedError",
    "RequiredDecision",
    "RuleChange",
    "RuleKind",
    "RuleResult",
    "RuleSpec",
    "ServerError",
    "ServiceBusyError",
    "ServiceStatus",
    "ServiceUnavailableError",
    "SignedCheckpoint",
    "SkipReason",
    "StatsCell",
    "StatsSlice",
    "Subject",
    "TlsConfig",
    "TraceEntry",
    "Transition",
    "UnauthenticatedError",
    "UnimplementedError",
    "ValidationReport",
    "from_rpc_error",
    "render_decision",
    "render_policies",
    "render_record",
    "render_replay",
    "render_stats",
    "render_walk",
]
