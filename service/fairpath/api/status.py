"""The one place where exceptions become gRPC statuses.

Handlers raise the domain errors of :mod:`fairpath.errors`; the server's interceptor
(:mod:`fairpath.api.interceptors`) hands whatever escapes a handler to :func:`report`, which
turns it into a rich ``google.rpc.Status`` sent in the ``grpc-status-details-bin`` trailer
(grpcio-status):

==========================  ===================  ==================  =========================
exception                   gRPC code            ErrorInfo.reason    other details
==========================  ===================  ==================  =========================
``PolicyNotFoundError``     NOT_FOUND            POLICY_NOT_FOUND    metadata policy, version
``InvalidFactsError``       INVALID_ARGUMENT     INVALID_FACTS       BadRequest, one violation
                                                                     per bad fact
``EngineBusyError``         RESOURCE_EXHAUSTED   ENGINE_BUSY
``ValidationBusyError``     RESOURCE_EXHAUSTED   VALIDATION_BUSY
``UnauthenticatedError``    UNAUTHENTICATED      UNAUTHENTICATED
``PermissionDeniedError``   PERMISSION_DENIED    PERMISSION_DENIED   metadata caller, method
``DeadlineExpiredError``    DEADLINE_EXCEEDED    DEADLINE_EXCEEDED
``MalformedRequestError``   INVALID_ARGUMENT     MALFORMED_REQUEST
``DecisionNotFoundError``   NOT_FOUND            DECISION_NOT_FOUND  metadata decision_id
``RequestIdReusedError``    ALREADY_EXISTS       REQUEST_ID_REUSED   names only the request
                                                                     id, never what it recorded
``InvalidRequestError``     INVALID_ARGUMENT     INVALID_REQUEST     BadRequest, one violation
                                                                     per bad field
``StoreUnavailableError``   UNAVAILABLE          STORE_UNAVAILABLE   nothing was recorded (nor
                                                                     returned); logged here
``CorruptRecordError``      DATA_LOSS            CORRUPT_RECORD      names the record; logged
                                                                     here as an error
``ReloadUnavailableError``  FAILED_PRECONDITION  RELOAD_UNAVAILABLE
``UnimplementedError``      UNIMPLEMENTED        UNIMPLEMENTED
anything else               INTERNAL             INTERNAL            message names only the
                                                                     request id; logged here
==========================  ===================  ==================  =========================

Every ``ErrorInfo`` has ``domain="fairpath"`` and ``metadata["request_id"]``.
Internal errors are logged with their traceback, which never reaches the client.
What a status echoes is capped (:mod:`fairpath.echo`): at most :data:`MAX_VIOLATIONS`
violations plus one counting the rest, short fields and descriptions, and never more than
:data:`MAX_STATUS_BYTES` in the trailers, so the real error always reaches the caller.
A call the client cancelled (or let expire) is none: it is left to grpc, and the
access log records it as ``CANCELLED`` (or ``DEADLINE_EXCEEDED``) at info level.
"""

from __future__ import annotations

from typing import Any

import grpc
import structlog
from google.protobuf import any_pb2

# googleapis-common-protos ships .pyi files but no py.typed marker, so mypy will not read them.
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

from fairpath.api.call_state import REQUEST_ID_HEADER, code_of, current_request_id, ended_by_client
from fairpath.echo import clipped, more, prefix
from fairpath.errors import (
    CorruptRecordError,
    DeadlineExpiredError,
    DecisionNotFoundError,
    EngineBusyError,
    FieldViolation,
    InvalidFactsError,
    InvalidRequestError,
    MalformedRequestError,
    PermissionDeniedError,
    PolicyNotFoundError,
    ReloadUnavailableError,
    RequestIdReusedError,
    StoreUnavailableError,
    UnauthenticatedError,
    UnimplementedError,
    ValidationBusyError,
)

DOMAIN = "fairpath"

#: Most bytes an error status may add to the response trailers (``grpc-message`` and
#: ``grpc-status-details-bin``): half of gRPC's default 8 KiB metadata limit, so the caller
#: always receives the real error, never ``RESOURCE_EXHAUSTED`` about the error's own size.
MAX_STATUS_BYTES = 4096
#: Most field violations a status lists; the rest are counted in one more ("and 52 more").
MAX_VIOLATIONS = 10
# Longest message, violation field path and description, and ErrorInfo value, in characters.
_MAX_MESSAGE = 1000
_MAX_FIELD = 100
_MAX_DESCRIPTION = 300
_MAX_ECHO = 128

_log = structlog.get_logger(__name__)

# The one mapping table (the module docstring shows it): each domain error's gRPC code and
# ErrorInfo reason. The first class an error is an instance of wins; anything else is INTERNAL.
_STATUSES: tuple[tuple[type[Exception], grpc.StatusCode, str], ...] = (
    (PolicyNotFoundError, grpc.StatusCode.NOT_FOUND, "POLICY_NOT_FOUND"),
    (InvalidFactsError, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FACTS"),
    (EngineBusyError, grpc.StatusCode.RESOURCE_EXHAUSTED, "ENGINE_BUSY"),
    (ValidationBusyError, grpc.StatusCode.RESOURCE_EXHAUSTED, "VALIDATION_BUSY"),
    (UnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED"),
    (PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED"),
    (DeadlineExpiredError, grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED"),
    (MalformedRequestError, grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_REQUEST"),
    (DecisionNotFoundError, grpc.StatusCode.NOT_FOUND, "DECISION_NOT_FOUND"),
    (RequestIdReusedError, grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ID_REUSED"),
    (InvalidRequestError, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST"),
    (StoreUnavailableError, grpc.StatusCode.UNAVAILABLE, "STORE_UNAVAILABLE"),
    (CorruptRecordError, grpc.StatusCode.DATA_LOSS, "CORRUPT_RECORD"),
    (ReloadUnavailableError, grpc.StatusCode.FAILED_PRECONDITION, "RELOAD_UNAVAILABLE"),
    (UnimplementedError, grpc.StatusCode.UNIMPLEMENTED, "UNIMPLEMENTED"),
)


def rich_status(error: BaseException, request_id: str) -> Any:
    """Build the ``google.rpc.Status`` (code, message and packed details) that reports ``error``.

    Args:
        error: What the handler raised.
        request_id: Put in ``ErrorInfo.metadata`` (and in the message of internal errors).

    Returns:
        A ``google.rpc.status_pb2.Status``.

    """
    code, reason = next(
        ((code, reason) for kind, code, reason in _STATUSES if isinstance(error, kind)),
        (grpc.StatusCode.INTERNAL, "INTERNAL"),
    )
    metadata = {"request_id": request_id, **_metadata(error)}
    # Values a request supplied (a policy name, a decision id) are echoed capped, like everything else.
    capped = {key: prefix(value, _MAX_ECHO) for key, value in metadata.items()}
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=capped)
    violations = list(error.violations) if isinstance(error, InvalidFactsError | InvalidRequestError) else None
    return _fitted(code, _message(error, code, reason, request_id), info, violations)


def _fitted(code: grpc.StatusCode, message: str, info: Any, violations: list[FieldViolation] | None) -> Any:
    """Build the status, listing and echoing no more than fits in :data:`MAX_STATUS_BYTES` of trailers.

    The message and every violation are capped first (:mod:`fairpath.echo`); should the status still be
    too large (many long non-ASCII values), the message is cut to a summary first (it repeats what the
    violations say, field by field), then violations are dropped from the end into the ``and N more``
    count, then the message is cut further, until it fits.
    """
    shown = min(len(violations or ()), MAX_VIOLATIONS)
    limit = _MAX_MESSAGE
    while True:
        details = [info] if violations is None else [info, _bad_request(violations, shown)]
        status = _status(code, clipped(message, limit), details)
        if _trailer_bytes(status) <= MAX_STATUS_BYTES or (shown == 0 and limit <= _MAX_ECHO):
            return status
        if shown and limit > _MAX_ECHO * 2:
            limit //= 2
        elif shown:
            shown -= 1
        else:
            limit //= 2


def _bad_request(violations: list[FieldViolation], shown: int) -> Any:
    """Return the ``BadRequest`` listing the first ``shown`` violations, capped, and counting the rest."""
    listed = [
        error_details_pb2.BadRequest.FieldViolation(
            field=prefix(v.field, _MAX_FIELD), description=clipped(v.description, _MAX_DESCRIPTION)
        )
        for v in violations[:shown]
    ]
    if shown < len(violations):
        # Counted under the first left-out violation's top-level field ("facts" for facts.<name>).
        field = prefix(violations[shown].field.split(".", 1)[0], _MAX_FIELD)
        listed.append(
            error_details_pb2.BadRequest.FieldViolation(field=field, description=more(len(violations) - shown))
        )
    return error_details_pb2.BadRequest(field_violations=listed)


def _status(code: grpc.StatusCode, message: str, details: list[Any]) -> Any:
    status = status_pb2.Status(code=code.value[0], message=message)
    for detail in details:
        packed = any_pb2.Any()
        packed.Pack(detail)
        status.details.append(packed)
    return status


def _trailer_bytes(status: Any) -> int:
    """Bytes ``status`` takes in the trailers: percent-encoded ``grpc-message`` plus base64 details."""
    encoded = status.message.encode("utf-8")
    message = sum(1 if 0x20 <= byte <= 0x7E and byte != 0x25 else 3 for byte in encoded)
    details: int = 4 * -(-status.ByteSize() // 3)
    return message + details


def _metadata(error: BaseException) -> dict[str, str]:
    """Return the ``ErrorInfo`` metadata naming what the error is about, besides the request id."""
    if isinstance(error, PolicyNotFoundError):
        return {"policy": error.name, "version": error.version}
    if isinstance(error, PermissionDeniedError):
        return {"caller": error.caller, "method": error.method}
    if isinstance(error, DecisionNotFoundError):
        return {"decision_id": error.decision_id}
    return {}


def _message(error: BaseException, code: grpc.StatusCode, reason: str, request_id: str) -> str:
    """Return the status message: the error's own words, unless those must stay in the server log."""
    if code is grpc.StatusCode.INTERNAL:
        return f"internal error (request id {request_id})"
    if isinstance(error, StoreUnavailableError):
        # The store's own words (a file path, a host) stay in the server log.
        return f"the decision store is unavailable, so nothing was recorded (request id {request_id})"
    return str(error) or reason.lower().replace("_", " ")


def report(error: Exception, context: grpc.ServicerContext) -> None:
    """End the call with the :func:`rich_status` that reports ``error``, which a handler raised.

    Aborts (grpc's ``abort_with_status`` raises), except when the call's status is settled already:
    the handler chose it (``context.abort``, ``set_code``) or the caller has gone. Then it returns,
    and the caller of this function re-raises ``error``.
    """
    if code_of(context) is not None:
        return
    if isinstance(error, grpc.RpcError) and ended_by_client(context) is not None:
        # grpc's own signal that the caller left (a request stream cut short by a cancel or a
        # closed channel): not a server fault, and nobody is left to receive a status. Re-raised
        # unchanged, grpc recognises it and stays quiet; the access log records CANCELLED.
        return
    request_id = current_request_id()
    status = rich_status(error, request_id)
    if status.code == grpc.StatusCode.INTERNAL.value[0]:
        _log.error("internal_error", error_type=type(error).__name__, exc_info=error)
    elif isinstance(error, StoreUnavailableError):
        _log.warning("store_unavailable", error=str(error))
    elif isinstance(error, CorruptRecordError):
        # The trail was changed behind fairpath's back: an alarm, though no traceback (not a defect).
        _log.error("corrupt_record", error=str(error))
    wire = rpc_status.to_status(status)
    # abort_with_status replaces the trailers, so the request id rides along again here.
    context.abort_with_status(
        _Status(wire.code, wire.details, (*wire.trailing_metadata, (REQUEST_ID_HEADER, request_id)))
    )


class _Status(grpc.Status):
    """The status triple ``abort_with_status`` takes (grpc only ships an abstract base)."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: tuple[tuple[str, Any], ...]) -> None:
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata
