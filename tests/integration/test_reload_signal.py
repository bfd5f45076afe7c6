"""`fairpath serve` as a real process: SIGHUP reloads, and start-up survives a broken file."""

from __future__ import annotations

import contextlib
import signal
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

from tests.conftest import GUIDE
from tests.support.policy_dirs import add_version, copy_policies, lock
from tests.support.servers import ServerProcess


@pytest.fixture(name="start")
def _start() -> Iterator[Callable[[Path], ServerProcess]]:
    with contextlib.ExitStack() as started:

        def start(root: Path) -> ServerProcess:
            # Polling off: only SIGHUP reloads. Run in root's parent, so whatever the server writes
            # relative to its working directory stays in tmp_path.
            server = started.enter_context(ServerProcess(root, "--watch-seconds", "0", cwd=root.parent))
            server.wait_until(lambda: bool(server.events("serving")), "serving")
            return server

        yield start


def _versions(target: str) -> dict[str, bool]:
    with grpc.insecure_channel(target) as channel:
        status = policy_service_pb2_grpc.PolicyServiceStub(channel).GetStatus(
            policy_service_pb2.GetStatusRequest(), timeout=5
        )
    return {f"{v.name}@{v.version}": v.current for v in status.versions}


def test_sighup_serves_a_new_version_without_restart(
    tmp_path: Path, start: Callable[[Path], ServerProcess]
) -> None:
    """SIGHUP to a running server loads a new locked version (trigger 'signal'); same pid, exit 0 later."""
    root = copy_policies(tmp_path / "policies", GUIDE)
    server = start(root)
    assert _versions(server.target) == {f"{GUIDE}@1.0.0": False, f"{GUIDE}@1.0.1": True, f"{GUIDE}@1.1.0": False}
    add_version(root, GUIDE, "1.0.0", "1.2.0")
    lock(root)
    server.process.send_signal(signal.SIGHUP)
    server.wait_until(lambda: f"{GUIDE}@1.2.0" in _versions(server.target), "1.2.0 to serve")
    with grpc.insecure_channel(server.target) as channel:
        request = evaluation_service_pb2.EvaluateRequest(policy=GUIDE)
        request.facts.update({"is_patient_safety_incident": "NO"})
        evaluation = evaluation_service_pb2_grpc.EvaluationServiceStub(channel)
        decision = evaluation.Evaluate(request, timeout=5).decision
        last = policy_service_pb2_grpc.PolicyServiceStub(channel).GetStatus(
            policy_service_pb2.GetStatusRequest(), timeout=5
        ).last_reload
    assert decision.policy.version == "1.2.0"
    assert (last.trigger, last.ok) == ("signal", True)
    (reloaded,) = [event for event in server.events("policies_reloaded") if event["trigger"] == "signal"]
    assert reloaded["loaded"] == [f"{GUIDE}@1.2.0"]
    assert server.stop() == 0


def test_startup_with_a_broken_and_an_edited_file_serves_the_rest(
    tmp_path: Path, start: Callable[[Path], ServerProcess]
) -> None:
    """Start-up logs one line per refused file (policy_load_failed, policy_refused) and serves the rest."""
    root = copy_policies(tmp_path / "policies", GUIDE)
    (root / GUIDE / "3.0.0.yaml").write_text("policy: [unclosed\n")
    draft = root / GUIDE / "1.1.0.yaml"
    draft.write_text(draft.read_text() + "# edited after locking\n")
    server = start(root)
    assert _versions(server.target) == {f"{GUIDE}@1.0.0": False, f"{GUIDE}@1.0.1": True}
    (failed,) = server.events("policy_load_failed")
    assert failed["path"].endswith("3.0.0.yaml")
    (refused,) = server.events("policy_refused")
    assert (refused["version"], refused["check"]) == (f"{GUIDE}@1.1.0", "lock")
    assert refused["expected"] != refused["actual"]
    assert len(refused["expected"]) == len(refused["actual"]) == 12
    (startup,) = server.events("policies_reloaded")
    assert (startup["trigger"], startup["ok"], startup["serving"]) == ("startup", False, 2)
    assert server.stop() == 0
