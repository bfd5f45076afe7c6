"""A stand-in for ``fairpath serve`` that ``bench_rpc.py`` runs for its trials; not part of the service.

``python tests/benchmarks/_trial_server.py [--design threaded|aio] <fairpath serve options>``
serves the same services, health and interceptor as ``fairpath serve`` (one process; the policies,
the store, the threads, the RPC cap, the auth config and the log settings come from the same options).

``--design aio`` serves them on ``grpc.aio`` instead of grpc's threaded server: issue 14's trial,
which ``bench_rpc.py --aio`` measures beside ``fairpath serve``. The servicers stay synchronous and
run on the aio server's ``migration_thread_pool`` (``--threads`` threads, as the threaded server's
pool); the server's interceptor runs, unchanged, inside one ``grpc.aio.ServerInterceptor`` that
wraps each call's handler as the threaded server would, and the servicer context gets the three
methods aio's synchronous context lacks (``code``, ``is_active``, ``abort_with_status``; the first
two approximated). ``--design threaded`` builds grpc's threaded server the same way (for a like-for-like
look at this script's own set-up). No reflection, review console, reload watcher or checkpoint
writer: the measured process does only the calls.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "service")]

import grpc  # noqa: E402
from fairpath import logs  # noqa: E402
from fairpath.api.auth import AuthPolicy  # noqa: E402
from fairpath.api.interceptors import Handler  # noqa: E402
from fairpath.api.server import SERVICE_NAMES, Services, add_services, interceptors  # noqa: E402
from fairpath.audit import open_store  # noqa: E402
from fairpath.config import Config  # noqa: E402
from fairpath.recording import DecisionRecorder  # noqa: E402
from fairpath.serving.evaluator import Evaluator  # noqa: E402
from fairpath.serving.reload import Reloader  # noqa: E402
from grpc_health.v1 import health, health_pb2  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM, as ``fairpath serve`` would; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--design", choices=("threaded", "aio"), default="threaded")
    options, rest = parser.parse_known_args(argv)
    config = Config.from_sources(rest, os.environ)
    logs.configure(config.log_level, config.log_format)

    evaluator = Evaluator()
    Reloader(evaluator, config.policies_dir, allow_unlocked=config.allow_unlocked).reload("startup")
    store = open_store(config.store)
    services = Services(evaluator=evaluator, recorder=DecisionRecorder(evaluator, store), store=store)
    auth = AuthPolicy.load(config.auth_config) if config.auth_config else None
    chain = interceptors(auth)
    server_options = [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]
    try:
        if options.design == "aio":
            asyncio.run(_serve_aio(config, services, chain, server_options))
        else:
            _serve_threaded(config, services, chain, server_options)
    finally:
        store.close()
        evaluator.close()
    return 0


def _serve_threaded(
    config: Config, services: Services, chain: list[grpc.ServerInterceptor], options: list[tuple[str, int]]
) -> None:
    server = grpc.server(
        ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="fairpath-rpc"),
        interceptors=chain,
        options=options,
        maximum_concurrent_rpcs=config.max_concurrent_rpcs,
    )
    servicer = add_services(server, services)
    server.add_insecure_port(config.address)
    server.start()
    _set_serving(servicer)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop(config.grace_seconds).wait()


async def _serve_aio(
    config: Config, services: Services, chain: list[grpc.ServerInterceptor], options: list[tuple[str, int]]
) -> None:
    server = grpc.aio.server(
        migration_thread_pool=ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="fairpath-rpc"),
        interceptors=[_SyncChain(chain)] if chain else [],
        options=options,
        maximum_concurrent_rpcs=config.max_concurrent_rpcs,
    )
    # The generated add_*_to_server functions only call add_generic_rpc_handlers and
    # add_registered_method_handlers, which the aio server has too.
    servicer = add_services(cast(grpc.Server, server), services)
    server.add_insecure_port(config.address)
    await server.start()
    _set_serving(servicer)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(config.grace_seconds)


def _set_serving(servicer: health.HealthServicer) -> None:
    for name in (health.OVERALL_HEALTH, *SERVICE_NAMES):
        servicer.set(name, health_pb2.HealthCheckResponse.SERVING)


class _SyncChain(grpc.aio.ServerInterceptor):
    """The threaded server's interceptors, run in the same order around each aio call's handler."""

    def __init__(self, chain: list[grpc.ServerInterceptor]) -> None:
        self._chain = chain

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        """Find the handler, then let each interceptor wrap it, innermost first, as grpc.server does."""
        handler = await continuation(handler_call_details)
        for interceptor in reversed(self._chain):
            handler = interceptor.intercept_service(_found(handler), handler_call_details)
        return None if handler is None else _with_context_shim(handler)


def _found(handler: Handler | None) -> Callable[[grpc.HandlerCallDetails], Handler | None]:
    """A continuation that answers the handler aio already found."""
    return lambda _: handler


def _with_context_shim(handler: Handler) -> Handler:
    behavior = handler.unary_unary
    if behavior is None:
        return handler  # streaming RPCs are not benchmarked; they run unshimmed

    def call(request: Any, context: Any) -> Any:
        return behavior(request, cast(grpc.ServicerContext, _ContextShim(context)))

    return grpc.unary_unary_rpc_method_handler(
        call, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
    )


class _ContextShim:
    """aio's synchronous servicer context, plus what the threaded server's context has and it lacks."""

    def __init__(self, context: Any) -> None:
        self._context = context
        self._code: grpc.StatusCode | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def code(self) -> grpc.StatusCode | None:
        """The code set or aborted with, else None."""
        return self._code

    def set_code(self, code: grpc.StatusCode) -> None:
        """Set the status code, remembering it for :meth:`code`."""
        self._code = code
        self._context.set_code(code)

    def time_remaining(self) -> float:
        """Seconds until the deadline (infinite without one, as the threaded server says)."""
        remaining = self._context.time_remaining()
        return math.inf if remaining is None else float(remaining)

    def is_active(self) -> bool:
        """Approximated: live until the deadline (aio's synchronous context cannot see a cancel)."""
        return self.time_remaining() > 0

    def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> None:
        """End the call with ``code``."""
        self._code = code
        self._context.abort(code, details, trailing_metadata)

    def abort_with_status(self, status: grpc.Status) -> None:
        """End the call with ``status`` (code, details and trailers)."""
        self.abort(status.code, status.details, status.trailing_metadata)


if __name__ == "__main__":
    sys.exit(main())
