"""Start a real fairpath server on 127.0.0.1 with any settings, for one test or module.

:func:`serving` runs it in this process; :class:`ServerProcess` runs ``fairpath serve``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
import pytest
from fairpath.api.server import Running
from fairpath.app import build_server
from fairpath.config import Config
from fairpath.serving.evaluator import Evaluator
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.waiting import wait_until


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


class ServerProcess:
    """A ``python -m fairpath serve --policies P --port PORT ARGS...`` process, its JSON log collected.

    The port is a free one (:func:`free_port`), named by :attr:`target`. Use it as a context
    manager: leaving the block kills the process if it is still running.
    """

    def __init__(self, policies: Path, *args: str, cwd: Path) -> None:
        self.target = f"127.0.0.1:{free_port()}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fairpath", "serve", "--policies", str(policies),
             "--port", self.target.rsplit(":", 1)[1], *args],
            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        # Read as it comes: a full pipe would block the server, and tests look at lines while it runs.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def events(self, name: str) -> list[dict[str, Any]]:
        """Return the JSON log lines so far whose ``event`` is ``name``."""
        found = []
        for line in list(self.lines):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == name:
                found.append(event)
        return found

    def wait_until(self, predicate: Callable[[], bool], message: str, timeout: float = 30) -> None:
        """Wait for ``predicate``; fail the test, with the server's log, on timeout or if the server exits."""

        def alive_and_true() -> bool:
            if self.process.poll() is not None:
                code, log = self.process.returncode, "".join(self.lines)
                pytest.fail(f"server exited ({code}) before {message}:\n{log}")
            return predicate()

        wait_until(alive_and_true, timeout, message, details=lambda: "".join(self.lines))

    def wait_serving(self) -> None:
        """Wait until the standard health check says SERVING."""
        with grpc.insecure_channel(self.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)

            def serving() -> bool:
                try:
                    request = health_pb2.HealthCheckRequest()
                    return health.Check(request, timeout=1).status == health_pb2.HealthCheckResponse.SERVING
                except grpc.RpcError:
                    return False

            self.wait_until(serving, "health SERVING")

    def wait(self, timeout: float = 30) -> int:
        """Wait for the process to exit by itself (after a signal the test sent); return its exit code."""
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def stop(self, timeout: float = 30) -> int:
        """Send SIGTERM if it still runs, then wait for it; return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def close(self) -> None:
        """Kill the process if it still runs and release its pipe."""
        if self.process.poll() is None:
            self.process.kill()
        self.wait()
        assert self.process.stdout is not None
        self.process.stdout.close()


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
