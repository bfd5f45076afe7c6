"""Every error fairpath raises, in one place.

The tree::

    FairpathError
    ├── PolicyNotFoundError        unknown policy name or version      -> NOT_FOUND
    ├── InvalidFactsError          facts fail the policy's declarations -> INVALID_ARGUMENT
    ├── PolicyFileError            a policy file cannot be loaded       (startup / lint)
    ├── EngineBusyError            no engine session free in time       -> RESOURCE_EXHAUSTED
    ├── ValidationBusyError        another draft is being validated     -> RESOURCE_EXHAUSTED
    ├── EngineError                durable_rules misbehaved             -> INTERNAL
    ├── UnauthenticatedError       no or unknown credentials            -> UNAUTHENTICATED
    ├── PermissionDeniedError      the caller's roles do not allow it   -> PERMISSION_DENIED
    ├── DeadlineExpiredError       no time left to answer in            -> DEADLINE_EXCEEDED
    ├── MalformedRequestError      the request cannot be decoded        -> INVALID_ARGUMENT
    ├── CredentialsError           a TLS or auth file cannot be used    (startup)
    ├── DecisionNotFoundError      no recorded decision with that id    -> NOT_FOUND
    ├── RequestIdReusedError       this caller's request id, other data -> ALREADY_EXISTS
    ├── InvalidRequestError        a request is malformed or too long   -> INVALID_ARGUMENT
    ├── ReloadUnavailableError     the server has nothing to reload     -> FAILED_PRECONDITION
    ├── UnimplementedError         the server does not serve the method -> UNIMPLEMENTED
    └── StoreError                 the decision store failed            -> INTERNAL
        ├── StoreUnavailableError  the store cannot be reached/written  -> UNAVAILABLE
        ├── RecordTooLargeError    a record too large to read back      -> INTERNAL
        └── CorruptRecordError     a stored record cannot be decoded    -> DATA_LOSS

The gRPC status each maps to is decided in one place,
:mod:`fairpath.api.status`; the client maps statuses back to its own typed
exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass

from fairpath.echo import listed, shown


class FairpathError(Exception):
    """Base class: catch this to catch everything fairpath raises on purpose."""


class PolicyNotFoundError(FairpathError):
    """No policy of that name, or no such version of it, is loaded."""

    def __init__(self, name: str, version: str = "", hint: str = "") -> None:
        """``hint`` says how to fix the request, e.g. ``did you mean `nhs-just-culture-guide`?``."""
        self.name = name
        self.version = version
        what = f"{name}@{version}" if version else name
        super().__init__(f"policy {shown(what, 80)} is not loaded" + (f"; {hint}" if hint else ""))


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request, in ``google.rpc.BadRequest`` terms."""

    field: str
    description: str


class InvalidFactsError(FairpathError):
    """The facts of a request break the policy's fact declarations."""

    def __init__(self, violations: list[FieldViolation]) -> None:
        self.violations = violations
        # Listed in part: the whole list would repeat unbounded input (see fairpath.echo).
        # Each names its fact ("intent_to_harm: must be one of ..."), so the message alone says what to fix.
        listing = listed([f"{v.field.removeprefix('facts.')}: {v.description}" for v in violations])
        super().__init__(f"{len(violations)} invalid fact(s): " + "; ".join(listing))


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


class ValidationBusyError(FairpathError):
    """Another ``ValidatePolicy`` call is running in this server process; the caller should retry shortly.

    Refused at once rather than queued: a call waiting for its turn would hold one of the
    server's handler threads, and a few of them would leave ``Evaluate`` none.
    """


class EngineError(FairpathError):
    """The rules engine failed or returned something impossible; a defect, never the caller's fault."""


class UnauthenticatedError(FairpathError):
    """The call carries no credentials, or credentials fairpath does not know."""


class PermissionDeniedError(FairpathError):
    """The caller is known but none of its roles may call this method."""

    def __init__(self, caller: str, method: str) -> None:
        self.caller = caller
        self.method = method
        super().__init__(f"{shown(caller, 80)} may not call {shown(method, 120)}")


class DeadlineExpiredError(FairpathError):
    """The caller's deadline passed before the work started, so the work is not done."""


class MalformedRequestError(FairpathError):
    """The request bytes do not decode, e.g. a message nested past protobuf's depth limit."""


class CredentialsError(FairpathError):
    """A TLS certificate, key or CA file, or the auth config, cannot be read or is invalid."""


class DecisionNotFoundError(FairpathError):
    """No decision with that id is recorded in the decision store."""

    def __init__(self, decision_id: str, hint: str = "") -> None:
        self.decision_id = decision_id
        super().__init__(f"decision {shown(decision_id, 64)} is not recorded" + (f"; {hint}" if hint else ""))


class RequestIdReusedError(FairpathError):
    """The caller already used this request id for a different request (policy, version, facts or subject).

    The message names only the request id: never what was recorded under it.
    """

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(
            f"request id {request_id!r} was already used for a different request; "
            "send a new request id for a new request"
        )


class InvalidRequestError(FairpathError):
    """A request is malformed: a field longer than its maximum, a bad page token, a missing field, ..."""

    def __init__(self, violations: list[FieldViolation]) -> None:
        self.violations = violations
        super().__init__("; ".join(listed([f"{v.field}: {v.description}" for v in violations])))


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


class RecordTooLargeError(StoreError):
    """A decision record would be too large to be read back in one message, so it was not written."""


class CorruptRecordError(StoreError):
    """A stored record cannot be decoded: it was changed in the database, not by fairpath (verify says where)."""
