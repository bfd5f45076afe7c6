"""Every error the client raises, in one place.

The tree::

    FairpathClientError             base: catch this to catch every failed call
    ├── PolicyNotFoundError         unknown policy name or version     NOT_FOUND
    ├── DecisionNotFoundError       no decision recorded with that id  NOT_FOUND (DECISION_NOT_FOUND)
    ├── InvalidFactsError           facts break the policy (.violations) INVALID_ARGUMENT
    ├── InvalidRequestError         a request is malformed (.violations) INVALID_ARGUMENT
                                    (INVALID_REQUEST)
    ├── RequestIdReusedError        the request id was used for another ALREADY_EXISTS
                                    request by this caller             (REQUEST_ID_REUSED)
    ├── ServiceBusyError            the engine is saturated; retry     RESOURCE_EXHAUSTED
    ├── ServiceUnavailableError     no server answering at the target  UNAVAILABLE
    ├── DeadlineExceededError       no answer within the timeout       DEADLINE_EXCEEDED
    ├── PermissionDeniedError       the caller may not do this         PERMISSION_DENIED
    ├── UnauthenticatedError        the caller is not authenticated    UNAUTHENTICATED
    ├── ReloadUnavailableError      the server has nothing to reload   FAILED_PRECONDITION
    └── ServerError                 INTERNAL, UNKNOWN and any other status
        └── UnimplementedError      the server does not serve the call UNIMPLEMENTED

:func:`from_rpc_error` is the one place a :class:`grpc.RpcError` becomes one of
these; callers of the client never see ``grpc.RpcError``. The rich status the
service puts in the ``grpc-status-details-bin`` trailer is decoded here: a
``google.rpc.BadRequest`` becomes :attr:`InvalidFactsError.violations`, a
``google.rpc.ErrorInfo`` becomes :attr:`FairpathClientError.reason` and
:attr:`FairpathClientError.metadata` (its ``request_id`` key, if any, becomes
:attr:`FairpathClientError.request_id`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError

# googleapis-common-protos ships .pyi files but no py.typed marker, so mypy
# will not read them; the messages are used dynamically and typed at the edges.
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request, from ``google.rpc.BadRequest``.

    Attributes:
        field: Dotted path of the field, e.g. ``"facts.intent_to_harm"``.
        description: What is wrong with it, in words.

    """

    field: str
    description: str


class FairpathClientError(Exception):
    """A call to the fairpath service failed.

    Attributes:
        code: The gRPC status code name, e.g. ``"NOT_FOUND"``.
        message: The status message from the service (or from gRPC itself).
        request_id: The correlation id of the failed request, if known.
        reason: The ``google.rpc.ErrorInfo`` reason, e.g. ``"POLICY_NOT_FOUND"``, if sent.
        metadata: The ``google.rpc.ErrorInfo`` metadata (empty if none was sent).

    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        request_id: str | None = None,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.request_id = request_id
        self.reason = reason
        self.metadata = dict(metadata or {})
        super().__init__(code, message)

    def __str__(self) -> str:
        text = f"{self.code}: {self.message}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text


class PolicyNotFoundError(FairpathClientError):
    """No policy of that name, or no such version of it, is loaded (``NOT_FOUND``)."""


class _WithViolationsError(FairpathClientError):
    """An ``INVALID_ARGUMENT`` error that lists what is wrong, field by field.

    Attributes:
        violations: One entry per bad field, decoded from ``google.rpc.BadRequest``;
            empty if the service sent no such detail.

    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        violations: Sequence[FieldViolation] = (),
        request_id: str | None = None,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(code, message, request_id=request_id, reason=reason, metadata=metadata)
        self.violations = list(violations)


class InvalidFactsError(_WithViolationsError):
    """The facts break the policy's declarations (``INVALID_ARGUMENT``).

    ``violations`` has one entry per bad fact.
    """


class DecisionNotFoundError(FairpathClientError):
    """No decision with that id is recorded (``NOT_FOUND``, reason ``DECISION_NOT_FOUND``)."""


class InvalidRequestError(_WithViolationsError):
    """A request is malformed, e.g. a field longer than its maximum or a stale page token (``INVALID_ARGUMENT``).

    ``violations`` has one entry per bad field (at most ten, then one counting the rest).
    """


class RequestIdReusedError(FairpathClientError):
    """The caller already sent this request id with a different request (``ALREADY_EXISTS``).

    A retry must repeat the request exactly (policy, version, facts, subject); a new
    request needs a new request id. Nothing was recorded for this call.
    """


class ServiceBusyError(FairpathClientError):
    """The service is saturated and shed the call; retry later (``RESOURCE_EXHAUSTED``).

    :attr:`~FairpathClientError.reason` says what was busy: ``ENGINE_BUSY`` (every engine
    session), ``VALIDATION_BUSY`` (another ``ValidatePolicy`` call was running on that server
    process), or None for a limit gRPC enforces itself (calls in progress, message size).
    """


class ServiceUnavailableError(FairpathClientError):
    """No server answered at the target, or it is shutting down (``UNAVAILABLE``)."""


class DeadlineExceededError(FairpathClientError):
    """The call did not finish within the client's timeout (``DEADLINE_EXCEEDED``)."""


class PermissionDeniedError(FairpathClientError):
    """The caller is not allowed to make this call (``PERMISSION_DENIED``)."""


class UnauthenticatedError(FairpathClientError):
    """The caller's credentials are missing or invalid (``UNAUTHENTICATED``)."""


class ReloadUnavailableError(FairpathClientError):
    """The server has no policy directory, so it cannot reload (``FAILED_PRECONDITION``)."""


class ServerError(FairpathClientError):
    """The service failed (``INTERNAL``, ``UNKNOWN`` or any status without its own class)."""


class UnimplementedError(ServerError):
    """The server does not serve this call, or runs without what it needs (``UNIMPLEMENTED``)."""


_BY_CODE: dict[grpc.StatusCode, type[FairpathClientError]] = {
    grpc.StatusCode.NOT_FOUND: PolicyNotFoundError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidFactsError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ServiceBusyError,
    grpc.StatusCode.UNAVAILABLE: ServiceUnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.FAILED_PRECONDITION: ReloadUnavailableError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
    grpc.StatusCode.ALREADY_EXISTS: RequestIdReusedError,
}


# Statuses whose code is shared by several errors are told apart by their ErrorInfo reason.
_BY_REASON: dict[str, type[FairpathClientError]] = {
    "DECISION_NOT_FOUND": DecisionNotFoundError,
    "INVALID_REQUEST": InvalidRequestError,
}


def from_rpc_error(error: grpc.RpcError, *, request_id: str | None = None) -> FairpathClientError:
    """Translate a failed gRPC call into the matching :class:`FairpathClientError`.

    Args:
        error: What a stub raised; in practice also a :class:`grpc.Call`.
        request_id: The id the caller sent, used when the service echoes none.

    Returns:
        The typed exception (not raised), carrying code, message, request id,
        ``ErrorInfo`` reason/metadata and, for ``INVALID_ARGUMENT``, the field
        violations.

    """
    code = _status_code(error)
    details = _rich_details(error)
    info = _first(details, error_details_pb2.ErrorInfo)
    metadata = {str(key): str(value) for key, value in info.metadata.items()} if info else {}
    reason = (str(info.reason) or None) if info else None
    request_id = metadata.get("request_id") or _trailer(error, "x-request-id") or request_id
    message = _details_text(error) or code.name
    cls = _BY_REASON.get(reason or "") or _BY_CODE.get(code, ServerError)
    if issubclass(cls, _WithViolationsError):
        bad_request = _first(details, error_details_pb2.BadRequest)
        violations = [
            FieldViolation(field=str(item.field), description=str(item.description))
            for item in (bad_request.field_violations if bad_request else ())
        ]
        return cls(
            code.name,
            message,
            violations=violations,
            request_id=request_id,
            reason=reason,
            metadata=metadata,
        )
    return cls(code.name, message, request_id=request_id, reason=reason, metadata=metadata)


def _status_code(error: grpc.RpcError) -> grpc.StatusCode:
    """Return the call's status code; UNKNOWN for an RpcError that is not a Call."""
    # grpc.RpcError itself declares no methods at runtime: only errors raised
    # by real calls also implement grpc.Call, so be defensive.
    try:
        code = error.code()
    except (AttributeError, TypeError):
        return grpc.StatusCode.UNKNOWN
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


def _details_text(error: grpc.RpcError) -> str:
    """Return the call's status message, or "" if there is none."""
    try:
        details = error.details()
    except (AttributeError, TypeError):
        return ""
    return details if isinstance(details, str) else ""


def _trailer(error: grpc.RpcError, key: str) -> str | None:
    """Return one text value of the call's trailing metadata, if present."""
    try:
        # Real calls return (key, value) namedtuples, which the stubs type as
        # an opaque class; plain tuples are read the same way.
        trailers: Sequence[Any] = error.trailing_metadata() or ()
    except (AttributeError, TypeError):
        return None
    for item_key, value in trailers:
        if item_key == key and isinstance(value, str):
            return value
    return None


def _rich_details(error: grpc.RpcError) -> list[Any]:
    """Return the packed ``google.protobuf.Any`` details of the rich status, if any."""
    try:
        status = rpc_status.from_call(error)
    except (AttributeError, TypeError, ValueError, DecodeError):
        # A trailer that does not match the call's code/message, or is not a
        # Status at all, is the server's bug; the plain code still tells the
        # caller what happened, so fall back to it rather than fail here.
        return []
    return list(status.details) if status is not None else []


def _first(details: list[Any], message_type: Any) -> Any | None:
    """Unpack the first detail of the given message type, or return None."""
    for detail in details:
        if detail.Is(message_type.DESCRIPTOR):
            unpacked = message_type()
            detail.Unpack(unpacked)
            return unpacked
    return None
