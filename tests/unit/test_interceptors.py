"""The server's one interceptor builds each method's handler once, and never keeps what callers name."""

from __future__ import annotations

from typing import Any, NamedTuple

import grpc
from fairpath.api.auth import AuthPolicy, hash_token
from fairpath.api.interceptors import CallInterceptor

EVALUATE = "/fairpath.v1.EvaluationService/Evaluate"


class _Details(NamedTuple):
    method: str
    invocation_metadata: tuple[tuple[str, str], ...]


def _policy() -> AuthPolicy:
    return AuthPolicy.from_mapping({"tokens": {"hr": {"sha256": hash_token("t"), "roles": ["evaluator"]}}})


def _lookup(interceptor: CallInterceptor, method: str, handler: Any) -> Any:
    return interceptor.intercept_service(lambda _: handler, _Details(method, ()))


def test_a_method_is_wrapped_once_and_served_by_the_same_handler() -> None:
    """The interceptor is asked for every call; after the first, it answers with the handler already built."""
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    interceptor = CallInterceptor(_policy())
    first = _lookup(interceptor, EVALUATE, handler)
    assert first is not handler
    assert _lookup(interceptor, EVALUATE, handler) is first


def test_a_method_whose_handler_changed_is_wrapped_again() -> None:
    """A handler is reused only for the handler it wraps, never for another under the same name."""
    interceptor = CallInterceptor()
    one = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    other = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    assert _lookup(interceptor, EVALUATE, one) is not _lookup(interceptor, EVALUATE, other)


def test_unknown_method_names_are_refused_but_not_kept() -> None:
    """Under auth an unknown fairpath method still gets a (refusing) handler, but callers' names are not stored."""
    interceptor = CallInterceptor(_policy())
    for index in range(100):
        assert _lookup(interceptor, f"/fairpath.v1.EvaluationService/Nope{index}", None) is not None
    assert _lookup(interceptor, "/other.Service/Nope", None) is None
    assert interceptor._served == {}  # the table whose growth is the point
