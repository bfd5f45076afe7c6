"""Server interceptors: request ids and one canonical access-log line per RPC.

:class:`AccessLogInterceptor` is the outermost interceptor. For every call it

* settles the request id: the ``x-request-id`` header, else the request's own
  ``request_id`` field, else a fresh ``uuid4().hex`` (an id too long or not
  printable is not used, and :class:`fairpath.api.limits.LimitsInterceptor`
  refuses the call); binds it into structlog's
  context, makes it available through :func:`current_request_id` and echoes it
  to the caller as ``x-request-id`` initial metadata (so errors carry it too);
* writes one ``rpc`` line when the call ends: method, request id, status code
  name, duration, plus whatever the servicer bound (policy, version,
  decision id). Health checks are logged at debug level, everything else at info.
  A call its client ended (cancelled, channel closed, deadline passed) is
  logged as ``CANCELLED`` or ``DEADLINE_EXCEEDED`` (:func:`ended_by_client`).

:func:`wrap_handler` is the plumbing both this interceptor and
:class:`fairpath.api.status.StatusInterceptor` use to run code *around* a
handler rather than merely before it is looked up (grpc's
``service_latency_interceptor`` example).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import Any, TypeAlias, cast

import grpc
import structlog

from fairpath.api import field_limits

REQUEST_ID_HEADER = "x-request-id"
HEALTH_METHOD_PREFIX = "/grpc.health.v1.Health/"

# A string: grpc.RpcMethodHandler is generic only in the type stubs.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
# Given the request (or request iterator) and the context, returns what to run around the handler.
Scope: TypeAlias = Callable[[Any, grpc.ServicerContext], AbstractContextManager[None]]

_request_id: ContextVar[str] = ContextVar("fairpath_request_id", default="")
_log = structlog.get_logger(__name__)


def current_request_id() -> str:
    """Return the request id of the RPC running on this thread, or ``""`` outside one."""
    return _request_id.get()


def code_of(context: grpc.ServicerContext) -> grpc.StatusCode | None:
    """Return the status code already set on ``context``, or ``None`` while none is."""
    # ServicerContext.code() is documented (experimental) grpc API, but types-grpcio omits it.
    return cast(grpc.StatusCode | None, cast(Any, context).code())


def ended_by_client(context: grpc.ServicerContext) -> grpc.StatusCode | None:
    """Return how the caller ended the call before the handler finished, or ``None`` while it is live.

    ``CANCELLED`` when the client cancelled or went away (closed its channel),
    ``DEADLINE_EXCEEDED`` when its deadline passed. Either way no status can reach
    the caller any more, and the server did nothing wrong.
    """
    if context.is_active():
        return None
    # grpc core cancels the call when the deadline passes, so both end the same way; the clock tells them apart.
    return grpc.StatusCode.DEADLINE_EXCEEDED if context.time_remaining() <= 0 else grpc.StatusCode.CANCELLED


def wrap_handler(handler: Handler, scope: Scope) -> Handler:
    """Return ``handler`` with every call run inside ``scope(request, context)``.

    Exceptions raised by the handler pass through the scope, which may log,
    translate or re-raise them. Handlers that grpc runs without a thread
    (``experimental_non_blocking``, i.e. health ``Watch``) are returned as they
    are: wrapping would hide that marker and pin a pool thread per watcher.
    """
    kinds = (handler.unary_unary, handler.unary_stream, handler.stream_unary, handler.stream_stream)
    if any(getattr(behavior, "experimental_non_blocking", False) for behavior in kinds):
        return handler
    serializers = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(_unary(handler.unary_unary, scope), **serializers)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(_streaming(handler.unary_stream, scope), **serializers)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(_unary(handler.stream_unary, scope), **serializers)
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(_streaming(handler.stream_stream, scope), **serializers)
    return handler


def _unary(behavior: Callable[[Any, grpc.ServicerContext], Any], scope: Scope) -> Callable[..., Any]:
    def call(request: Any, context: grpc.ServicerContext) -> Any:
        with scope(request, context):
            return behavior(request, context)

    return call


def _streaming(
    behavior: Callable[[Any, grpc.ServicerContext], Iterator[Any]], scope: Scope
) -> Callable[..., Iterator[Any]]:
    def call(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        # The scope must last until the last response is sent, not until the generator is created.
        with scope(request, context):
            yield from behavior(request, context)

    return call


class AccessLogInterceptor(grpc.ServerInterceptor):
    """Settles the request id and writes one ``rpc`` line per call; install it first (outermost)."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Handler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        """Wrap the handler found by ``continuation`` in the request-id and access-log scope."""
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        header = _valid_id(_header(handler_call_details.invocation_metadata, REQUEST_ID_HEADER))

        @contextlib.contextmanager
        def scope(request: Any, context: grpc.ServicerContext) -> Iterator[None]:
            request_id = header or _valid_id(getattr(request, "request_id", None)) or uuid.uuid4().hex
            _request_id.set(request_id)
            # A worker thread may carry context from its previous call; start every call clean.
            structlog.contextvars.clear_contextvars()
            structlog.contextvars.bind_contextvars(request_id=request_id)
            # Trailing, not initial, metadata: it travels with the status at no extra cost,
            # where initial metadata costs the server a separate send per call.
            context.set_trailing_metadata(((REQUEST_ID_HEADER, request_id),))
            started = time.perf_counter()
            outcome: str | None = None
            try:
                yield
            except GeneratorExit:
                outcome = grpc.StatusCode.CANCELLED.name
                raise
            except Exception:
                outcome = (code_of(context) or ended_by_client(context) or grpc.StatusCode.UNKNOWN).name
                raise
            finally:
                log = _log.debug if method.startswith(HEALTH_METHOD_PREFIX) else _log.info
                log(
                    "rpc",
                    method=method,
                    code=outcome or (code_of(context) or grpc.StatusCode.OK).name,
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                )
                # Not ContextVar.reset(): a stream's generator may be finalised in another context.
                structlog.contextvars.clear_contextvars()
                _request_id.set("")

        return wrap_handler(handler, scope)


def _header(metadata: tuple[tuple[str, str | bytes], ...] | None, key: str) -> str | None:
    for name, value in metadata or ():
        if name == key:
            return value if isinstance(value, str) else None
    return None


def _valid_id(value: object) -> str:
    # Longer or non-printable-ASCII ids are never logged or echoed: the call is logged under a fresh id and
    # refused (INVALID_ARGUMENT) by fairpath.api.limits.LimitsInterceptor, never served under that fresh id.
    if isinstance(value, str) and value and not field_limits.request_id_problem(value):
        return value
    return ""
