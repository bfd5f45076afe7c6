"""`fairpath serve` processes and the trail: killed under load, two at once, a store not there."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from fairpath.audit import DecisionFilter, open_store
from fairpath.v1 import evaluation_service_pb2, evaluation_service_pb2_grpc
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration.audit.conftest import GUIDE, INCOMPLETE, SUBSTANCE
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[3]


def _start(port: int, store_url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fairpath",
            "serve",
            "--port",
            str(port),
            "--store",
            store_url,
            "--policies",
            str(ROOT / "policies"),
            "--watch-seconds",
            "0",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _wait_serving(process: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 60
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode}: {process.communicate()[0]}")
            try:
                if (
                    health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                    == health_pb2.HealthCheckResponse.SERVING
                ):
                    return
            except grpc.RpcError:
                time.sleep(0.1)
    pytest.fail("server never became SERVING")


@pytest.fixture(name="server")
def _server() -> Iterator[Callable[[str], tuple[int, subprocess.Popen[str]]]]:
    """Start `fairpath serve` processes on free ports; each is killed (if still running) after the test."""
    processes: list[subprocess.Popen[str]] = []

    def start(store_url: str) -> tuple[int, subprocess.Popen[str]]:
        port = free_port()
        process = _start(port, store_url)
        processes.append(process)
        _wait_serving(process, port)
        return port, process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def _hammer(
    ports: list[int], received: set[str], stop: threading.Event, threads: int = 4
) -> list[threading.Thread]:
    """Start ``threads`` callers per port recording every decision id they get back, until ``stop``."""
    requests = []
    for facts in (SUBSTANCE, INCOMPLETE):
        struct = struct_pb2.Struct()
        struct.update(facts)
        requests.append(evaluation_service_pb2.EvaluateRequest(policy=GUIDE, facts=struct))
    lock = threading.Lock()

    def call(port: int) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            evaluate = evaluation_service_pb2_grpc.EvaluationServiceStub(channel).Evaluate
            n = 0
            while not stop.is_set():
                try:
                    decision_id = evaluate(requests[n % 2], timeout=10).decision.decision_id
                except grpc.RpcError:
                    return  # the server is gone: what was received before is what counts
                with lock:
                    received.add(decision_id)
                n += 1

    workers = [threading.Thread(target=call, args=(port,)) for port in ports for _ in range(threads)]
    for worker in workers:
        worker.start()
    return workers


def test_a_server_killed_under_load_has_a_record_for_every_decision_it_returned(
    store_url: str, server: Callable[[str], tuple[int, subprocess.Popen[str]]]
) -> None:
    """SIGKILL mid-load: every decision a client received is in the trail, and the chain is intact."""
    port, process = server(store_url)
    received: set[str] = set()
    stop = threading.Event()
    workers = _hammer([port], received, stop, threads=8)
    time.sleep(1.5)

    process.send_signal(signal.SIGKILL)
    for worker in workers:
        worker.join(timeout=30)
    stop.set()

    store = open_store(store_url)
    try:
        recorded = {s.decision.decision_id for s in store.iter_decisions(DecisionFilter())}
        report = store.verify_chain()
    finally:
        store.close()
    assert len(received) > 50
    assert received <= recorded
    assert report.intact, report.problem


def test_two_server_processes_share_one_trail_and_one_chain(
    store_url: str, server: Callable[[str], tuple[int, subprocess.Popen[str]]]
) -> None:
    """Two `fairpath serve` processes on one store interleave appends: all recorded, one intact chain."""
    ports = [server(store_url)[0], server(store_url)[0]]
    received: set[str] = set()
    stop = threading.Event()
    workers = _hammer(ports, received, stop)
    time.sleep(2.0)
    stop.set()
    for worker in workers:
        worker.join(timeout=30)

    store = open_store(store_url)
    try:
        recorded = [s.decision.decision_id for s in store.iter_decisions(DecisionFilter())]
        report = store.verify_chain()
    finally:
        store.close()
    assert len(received) > 50
    assert sorted(recorded) == sorted(received)
    assert report.intact, report.problem
    assert report.records_checked == len(received)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(
            "postgresql://postgres@127.0.0.1:1/test", marks=pytest.mark.postgres, id="postgres-closed-port"
        ),
        pytest.param("sqlite:////nonexistent-directory/decisions.sqlite3", id="sqlite-missing-directory"),
    ],
)
def test_serve_refuses_to_start_without_its_store(url: str) -> None:
    """No store, no service: `fairpath serve` logs store_unavailable (without the URL) and exits 1."""
    process = _start(free_port(), url)
    output, _ = process.communicate(timeout=60)

    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    failure = [e for e in events if e.get("event") == "store_unavailable"]
    assert process.returncode == 1
    assert failure
    assert failure[0]["level"] == "error"
