"""Run ``fairpath serve`` for a benchmark: a free port, wait until SERVING, SIGTERM afterwards.

Shared by the benchmarks that measure over gRPC (``bench_evaluate.py``, ``bench_recording.py``);
imported by path, as they are scripts, not a package.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """Return a loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(*args: str, timeout: float = 60) -> Iterator[str]:
    """Run ``fairpath serve --port <free> --log-level warning ARGS...`` from the repo root; yield its target.

    Yields once the standard health check says SERVING; stops the server with SIGTERM (as an
    orchestrator would) when the block ends.

    Raises:
        RuntimeError: The server was not SERVING within ``timeout`` seconds.

    """
    port = free_port()
    # Quiet: the log would compete with the load for the machine, and nothing reads it.
    process = subprocess.Popen(
        [sys.executable, "-m", "fairpath", "serve", "--port", str(port), "--log-level", "warning", *args],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    target = f"127.0.0.1:{port}"
    try:
        _wait_serving(target, timeout)
    except BaseException:
        process.kill()
        process.wait()
        raise
    try:
        yield target
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def _wait_serving(target: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest()
        while time.monotonic() < deadline:
            try:
                if stub.Check(request, timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                time.sleep(0.1)
    raise RuntimeError("server did not become SERVING")
