"""Versions, the lock and hot reload over a real gRPC server on 127.0.0.1, with raw stubs.

Each test serves its own copy of the guide's directory (both versions and the
real ``policies.lock``) through :class:`~fairpath.serving.reload.Reloader`, changes
files in that copy, and reloads through ``PolicyService.Reload`` or the
directory watcher.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from fairpath.api.server import Running
from fairpath.app import build_server
from fairpath.config import Config
from fairpath.policy.lock import read_lock
from fairpath.serving.evaluator import Evaluator
from fairpath.serving.reload import Reloader
from fairpath.serving.watch import ReloadDaemon
from fairpath.v1 import (
    evaluation_service_pb2,
    evaluation_service_pb2_grpc,
    policy_service_pb2,
    policy_service_pb2_grpc,
)

from tests.conftest import GUIDE
from tests.support.policy_dirs import add_version, copy_policies, lock
from tests.support.waiting import wait_until

OUT_OF_SCOPE = {"is_patient_safety_incident": "NO"}


@dataclass
class Served:
    """A server over a policy directory copy, and stubs to it."""

    root: Path
    reloader: Reloader
    running: Running
    evaluation: evaluation_service_pb2_grpc.EvaluationServiceStub
    policies: policy_service_pb2_grpc.PolicyServiceStub

    def evaluate(self, version: str = "") -> evaluation_service_pb2.EvaluateResponse:
        request = evaluation_service_pb2.EvaluateRequest(policy=GUIDE, version=version)
        request.facts.update(OUT_OF_SCOPE)
        return self.evaluation.Evaluate(request, timeout=10)

    def reload(self) -> policy_service_pb2.ReloadResult:
        return self.policies.Reload(policy_service_pb2.ReloadRequest(), timeout=30).result

    def status(self) -> policy_service_pb2.GetStatusResponse:
        return self.policies.GetStatus(policy_service_pb2.GetStatusRequest(), timeout=10)

    def digests(self) -> dict[str, str]:
        return {f"{v.name}@{v.version}": v.digest for v in self.status().versions}


@pytest.fixture(name="served")
def _served(tmp_path: Path) -> Iterator[Served]:
    root = copy_policies(tmp_path / "policies", GUIDE)
    evaluator = Evaluator()
    reloader = Reloader(evaluator, root)
    assert reloader.reload("startup").ok
    store = f"sqlite:///{tmp_path / 'decisions.sqlite3'}"  # not ./fairpath.sqlite3
    running = build_server(Config(host="127.0.0.1", port=0, store=store), evaluator, reloader)
    running.start()
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=5)
        yield Served(
            root,
            reloader,
            running,
            evaluation_service_pb2_grpc.EvaluationServiceStub(channel),
            policy_service_pb2_grpc.PolicyServiceStub(channel),
        )
    running.stop(None).wait(5)
    evaluator.close()


def test_two_versions_side_by_side_and_a_pinned_request_gets_the_pinned_one(served: Served) -> None:
    """Unpinned gets the current 1.0.1; pinning 1.0.0 or the 1.1.0 draft gets it; each names its locked digest."""
    locked = read_lock(served.root).digests
    unpinned = served.evaluate().decision.policy
    superseded = served.evaluate("1.0.0").decision.policy
    pinned = served.evaluate("1.1.0").decision.policy
    assert (unpinned.version, unpinned.digest) == ("1.0.1", locked[f"{GUIDE}@1.0.1"])
    assert (superseded.version, superseded.digest) == ("1.0.0", locked[f"{GUIDE}@1.0.0"])
    assert (pinned.version, pinned.digest) == ("1.1.0", locked[f"{GUIDE}@1.1.0"])
    current = {v.version: v.current for v in served.status().versions}
    assert current == {"1.0.0": False, "1.0.1": True, "1.1.0": False}


def test_get_status_reports_versions_digests_and_the_startup_reload(served: Served) -> None:
    """GetStatus lists each version with digest and current flag, and the start-up reload's result."""
    status = served.status()
    assert served.digests() == {key: digest for key, digest in read_lock(served.root).digests.items()
                                if key.startswith(GUIDE)}
    last = status.last_reload
    assert (last.trigger, last.ok) == ("startup", True)
    assert sorted(last.loaded) == [f"{GUIDE}@1.0.0", f"{GUIDE}@1.0.1", f"{GUIDE}@1.1.0"]
    assert last.finished_at.seconds > 0


def test_edited_published_file_is_refused_while_serving_continues(served: Served) -> None:
    """An edit to locked 1.0.0: Reload reports a lock problem, decisions keep the original digest."""
    before = served.evaluate("1.0.0").decision.policy.digest
    path = served.root / GUIDE / "1.0.0.yaml"
    path.write_text(path.read_text() + "# an innocent-looking edit\n")
    result = served.reload()
    assert not result.ok
    (problem,) = result.problems
    assert (problem.check, problem.path, problem.severity) == ("lock", str(path), "error")
    assert before[:12] in problem.message
    assert served.evaluate("1.0.0").decision.policy.digest == before
    assert served.digests()[f"{GUIDE}@1.0.0"] == before
    assert served.status().last_reload.problems[0].check == "lock"


def test_new_version_serves_after_a_reload_rpc_without_restart(served: Served) -> None:
    """A new, locked 1.2.0 dropped into the directory serves after Reload and becomes current."""
    add_version(served.root, GUIDE, "1.0.0", "1.2.0")
    lock(served.root)
    result = served.reload()
    assert (result.ok, list(result.loaded), result.trigger) == (True, [f"{GUIDE}@1.2.0"], "rpc")
    assert served.evaluate().decision.policy.version == "1.2.0"
    assert served.evaluate("1.0.0").decision.policy.version == "1.0.0"
    assert {v.version for v in served.status().versions if v.current} == {"1.2.0"}


def test_broken_file_and_failing_tests_show_in_status_and_disturb_nothing(served: Served) -> None:
    """A file that does not load and a version whose cases fail are refused; serving versions stay."""
    before = served.digests()
    broken = served.root / GUIDE / "2.0.0.yaml"
    broken.write_text("policy: nhs-just-culture-guide\nversion: [unclosed\n")
    add_version(served.root, GUIDE, "1.0.0", "1.3.0")
    cases = served.root / GUIDE / "1.3.0.tests.yaml"
    wrong = cases.read_text().replace("OUT_OF_SCOPE_NOT_PATIENT_SAFETY", "JCG_D_BLAMELESS", 1)
    cases.write_text(wrong)
    lock(served.root)
    result = served.reload()
    assert not result.ok
    checks = {(problem.path, problem.check) for problem in served.status().last_reload.problems}
    assert (str(broken), "load") in checks
    assert (str(cases), "tests") in checks
    assert served.digests() == before
    assert served.evaluate().decision.policy.version == "1.0.1"


def test_the_watcher_serves_a_new_version_without_any_call(served: Served) -> None:
    """With polling on, a new locked version serves on its own; the reload is reported as trigger 'watch'."""
    daemon = ReloadDaemon(served.reloader, 0.05)
    daemon.start()
    try:
        add_version(served.root, GUIDE, "1.0.0", "1.2.0")
        lock(served.root)
        wait_until(lambda: f"{GUIDE}@1.2.0" in served.digests(), 10, "the watcher to load 1.2.0")
    finally:
        daemon.stop()
    last = served.status().last_reload
    assert (last.trigger, last.ok) == ("watch", True)
    assert served.evaluate().decision.policy.version == "1.2.0"


def test_evaluations_in_flight_during_reloads_all_succeed(served: Served) -> None:
    """Clients evaluating 1.0.0, 1.1.0 and the current version while 15 Reloads swap a draft: all OK."""
    stop = threading.Event()
    failures: list[grpc.StatusCode] = []
    answered = [0]

    def client(version: str) -> None:
        while not stop.is_set():
            try:
                served.evaluate(version)
            except grpc.RpcError as error:
                failures.append(error.code())
                return
            answered[0] += 1

    clients = [threading.Thread(target=client, args=(version,)) for version in ("", "1.0.0", "1.1.0", "")]
    for thread in clients:
        thread.start()
    try:
        draft = add_version(served.root, GUIDE, "1.1.0", "1.9.0")
        for round_ in range(15):
            draft.write_text(draft.read_text() + f"# round {round_}\n")  # a draft: unlocked, served anyway
            result = served.reload()
            assert (result.ok, list(result.loaded)) == (True, [f"{GUIDE}@1.9.0"])
    finally:
        stop.set()
        for thread in clients:
            thread.join(timeout=30)
    assert failures == []
    assert answered[0] > 0
    assert served.reloader.evaluator.engine.rulesets == 4  # 1.0.0, 1.0.1, 1.1.0 and the latest 1.9.0 only


def test_reload_on_a_server_without_a_policy_directory_is_failed_precondition(channel: grpc.Channel) -> None:
    """The session server has an evaluator only: Reload says so, GetStatus still lists versions."""
    stub = policy_service_pb2_grpc.PolicyServiceStub(channel)
    with pytest.raises(grpc.RpcError) as raised:
        stub.Reload(policy_service_pb2.ReloadRequest(), timeout=5)
    assert raised.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    status = stub.GetStatus(policy_service_pb2.GetStatusRequest(), timeout=5)
    assert any(v.name == GUIDE and v.current for v in status.versions)
    assert not status.HasField("last_reload")
