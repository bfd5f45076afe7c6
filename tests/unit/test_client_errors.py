"""from_rpc_error: gRPC statuses and rich error details become typed client exceptions."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from fairpath_client import (
    DeadlineExceededError,
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
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status


class FakeRpcError(grpc.RpcError):
    """What a stub raises: an RpcError that is also a finished call."""

    def __init__(
        self,
        code: grpc.StatusCode,
        details: str | None,
        trailing: tuple[tuple[str, str | bytes], ...] = (),
    ) -> None:
        super().__init__()
        self._code = code
        self._details = details
        self._trailing = trailing

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str | None:
        return self._details

    def trailing_metadata(self) -> Any:  # the stubs' _Metadatum is not constructible
        return self._trailing


def rich_error(
    code: grpc.StatusCode, message: str, *details: Message, extra: tuple[tuple[str, str], ...] = ()
) -> FakeRpcError:
    """Build the error a server's abort_with_status(rpc_status.to_status(...)) produces."""
    status = status_pb2.Status(code=code.value[0], message=message)
    for detail in details:
        status.details.add().Pack(detail)
    grpc_status = rpc_status.to_status(status)
    return FakeRpcError(grpc_status.code, grpc_status.details, tuple(grpc_status.trailing_metadata) + extra)


def bad_request(*violations: tuple[str, str]) -> error_details_pb2.BadRequest:
    return error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
            for field, description in violations
        ]
    )


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (grpc.StatusCode.NOT_FOUND, PolicyNotFoundError),
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidFactsError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ServiceBusyError),
        (grpc.StatusCode.UNAVAILABLE, ServiceUnavailableError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceededError),
        (grpc.StatusCode.PERMISSION_DENIED, PermissionDeniedError),
        (grpc.StatusCode.UNAUTHENTICATED, UnauthenticatedError),
        (grpc.StatusCode.INTERNAL, ServerError),
        (grpc.StatusCode.UNKNOWN, ServerError),
        (grpc.StatusCode.FAILED_PRECONDITION, ReloadUnavailableError),
        (grpc.StatusCode.UNIMPLEMENTED, UnimplementedError),
        (grpc.StatusCode.ALREADY_EXISTS, RequestIdReusedError),
        (grpc.StatusCode.ABORTED, ServerError),
    ],
)
def test_each_status_code_maps_to_its_exception_class(
    code: grpc.StatusCode, expected: type[FairpathClientError]
) -> None:
    """Every status code becomes its own class (ServerError for the rest), keeping code name and message."""
    error = from_rpc_error(FakeRpcError(code, "something happened"))

    assert type(error) is expected
    assert isinstance(error, FairpathClientError)
    assert not isinstance(error, grpc.RpcError)
    assert error.code == code.name
    assert error.message == "something happened"


def test_bad_request_details_become_field_violations() -> None:
    """INVALID_ARGUMENT with a google.rpc.BadRequest detail lists each violation in order."""
    error = from_rpc_error(
        rich_error(
            grpc.StatusCode.INVALID_ARGUMENT,
            "2 invalid fact(s)",
            bad_request(
                ("facts.intent_to_harm", "must be YES, NO or UNKNOWN, got true"),
                ("facts.colour", "is not declared by policy nhs-just-culture-guide"),
            ),
        )
    )

    assert isinstance(error, InvalidFactsError)
    assert error.violations == [
        FieldViolation("facts.intent_to_harm", "must be YES, NO or UNKNOWN, got true"),
        FieldViolation("facts.colour", "is not declared by policy nhs-just-culture-guide"),
    ]
    assert error.message == "2 invalid fact(s)"


def test_invalid_argument_without_bad_request_has_no_violations() -> None:
    """A bare INVALID_ARGUMENT still maps to InvalidFactsError, with an empty violation list."""
    error = from_rpc_error(FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "bad request"))

    assert isinstance(error, InvalidFactsError)
    assert error.violations == []


def test_error_info_gives_reason_metadata_and_request_id() -> None:
    """google.rpc.ErrorInfo fills reason and metadata, and its request_id key the request id."""
    info = error_details_pb2.ErrorInfo(
        reason="POLICY_NOT_FOUND",
        domain="fairpath",
        metadata={"request_id": "req-42", "policy": "nope"},
    )
    error = from_rpc_error(rich_error(grpc.StatusCode.NOT_FOUND, "policy 'nope' is not loaded", info))

    assert isinstance(error, PolicyNotFoundError)
    assert error.reason == "POLICY_NOT_FOUND"
    assert error.request_id == "req-42"
    assert error.metadata == {"request_id": "req-42", "policy": "nope"}


@pytest.mark.parametrize(
    ("reason", "expected", "field"),
    [
        ("INVALID_FACTS", InvalidFactsError, "facts.age"),
        ("INVALID_REQUEST", InvalidRequestError, "page_token"),
    ],
)
def test_violations_and_error_info_are_decoded_together(
    reason: str, expected: type[FairpathClientError], field: str
) -> None:
    """BadRequest plus ErrorInfo yield violations and reason; the reason picks the INVALID_ARGUMENT class."""
    error = from_rpc_error(
        rich_error(
            grpc.StatusCode.INVALID_ARGUMENT,
            "1 invalid field",
            error_details_pb2.ErrorInfo(reason=reason, metadata={"request_id": "r-1"}),
            bad_request((field, "is wrong")),
        )
    )

    assert type(error) is expected
    assert isinstance(error, InvalidFactsError | InvalidRequestError)
    assert error.reason == reason
    assert error.request_id == "r-1"
    assert error.violations == [FieldViolation(field, "is wrong")]


def test_request_id_falls_back_to_trailer_then_to_callers_id() -> None:
    """Without ErrorInfo the x-request-id trailer is used, and without that the id the caller sent."""
    echoed = FakeRpcError(grpc.StatusCode.INTERNAL, "boom", (("x-request-id", "from-trailer"),))
    silent = FakeRpcError(grpc.StatusCode.INTERNAL, "boom")

    assert from_rpc_error(echoed, request_id="sent").request_id == "from-trailer"
    assert from_rpc_error(silent, request_id="sent").request_id == "sent"
    assert from_rpc_error(silent).request_id is None


def test_missing_error_info_leaves_reason_empty() -> None:
    """No ErrorInfo detail means reason None and empty metadata, not an exception."""
    error = from_rpc_error(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "connection refused"))

    assert error.reason is None
    assert error.metadata == {}


def test_status_trailer_inconsistent_with_call_is_ignored() -> None:
    """A rich status whose code disagrees with the call's is dropped; the call's code still decides."""
    status = status_pb2.Status(code=grpc.StatusCode.NOT_FOUND.value[0], message="other")
    status.details.add().Pack(bad_request(("facts.x", "ignored")))
    trailer = (("grpc-status-details-bin", status.SerializeToString()),)
    error = from_rpc_error(FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "bad", trailer))

    assert isinstance(error, InvalidFactsError)
    assert error.violations == []


def test_undecodable_status_trailer_is_ignored() -> None:
    """Garbage in grpc-status-details-bin does not stop the error from being mapped."""
    trailer = (("grpc-status-details-bin", b"\xff\xff not a status"),)
    error = from_rpc_error(FakeRpcError(grpc.StatusCode.INTERNAL, "boom", trailer))

    assert isinstance(error, ServerError)
    assert error.message == "boom"


def test_rpc_error_that_is_not_a_call_becomes_unknown_server_error() -> None:
    """A bare grpc.RpcError (no code/details methods) maps to ServerError with code UNKNOWN."""
    error = from_rpc_error(grpc.RpcError())

    assert isinstance(error, ServerError)
    assert error.code == "UNKNOWN"
    assert error.message == "UNKNOWN"


def test_empty_details_fall_back_to_code_name() -> None:
    """A status without a message still gives a readable message: the code name."""
    error = from_rpc_error(FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, None))

    assert error.message == "DEADLINE_EXCEEDED"


def test_str_names_code_message_and_request_id() -> None:
    """str(error) is one line with code, message and the request id to quote."""
    error = ServerError("INTERNAL", "engine failed", request_id="req-9")

    assert str(error) == "INTERNAL: engine failed (request id req-9)"
    assert str(ServerError("INTERNAL", "engine failed")) == "INTERNAL: engine failed"
