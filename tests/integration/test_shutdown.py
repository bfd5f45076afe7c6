"""`fairpath serve` as a real process: start-up, graceful SIGTERM, several workers, broken policies."""

from __future__ import annotations

import contextlib
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
from fairpath.v1 import (
    evaluation_service_pb2,
    evaluation_service_pb2_grpc,
    policy_service_pb2,
    policy_service_pb2_grpc,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.servers import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
GRACE = 5.0
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
# How a stopping server says no to a call it never started: grpc core cancels calls that arrive
# after shutdown began (CANCELLED); once the listener is closed, connecting fails (UNAVAILABLE).
REFUSED = {grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE}


@pytest.fixture(name="start")
def _start() -> Iterator[Callable[..., ServerProcess]]:
    with contextlib.ExitStack() as started:
        yield lambda *args: started.enter_context(ServerProcess(POLICIES, *args, cwd=ROOT))


def _evaluate_request() -> evaluation_service_pb2.EvaluateRequest:
    request = evaluation_service_pb2.EvaluateRequest(policy="nhs-just-culture-guide")
    request.facts.update({"is_patient_safety_incident": "YES", "individual_concern_raised": "NO"})
    return request


def test_sigterm_drains_in_flight_calls_then_exits_zero(start: Callable[..., ServerProcess]) -> None:
    """SIGTERM: health goes NOT_SERVING, accepted calls all finish OK, new ones are refused, exit 0."""
    service = start("--grace-seconds", str(GRACE))
    service.wait_serving()

    outcomes: list[grpc.StatusCode] = []
    with grpc.insecure_channel(service.target) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=30)
        assert next(watch).status == SERVING
        stub = evaluation_service_pb2_grpc.EvaluationServiceStub(channel)
        request = _evaluate_request()

        def client() -> None:
            # Call until refused: the last outcome of every client is the server saying no.
            while True:
                try:
                    stub.Evaluate(request, timeout=5)
                except grpc.RpcError as error:
                    outcomes.append(error.code())
                    return
                outcomes.append(grpc.StatusCode.OK)

        clients = [threading.Thread(target=client) for _ in range(8)]
        for thread in clients:
            thread.start()
        service.wait_until(lambda: outcomes.count(grpc.StatusCode.OK) >= 50, "50 calls answered")
        signalled = time.monotonic()
        service.process.send_signal(signal.SIGTERM)

        assert next(watch).status == NOT_SERVING
        watch.cancel()
        for thread in clients:
            thread.join(timeout=GRACE + 10)
        code = service.wait(timeout=GRACE + 10)
        stopped_after = time.monotonic() - signalled

    assert code == 0
    assert stopped_after < GRACE
    answered = outcomes.count(grpc.StatusCode.OK)
    refused = [outcome for outcome in outcomes if outcome is not grpc.StatusCode.OK]
    assert len(refused) == len(clients)
    assert set(refused) <= REFUSED, refused
    # Every call the server started shows in its access log: all of them finished OK and reached the client.
    served = [e for e in service.events("rpc") if e["method"].endswith("/Evaluate")]
    assert {e["code"] for e in served} == {"OK"}
    assert len(served) == answered
    assert service.events("stopping")
    assert service.events("stopped")


def test_two_workers_share_one_port_and_stop_together(start: Callable[..., ServerProcess]) -> None:
    """--workers 2: two processes answer on one port, and SIGTERM to the parent stops both, exit 0."""
    service = start("--workers", "2", "--grace-seconds", str(GRACE))
    service.wait_until(lambda: len(service.events("serving")) == 2, "two workers serving")
    workers = {event["pid"] for event in service.events("serving")}
    assert len(workers) == 2
    assert service.process.pid not in workers

    calls = 40
    # A private subchannel pool forces a new connection, which SO_REUSEPORT hands to either worker.
    private_pool = [("grpc.use_local_subchannel_pool", 1)]
    for _ in range(calls):
        with grpc.insecure_channel(service.target, options=private_pool) as channel:
            policy_service_pb2_grpc.PolicyServiceStub(channel).ListPolicies(
                policy_service_pb2.ListPoliciesRequest(), timeout=5
            )
    service.wait_until(lambda: len(service.events("rpc")) >= calls, "access log lines")
    assert {event["pid"] for event in service.events("rpc")} == workers

    service.process.send_signal(signal.SIGTERM)
    assert service.wait(timeout=GRACE + 10) == 0
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert service.events("workers_stopped")[0]["exit_code"] == 0


def test_a_broken_policy_file_exits_two_with_one_clear_line(tmp_path: Path) -> None:
    """Nothing loads: a policy_load_failed line naming the file, then no_policy_served, exit 2."""
    broken = tmp_path / "policies" / "broken"
    broken.mkdir(parents=True)
    (broken / "1.0.0.yaml").write_text("policy: [unclosed\n")
    result = subprocess.run(
        [sys.executable, "-m", "fairpath", "serve", "--port", "0", "--policies", str(tmp_path / "policies")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = [json.loads(text) for text in result.stdout.splitlines()]
    (line,) = [line for line in lines if line["event"] == "policy_load_failed"]
    assert line["level"] == "error"
    assert "1.0.0.yaml" in line["error"]
    assert lines[-1]["event"] == "no_policy_served"
    assert "Traceback" not in result.stdout + result.stderr
