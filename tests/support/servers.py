"""Start a real fairpath server on 127.0.0.1 (OS-chosen port) with any settings, for one test or module."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from fairpath.api.server import Running, build_server
from fairpath.config import Config
from fairpath.evaluation import Evaluator


@contextmanager
def serving(evaluator: Evaluator, **settings: Any) -> Iterator[Running]:
    """Build, start and finally stop a server whose config is the defaults plus ``settings``.

    Decisions go to the session's store (FAIRPATH_STORE, set by tests/conftest.py) unless
    ``settings`` names another.
    """
    settings.setdefault("store", os.environ["FAIRPATH_STORE"])
    running = build_server(Config(host="127.0.0.1", port=0, **settings), evaluator)
    running.start()
    try:
        yield running
    finally:
        running.stop(None).wait(5)
        if running.store is not None:
            running.store.close()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (for settings that cannot take 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Hold:
    """A test RPC, ``/fairpath.test.Slow/Hold``, occupying a server thread and an RPC slot until released."""

    METHOD = "/fairpath.test.Slow/Hold"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)

    def handler(self) -> grpc.GenericRpcHandler:
        """Return the handler to add to a server (``running.server.add_generic_rpc_handlers``)."""

        def hold(request: bytes, context: grpc.ServicerContext) -> bytes:
            self.entered.release()
            self.release.wait(10)
            return b"released"

        return grpc.method_handlers_generic_handler(
            "fairpath.test.Slow", {"Hold": grpc.unary_unary_rpc_method_handler(hold)}
        )

    def occupy(self, channel: grpc.Channel, count: int) -> list[grpc.Future]:
        """Start ``count`` holding calls and return once each runs in a server thread."""
        call = channel.unary_unary(self.METHOD)
        futures = [call.future(b"", timeout=15) for _ in range(count)]
        for _ in range(count):
            assert self.entered.acquire(timeout=5), "a holding call never started"
        return futures
