"""The client's public surface and its one allowed dependency on the server package."""

from __future__ import annotations

import ast
from pathlib import Path

import fairpath_client

PACKAGE_DIR = Path(fairpath_client.__file__).parent


def test_all_lists_exactly_the_public_names() -> None:
    """__all__ is pinned: adding or removing a public name is a deliberate change to this list."""
    assert sorted(fairpath_client.__all__) == sorted(
        [
            "DEFAULT_TARGET",
            "DEFAULT_TIMEOUT",
            "CaseResult",
            "PolicyProblem",
            "ValidationReport",
            "ReloadReport",
            "ServiceStatus",
            "render_record",
            "InvalidRequestError",
            "OutcomeRecord",
            "DecisionRecord",
            "DecisionPage",
            "DecisionFilter",
            "ChainReport",
            "Advice",
            "AdviceSpec",
            "DeadlineExceededError",
            "DecisionNotFoundError",
            "Decision",
            "DecisionStatus",
            "DecisionWarning",
            "FactSpec",
            "FactType",
            "FactValue",
            "FairpathClient",
            "IncidentAction",
            "IncidentAdvice",
            "IncidentResult",
            "FairpathClientError",
            "FieldViolation",
            "InvalidFactsError",
            "MissingFact",
            "Pathway",
            "PathwaySpec",
            "PermissionDeniedError",
            "PolicyDetail",
            "PolicyNotFoundError",
            "PolicyRef",
            "PolicySummary",
            "RuleKind",
            "RuleResult",
            "RuleSpec",
            "ServerError",
            "ServiceBusyError",
            "ServiceUnavailableError",
            "SignedCheckpoint",
            "Subject",
            "TlsConfig",
            "TraceEntry",
            "UnauthenticatedError",
            "UnimplementedError",
            "ReloadUnavailableError",
            "RequestIdReusedError",
            "RequiredDecision",
            "from_rpc_error",
            "render_decision",
            "render_policies",
            "render_walk",
            # replay and fairness monitoring
            "ChangedDecision",
            "OutcomeStats",
            "RelativeLikelihood",
            "ReplayReport",
            "RuleChange",
            "SkipReason",
            "StatsCell",
            "StatsSlice",
            "Transition",
            "render_replay",
            "render_stats",
        ]
    )
    assert all(hasattr(fairpath_client, name) for name in fairpath_client.__all__)


def test_every_exception_derives_from_the_base_class() -> None:
    """Catching FairpathClientError catches every exception the package exports."""
    errors = [
        getattr(fairpath_client, name) for name in fairpath_client.__all__ if name.endswith("Error")
    ]

    assert len(errors) == 14
    assert all(issubclass(error, fairpath_client.FairpathClientError) for error in errors)


def test_client_imports_only_the_generated_code_from_the_server_package() -> None:
    """No module of fairpath_client imports fairpath.* other than fairpath.v1 (the wire contract)."""
    offending = []
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            offending += [
                f"{path.name}: {module}"
                for module in modules
                if (module == "fairpath" or module.startswith("fairpath."))
                and not (module == "fairpath.v1" or module.startswith("fairpath.v1."))
            ]

    assert offending == []
