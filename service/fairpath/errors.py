"""Every error fairpath raises, in one place.

The tree::

    FairpathError
    ├── PolicyNotFoundError        unknown policy name or version      -> NOT_FOUND
    ├── InvalidFactsError          facts fail the policy's declarations -> INVALID_ARGUMENT
    ├── PolicyFileError            a policy file cannot be loaded       (startup / lint)
    ├── EngineBusyError            no engine session free in time       -> RESOURCE_EXHAUSTED
    ├── EngineError                durable_rules misbehaved             -> INTERNAL
    ├── UnauthenticatedError       no or unknown credentials            -> UNAUTHENTICATED
    ├── PermissionDeniedError      the caller's roles do not allow it   -> PERMISSION_DENIED
    ├── DeadlineExpiredError       no time left to answer in            -> DEADLINE_EXCEEDED
    ├── MalformedRequestError      the request cannot be decoded        -> INVALID_ARGUMENT
    ├── CredentialsError           a TLS or auth file cannot be used    (startup)
    ├── DecisionNotFoundError      no recorded decision with that id    -> NOT_FOUND
    ├── InvalidRequestError        a review request is malformed        -> INVALID_ARGUMENT
    ├── ReloadUnavailableError     the server has nothing to reload     -> FAILED_PRECONDITION
    ├── UnimplementedError         the server does not serve the method -> UNIMPLEMENTED
    └── StoreError                 the decision store failed            -> INTERNAL
        └── StoreUnavailableError  the store cannot be reached/written  -> UNAVAILABLE

The gRPC status each maps to is decided in one place,
:mod:`fairpath.api.status`; the client maps statuses back to its own typed
exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass


class FairpathError(Exception):
    """Base class: catch this to catch everything fairpath raises on purpose."""


class PolicyNotFoundError(FairpathError):
    """No policy of that name, or no such version of it, is loaded."""

    def __init__(self, name: str, version: str = "") -> None:
        self.name = name
        self.version = version
        what = f"{name}@{version}" if version else name
        super().__init__(f"policy {what!r} is not loaded")


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request, in ``google.rpc.BadRequest`` terms."""

    field: str
    description: str


class InvalidFactsError(FairpathError):
    """The facts of a request break the policy's fact declarations."""

    def __init__(self, violations: list[FieldViolation]) -> None:
        self.violations = violations
        super().__init__(f"{len(violations)} invalid fact(s): " + "; ".join(v.description for v in violations))


class PolicyFileError(FairpathError):
    """A policy file is malformed; names the file, the rule and the line where known."""

    def __init__(self, message: str, *, path: str = "", rule_id: str = "", line: int | None = None) -> None:
        self.message = message
        self.path = path
        self.rule_id = rule_id
        self.line = line
        where = path or "<policy>"
        if line is not None:
            where += f":{line}"
        if rule_id:
            where += f" rule {rule_id}"
        super().__init__(f"{where}: {message}")


class EngineBusyError(FairpathError):
    """Every engine session is in use; the caller should retry later."""


class EngineError(FairpathError):
    """The rules engine failed or returned something impossible; a defect, never the caller's fault."""


class UnauthenticatedError(FairpathError):
    """The call carries no credentials, or credentials fairpath does not know."""


class PermissionDeniedError(FairpathError):
    """The caller is known but none of its roles may call this method."""

    def __init__(self, caller: str, method: str) -> None:
        self.caller = caller
        self.method = method
        super().__init__(f"{caller} may not call {method}")


class DeadlineExpiredError(FairpathError):
    """The caller's deadline passed before the work started, so the work is not done."""


class MalformedRequestError(FairpathError):
    """The request bytes do not decode, e.g. a message nested past protobuf's depth limit."""


class CredentialsError(FairpathError):
    """A TLS certificate, key or CA file, or the auth config, cannot be read or is invalid."""


class DecisionNotFoundError(FairpathError):
    """No decision with that id is recorded in the decision store."""

    def __init__(self, decision_id: str) -> None:
        self.decision_id = decision_id
        super().__init__(f"decision {decision_id!r} is not recorded")


class InvalidRequestError(FairpathError):
    """A request to the decision trail is malformed (bad page token, missing field, ...)."""

    def __init__(self, violations: list[FieldViolation]) -> None:
        self.violations = violations
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in violations))


class ReloadUnavailableError(FairpathError):
    """A reload was asked of a server that has no policy directory to read (it serves a fixed registry)."""

    def __init__(self) -> None:
        super().__init__("this server has no policy directory to reload")


class UnimplementedError(FairpathError):
    """The server does not serve this method, or runs without what the method needs."""


class StoreError(FairpathError):
    """The decision store failed in a way retrying will not fix: a defect or a corrupt database."""


class StoreUnavailableError(StoreError):
    """The decision store cannot be reached or written; the decision was not recorded, so not returned."""
