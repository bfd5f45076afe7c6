"""The health port through a server's life: SERVING, NOT_SERVING while draining, then gone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from fairpath.app import build_server
from fairpath.config import Config
from fairpath.serving.evaluator import Evaluator
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import POLICIES, ROOT
from tests.support.servers import Hold, free_port

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _status(port: int) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
    return int(response.status)


def test_health_port_is_not_serving_while_draining_then_closes(evaluator: Evaluator, tmp_path: Path) -> None:
    """During a graceful stop probes hear NOT_SERVING on the health port; once drained, it stops too."""
    store = f"sqlite:///{tmp_path / 'decisions.sqlite3'}"
    running = build_server(Config(host="127.0.0.1", port=0, health_port=free_port(), store=store), evaluator)
    hold = Hold()
    running.server.add_generic_rpc_handlers((hold.handler(),))
    running.start()
    try:
        assert _status(running.health_port) == health_pb2.HealthCheckResponse.SERVING
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            in_flight = hold.occupy(channel, 1)
            stopped = running.stop(grace=10)
            assert _status(running.health_port) == NOT_SERVING  # the service still drains its call
            assert not stopped.is_set()
            hold.release.set()
            assert in_flight[0].result() == b"released"  # the call in flight finished within the grace
            assert stopped.wait(10)
        with pytest.raises(grpc.RpcError):  # the health port closed with the server
            _status(running.health_port)
    finally:
        hold.release.set()
        running.stop(None).wait(5)
        if running.store is not None:
            running.store.close()


def test_serve_exits_1_naming_an_unreadable_tls_file(tmp_path: Path) -> None:
    """`fairpath serve` with a missing certificate logs credentials_invalid naming the flag and exits 1."""
    missing = tmp_path / "missing.pem"
    result = subprocess.run(
        [sys.executable, "-m", "fairpath", "serve", "--port", "0", "--policies", str(POLICIES),
         "--store", f"sqlite:///{tmp_path / 'decisions.sqlite3'}",
         "--tls-cert", str(missing), "--tls-key", str(missing)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "credentials_invalid" in result.stdout
    assert "--tls-key" in result.stdout or "--tls-cert" in result.stdout
