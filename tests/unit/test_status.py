"""Domain errors become rich gRPC statuses, through the real interceptor on a loopback server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from fairpath.api.interceptors import REQUEST_ID_HEADER, CallInterceptor
from fairpath.api.status import DOMAIN, rich_status
from fairpath.errors import (
    EngineBusyError,
    EngineError,
    FieldViolation,
    InvalidFactsError,
    PolicyFileError,
    PolicyNotFoundError,
    ReloadUnavailableError,
    UnimplementedError,
    ValidationBusyError,
)
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status
from structlog.testing import capture_logs

SERVICE = "fairpath.test.Errors"
RAISE = f"/{SERVICE}/Raise"


# The exception the handler raises for each request payload.
_ERRORS: dict[bytes, Exception] = {
    b"not-found": PolicyNotFoundError("nope", "9.9.9"),
    b"invalid": InvalidFactsError(
        [FieldViolation("facts.age", "must be a number"), FieldViolation("facts.x", "unknown")]
    ),
    b"busy": EngineBusyError("all sessions in use"),
    b"engine": EngineError("secret engine detail"),
    b"policy-file": PolicyFileError("bad file", path="/srv/p.yaml"),
    b"bug": KeyError("secret key"),
    b"no-reload": ReloadUnavailableError(),
    b"unimplemented": UnimplementedError("Method not found!"),
    b"validation-busy": ValidationBusyError("another policy validation is running"),
}


def _handle(request: bytes, context: grpc.ServicerContext) -> bytes:
    if request == b"abort":
        context.abort(grpc.StatusCode.PERMISSION_DENIED, "not for you")
    if request in _ERRORS:
        raise _ERRORS[request]
    return b"done"


@pytest.fixture(name="call", scope="module")
def _call() -> Iterator[grpc.UnaryUnaryMultiCallable]:
    server = grpc.server(ThreadPoolExecutor(max_workers=2), interceptors=[CallInterceptor()])
    handler = grpc.unary_unary_rpc_method_handler(_handle)  # bytes in, bytes out
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Raise": handler}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel.unary_unary(RAISE)
    server.stop(None)


def _fail(call: grpc.UnaryUnaryMultiCallable, payload: bytes, request_id: str = "rid-1") -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(payload, timeout=5, metadata=((REQUEST_ID_HEADER, request_id),))
    return caught.value


def _details(error: grpc.RpcError) -> tuple[object, list[object]]:
    status = rpc_status.from_call(error)
    assert status is not None, "no grpc-status-details-bin trailer"
    unpacked: list[object] = []
    for packed in status.details:
        for kind in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest):
            if packed.Is(kind.DESCRIPTOR):
                message = kind()
                packed.Unpack(message)
                unpacked.append(message)
    return status, unpacked


def test_policy_not_found_is_not_found_with_error_info(call: grpc.UnaryUnaryMultiCallable) -> None:
    """PolicyNotFoundError → NOT_FOUND, ErrorInfo POLICY_NOT_FOUND naming the policy and the request id."""
    error = _fail(call, b"not-found", request_id="rid-404")
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert error.details() == "policy 'nope@9.9.9' is not loaded"
    _, (info,) = _details(error)
    assert (info.reason, info.domain) == ("POLICY_NOT_FOUND", DOMAIN)
    assert dict(info.metadata) == {"request_id": "rid-404", "policy": "nope", "version": "9.9.9"}


def test_invalid_facts_is_invalid_argument_with_one_violation_per_fact(
    call: grpc.UnaryUnaryMultiCallable,
) -> None:
    """InvalidFactsError → INVALID_ARGUMENT with a BadRequest listing every violation, plus ErrorInfo."""
    error = _fail(call, b"invalid")
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    _, (info, bad_request) = _details(error)
    assert (info.reason, dict(info.metadata)) == ("INVALID_FACTS", {"request_id": "rid-1"})
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("facts.age", "must be a number"),
        ("facts.x", "unknown"),
    ]


def test_engine_busy_is_resource_exhausted(call: grpc.UnaryUnaryMultiCallable) -> None:
    """EngineBusyError → RESOURCE_EXHAUSTED with ErrorInfo ENGINE_BUSY."""
    error = _fail(call, b"busy")
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    _, (info,) = _details(error)
    assert info.reason == "ENGINE_BUSY"


def test_validation_busy_is_resource_exhausted_with_its_own_reason(call: grpc.UnaryUnaryMultiCallable) -> None:
    """ValidationBusyError → RESOURCE_EXHAUSTED with ErrorInfo VALIDATION_BUSY (not ENGINE_BUSY) and its words."""
    error = _fail(call, b"validation-busy")
    assert (error.code(), error.details()) == (grpc.StatusCode.RESOURCE_EXHAUSTED, str(_ERRORS[b"validation-busy"]))
    _, (info,) = _details(error)
    assert info.reason == "VALIDATION_BUSY"


@pytest.mark.parametrize(
    ("payload", "code", "reason"),
    [
        (b"no-reload", grpc.StatusCode.FAILED_PRECONDITION, "RELOAD_UNAVAILABLE"),
        (b"unimplemented", grpc.StatusCode.UNIMPLEMENTED, "UNIMPLEMENTED"),
    ],
)
def test_reload_unavailable_and_unimplemented_keep_their_code_and_words(
    call: grpc.UnaryUnaryMultiCallable, payload: bytes, code: grpc.StatusCode, reason: str
) -> None:
    """ReloadUnavailableError → FAILED_PRECONDITION, UnimplementedError → UNIMPLEMENTED, with ErrorInfo."""
    error = _fail(call, payload)
    assert (error.code(), error.details()) == (code, str(_ERRORS[payload]))
    _, (info,) = _details(error)
    assert (info.reason, dict(info.metadata)) == (reason, {"request_id": "rid-1"})


@pytest.mark.parametrize("payload", [b"engine", b"policy-file", b"bug"])
def test_anything_else_is_internal_without_detail_but_logged(
    call: grpc.UnaryUnaryMultiCallable, payload: bytes
) -> None:
    """EngineError and unexpected exceptions → INTERNAL naming only the request id; the cause is logged."""
    with capture_logs() as logs:
        error = _fail(call, payload, request_id="rid-500")
    assert error.code() is grpc.StatusCode.INTERNAL
    assert error.details() == "internal error (request id rid-500)"
    status, (info,) = _details(error)
    assert (info.reason, dict(info.metadata)) == ("INTERNAL", {"request_id": "rid-500"})
    assert "secret" not in str(status)
    assert "/srv" not in str(status)
    (logged,) = [entry for entry in logs if entry["event"] == "internal_error"]
    assert logged["log_level"] == "error"
    assert isinstance(logged["exc_info"], Exception)


def test_a_status_the_handler_chose_is_kept(call: grpc.UnaryUnaryMultiCallable) -> None:
    """A handler that aborts by itself keeps its own code and message."""
    error = _fail(call, b"abort")
    assert (error.code(), error.details()) == (grpc.StatusCode.PERMISSION_DENIED, "not for you")


def test_errors_echo_the_request_id_header(call: grpc.UnaryUnaryMultiCallable) -> None:
    """The caller's x-request-id comes back as trailing metadata, even on an error."""
    error = _fail(call, b"busy", request_id="rid-echo")
    assert (REQUEST_ID_HEADER, "rid-echo") in tuple(error.trailing_metadata())


def test_a_request_id_is_generated_when_none_is_sent(call: grpc.UnaryUnaryMultiCallable) -> None:
    """Without x-request-id the server makes a uuid4 hex id and returns it."""
    _, outcome = call.with_call(b"ok", timeout=5)
    sent = dict(outcome.trailing_metadata())
    assert re.fullmatch(r"[0-9a-f]{32}", sent[REQUEST_ID_HEADER])


def test_rich_status_code_and_message_agree_with_the_trailer() -> None:
    """rich_status sets code and message from one place, as grpcio-status requires."""
    status = rich_status(PolicyNotFoundError("p"), "r")
    assert (status.code, status.message) == (grpc.StatusCode.NOT_FOUND.value[0], "policy 'p' is not loaded")
