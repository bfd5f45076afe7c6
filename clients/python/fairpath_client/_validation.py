"""What the service reports about policy files: ``ValidatePolicy`` (a draft) and ``Reload`` (the directory)."""

from __future__ import annotations

from dataclasses import dataclass

from fairpath.v1 import decision_pb2, policy_service_pb2

from fairpath_client._models import PolicySummary, _Model


@dataclass(frozen=True, kw_only=True)
class PolicyProblem(_Model):
    """One problem in a policy file: where (line, rule), how bad (``error``/``warning``) and which check."""

    path: str
    rule_id: str
    line: int
    message: str
    severity: str
    check: str

    @classmethod
    def from_proto(cls, message: decision_pb2.PolicyProblem) -> PolicyProblem:
        """Build from a ``fairpath.v1.PolicyProblem`` message."""
        return cls(path=message.path, rule_id=message.rule_id, line=message.line, message=message.message,
                   severity=message.severity, check=message.check)


@dataclass(frozen=True, kw_only=True)
class CaseResult(_Model):
    """One test case of the file's tests: passed, or the ways it failed."""

    name: str
    passed: bool
    failures: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ValidationReport(_Model):
    """The answer of :meth:`FairpathClient.validate_policy`; nothing was loaded into the service.

    Attributes:
        ok: The text loads, lints without errors and its tests pass with full coverage.
        summary: The version the text declares (None when it does not load).
        problems: Load errors and lint findings, with line numbers where known.
        passed: Test cases that passed.
        failed: Test cases that failed.
        cases: Every case's result.
        never_exercised: Coverage items (rule ids, ``pathway:CODE``…) no case reached.

    """

    ok: bool
    summary: PolicySummary | None
    problems: tuple[PolicyProblem, ...]
    passed: int
    failed: int
    cases: tuple[CaseResult, ...]
    never_exercised: tuple[str, ...]

    @classmethod
    def from_proto(cls, message: policy_service_pb2.ValidatePolicyResponse) -> ValidationReport:
        """Build from a ``fairpath.v1.ValidatePolicyResponse`` message."""
        return cls(
            ok=message.ok,
            summary=PolicySummary.from_proto(message.summary) if message.HasField("summary") else None,
            problems=tuple(PolicyProblem.from_proto(p) for p in message.problems),
            passed=message.tests.passed,
            failed=message.tests.failed,
            cases=tuple(CaseResult(name=c.name, passed=c.passed, failures=tuple(c.failures))
                        for c in message.tests.cases),
            never_exercised=tuple(item.item for item in message.tests.coverage if item.hits == 0),
        )


@dataclass(frozen=True, kw_only=True)
class ReloadReport(_Model):
    """The answer of :meth:`FairpathClient.reload`: what the service's reload of its policy directory did.

    Attributes:
        ok: False when any file was refused (versions already serving are unaffected).
        loaded: ``name@version`` of the versions that started serving in this reload.
        problems: Why files were refused, with line numbers where known.
        trigger: ``"rpc"`` for a reload asked for by a call (``"startup"``, ``"signal"``, ``"watch"`` otherwise).

    """

    ok: bool
    loaded: tuple[str, ...]
    problems: tuple[PolicyProblem, ...]
    trigger: str

    @classmethod
    def from_proto(cls, message: policy_service_pb2.ReloadResult) -> ReloadReport:
        """Build from a ``fairpath.v1.ReloadResult`` message."""
        return cls(ok=message.ok, loaded=tuple(message.loaded),
                   problems=tuple(PolicyProblem.from_proto(p) for p in message.problems), trigger=message.trigger)


@dataclass(frozen=True, kw_only=True)
class ServiceStatus(_Model):
    """The answer of :meth:`FairpathClient.get_status`: what serves, and how the last reload went.

    Attributes:
        versions: Every serving policy version.
        last_reload: The last reload's result (None when the server never reloaded, e.g. no directory).

    """

    versions: tuple[PolicySummary, ...]
    last_reload: ReloadReport | None

    @classmethod
    def from_proto(cls, message: policy_service_pb2.GetStatusResponse) -> ServiceStatus:
        """Build from a ``fairpath.v1.GetStatusResponse`` message."""
        return cls(
            versions=tuple(PolicySummary.from_proto(v) for v in message.versions),
            last_reload=ReloadReport.from_proto(message.last_reload) if message.HasField("last_reload") else None,
        )
