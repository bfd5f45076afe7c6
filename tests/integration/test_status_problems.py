"""GetStatus and Reload over a real gRPC server: a directory of many broken files gives a bounded answer."""

from __future__ import annotations

from pathlib import Path

import grpc
from fairpath.api.policy_convert import MAX_LISTED_PROBLEMS
from fairpath.app import build_server
from fairpath.config import Config
from fairpath.serving.evaluator import Evaluator
from fairpath.serving.reload import Reloader
from fairpath.v1 import policy_service_pb2, policy_service_pb2_grpc

from tests.support.policy_dirs import lock, write_version

BROKEN = MAX_LISTED_PROBLEMS + 20


def test_status_lists_at_most_the_most_problems_and_counts_the_rest(tmp_path: Path) -> None:
    """120 unparsable files beside one good version: GetStatus and Reload list 100 problems, then 'and 20 more'."""
    root = tmp_path / "policies"
    write_version(root, "1.0.0")
    lock(root)
    for index in range(BROKEN):
        (root / "broken" / f"{index:03}.yaml").parent.mkdir(exist_ok=True)
        (root / "broken" / f"{index:03}.yaml").write_text("policy: [\n", encoding="utf-8")
    evaluator = Evaluator()
    reloader = Reloader(evaluator, root)
    assert not reloader.reload("startup").ok
    running = build_server(Config(host="127.0.0.1", port=0, store=f"sqlite:///{tmp_path / 'd.sqlite3'}"),
                           evaluator, reloader)
    running.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = policy_service_pb2_grpc.PolicyServiceStub(channel)
            status = stub.GetStatus(policy_service_pb2.GetStatusRequest(), timeout=10)
            reloaded = stub.Reload(policy_service_pb2.ReloadRequest(), timeout=60).result
    finally:
        running.stop(None).wait(5)
        evaluator.close()
    assert [v.version for v in status.versions] == ["1.0.0"]
    for result in (status.last_reload, reloaded):
        problems = list(result.problems)
        assert len(problems) == MAX_LISTED_PROBLEMS + 1
        assert problems[0].path == str(root / "broken" / "000.yaml")
        assert all(p.check == "load" for p in problems[:-1])
        assert (problems[-1].path, problems[-1].severity) == ("", "error")
        assert problems[-1].message == "and 20 more problem(s) not listed (20 error(s), 0 warning(s))"
