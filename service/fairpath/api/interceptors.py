"""The server's one interceptor: request ids, caller roles, limits, statuses and one access-log line per RPC.

:class:`CallInterceptor` does, around every call, in one pass (outermost first):

* settles the request id: the ``x-request-id`` header, else the request's own
  ``request_id`` field, else a fresh ``uuid4().hex`` (an id too long or not
  printable is not used, and :func:`fairpath.api.limits.check_limits`
  refuses the call); binds it into structlog's context, makes it available
  through :func:`current_request_id` and echoes it to the caller as
  ``x-request-id`` trailing metadata (so errors carry it too);
* with an auth config, identifies the caller of a ``fairpath.*`` RPC and checks
  its roles (:func:`fairpath.api.auth.authorise`);
* refuses undecodable requests, oversized fields, absurd facts and expired
  deadlines (:mod:`fairpath.api.limits`);
* turns whatever the handler (or the checks above) raised into a rich status
  (:func:`fairpath.api.status.report`);
* writes one ``rpc`` line when the call ends: method, request id, status code
  name, duration, plus whatever the servicer bound (policy, version,
  decision id; never facts). Health checks are logged at debug level,
  everything else at info. A call its client ended (cancelled, channel closed,
  deadline passed) is logged as ``CANCELLED`` or ``DEADLINE_EXCEEDED``
  (:func:`ended_by_client`).

Why one interceptor and not four (issue 14, ``tests/benchmarks/bench_interceptors.py``): grpc's
threaded server runs every interceptor's ``intercept_service`` per call on its one polling thread,
so each of four rebuilt its handler and closures for every call, serially for all calls, and each
call then went through four generator-based scopes. Here the handler a method is served by is
built once per method and kept, what a call needs from its headers is read in the call, and the
guarantees run as plain code in one frame.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import structlog

from fairpath.api import field_limits, status
from fairpath.api.auth import UNIMPLEMENTED_HANDLER, AuthPolicy, authorise, forget_caller, protects
from fairpath.api.call_state import (
    REQUEST_ID_HEADER,
    Handler,
    code_of,
    current_request_id,
    ended_by_client,
    header,
    set_request_id,
)
from fairpath.api.limits import check_limits, guard_decoding

# Re-exported: servicers and tests import these from here.
__all__ = ["REQUEST_ID_HEADER", "CallInterceptor", "Handler", "code_of", "current_request_id", "ended_by_client"]

HEALTH_METHOD_PREFIX = "/grpc.health.v1.Health/"

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a method's calls need that depends only on the method: worked out once, when first called."""

    method: str
    quiet: bool  # health checks: their line is at debug level
    auth: AuthPolicy | None  # None: the method is open (no auth config, or not a fairpath RPC)


class CallInterceptor(grpc.ServerInterceptor):
    """Every guarantee the server gives around a call (module docstring); the server's only interceptor."""

    def __init__(self, auth: AuthPolicy | None = None) -> None:
        """``auth``: the auth config, or None for an open service."""
        self._auth = auth
        # method -> (the handler grpc found, the handler served instead); one entry per existing method.
        self._served: dict[str, tuple[Handler, Handler]] = {}

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Handler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        """Return the handler that serves ``handler_call_details.method`` with every guarantee around it."""
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None:
            if self._auth is None or not protects(method):
                return None
            # Not kept: unknown names come from callers, and a table of them would grow without bound.
            return _wrap(UNIMPLEMENTED_HANDLER, _Plan(method, False, self._auth))
        served = self._served.get(method)
        if served is None or served[0] is not handler:
            plan = _Plan(method, method.startswith(HEALTH_METHOD_PREFIX), self._auth if protects(method) else None)
            served = (handler, _wrap(handler, plan))
            self._served[method] = served
        return served[1]


def _wrap(handler: Handler, plan: _Plan) -> Handler:
    """Return ``handler`` with every call run inside the guarantees.

    Handlers that grpc runs without a thread (``experimental_non_blocking``, i.e. health
    ``Watch``) are returned as they are (but for the guarded decoding): wrapping would hide that
    marker and pin a pool thread per watcher.
    """
    guarded = guard_decoding(handler)
    kinds = (guarded.unary_unary, guarded.unary_stream, guarded.stream_unary, guarded.stream_stream)
    if any(getattr(behavior, "experimental_non_blocking", False) for behavior in kinds):
        return guarded
    serializers = {
        "request_deserializer": guarded.request_deserializer,
        "response_serializer": guarded.response_serializer,
    }
    if guarded.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(_unary(guarded.unary_unary, plan), **serializers)
    if guarded.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(_streaming(guarded.unary_stream, plan), **serializers)
    if guarded.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(_unary(guarded.stream_unary, plan), **serializers)
    if guarded.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(_streaming(guarded.stream_stream, plan), **serializers)
    return guarded


def _unary(behavior: Callable[[Any, grpc.ServicerContext], Any], plan: _Plan) -> Callable[..., Any]:
    def call(request: Any, context: grpc.ServicerContext) -> Any:
        metadata = context.invocation_metadata()
        sent = header(metadata, REQUEST_ID_HEADER)
        started = _begin(request, context, sent)
        outcome: str | None = None
        try:
            _admit(plan, request, context, metadata, sent)
            return behavior(request, context)
        except Exception as error:
            try:
                status.report(error, context)  # aborts: grpc's abort raises its own exception
            finally:
                outcome = _ended_with(context)
            raise
        finally:
            _end(plan, context, started, outcome)

    return call


def _streaming(
    behavior: Callable[[Any, grpc.ServicerContext], Iterator[Any]], plan: _Plan
) -> Callable[..., Iterator[Any]]:
    def call(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        # A generator: everything lasts until the last response is sent, not until the generator is created.
        metadata = context.invocation_metadata()
        sent = header(metadata, REQUEST_ID_HEADER)
        started = _begin(request, context, sent)
        outcome: str | None = None
        try:
            _admit(plan, request, context, metadata, sent)
            yield from behavior(request, context)
        except GeneratorExit:
            outcome = grpc.StatusCode.CANCELLED.name
            raise
        except Exception as error:
            try:
                status.report(error, context)
            finally:
                outcome = _ended_with(context)
            raise
        finally:
            _end(plan, context, started, outcome)

    return call


def _begin(request: Any, context: grpc.ServicerContext, sent: str) -> float:
    """Settle, bind and echo the request id; return the clock reading the duration is measured from."""
    request_id = _valid_id(sent) or _valid_id(getattr(request, "request_id", None)) or uuid.uuid4().hex
    set_request_id(request_id)
    # A worker thread may carry context from its previous call; start every call clean.
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    # Trailing, not initial, metadata: it travels with the status at no extra cost,
    # where initial metadata costs the server a separate send per call.
    context.set_trailing_metadata(((REQUEST_ID_HEADER, request_id),))
    return time.perf_counter()


def _admit(plan: _Plan, request: Any, context: grpc.ServicerContext, metadata: Any, sent: str) -> None:
    """Refuse the call (by raising a domain error) unless its caller may make it and it is within limits."""
    if plan.auth is not None:
        authorise(plan.auth, plan.method, metadata, context)
    check_limits(request, context, sent)


def _ended_with(context: grpc.ServicerContext) -> str:
    """The code a failed call ended with: the one reported, else the client's ending, else UNKNOWN."""
    return (code_of(context) or ended_by_client(context) or grpc.StatusCode.UNKNOWN).name


def _end(plan: _Plan, context: grpc.ServicerContext, started: float, outcome: str | None) -> None:
    """Write the call's one access-log line and forget its request id and caller."""
    log = _log.debug if plan.quiet else _log.info
    log(
        "rpc",
        method=plan.method,
        code=outcome or (code_of(context) or grpc.StatusCode.OK).name,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
    )
    # Not ContextVar.reset(): a stream's generator may be finalised in another context.
    structlog.contextvars.clear_contextvars()
    set_request_id("")
    if plan.auth is not None:
        forget_caller()


def _valid_id(value: object) -> str:
    # Longer or non-printable-ASCII ids are never logged or echoed: the call is logged under a fresh id and
    # refused (INVALID_ARGUMENT) by fairpath.api.limits.check_limits, never served under that fresh id.
    if isinstance(value, str) and value and not field_limits.request_id_problem(value):
        return value
    return ""
