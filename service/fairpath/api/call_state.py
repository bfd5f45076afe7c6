"""What the server knows about the RPC in progress: its request id, its status code, whether its caller is there.

Shared by the server's interceptor (:mod:`fairpath.api.interceptors`), the status mapping
(:mod:`fairpath.api.status`), caller roles (:mod:`fairpath.api.auth`) and limits
(:mod:`fairpath.api.limits`); kept apart so that none of them imports another's module to reach it.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, TypeAlias, cast

import grpc

REQUEST_ID_HEADER = "x-request-id"

# A string: grpc.RpcMethodHandler is generic only in the type stubs.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"

_request_id: ContextVar[str] = ContextVar("fairpath_request_id", default="")


def current_request_id() -> str:
    """Return the request id of the RPC running on this thread, or ``""`` outside one."""
    return _request_id.get()


def set_request_id(request_id: str) -> None:
    """Make ``request_id`` the one :func:`current_request_id` returns (``""`` when the RPC ends)."""
    _request_id.set(request_id)


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


def header(metadata: Any, key: str) -> str:
    """Return the text value of header ``key`` in a call's metadata, or ``""``."""
    for name, value in metadata or ():
        if name == key:
            return value if isinstance(value, str) else ""
    return ""
