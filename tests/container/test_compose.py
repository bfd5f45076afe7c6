"""docker/compose.yaml: fairpath with PostgreSQL 16 as its decision store, up with one command."""

from __future__ import annotations

import os
from collections.abc import Iterator

import grpc
import pytest
from fairpath.v1 import decision_service_pb2, decision_service_pb2_grpc
from fairpath_client import FairpathClient

from tests.conftest import ROOT
from tests.container.conftest import unavailable

pytestmark = pytest.mark.container

GUIDE = "nhs-just-culture-guide"


@pytest.fixture(scope="module")
def stack(docker_engine: None) -> Iterator[object]:
    """Run `docker compose up --build --wait` on docker/compose.yaml; `down -v` afterwards."""
    from testcontainers.compose import DockerCompose  # noqa: PLC0415

    # A free host port, so the test never collides with a stack someone already runs on 50051.
    previous = os.environ.get("FAIRPATH_PUBLISH")
    os.environ["FAIRPATH_PUBLISH"] = "127.0.0.1:0"
    compose = DockerCompose(ROOT / "docker", compose_file_name="compose.yaml", build=True, wait=True)
    try:
        try:
            compose.start()
        except Exception as error:
            compose.stop()
            unavailable(f"`docker compose up` failed: {error}")
        yield compose
        compose.stop()
    finally:
        if previous is None:
            os.environ.pop("FAIRPATH_PUBLISH", None)
        else:
            os.environ["FAIRPATH_PUBLISH"] = previous


def _target(stack: object) -> str:
    host, port = stack.get_service_host_and_port("fairpath", 50051)  # type: ignore[attr-defined]
    return f"{host or '127.0.0.1'}:{port}"


def test_stack_serves_and_records_decisions_in_postgresql(stack: object) -> None:
    """Decisions made by the compose service land in PostgreSQL, and the trail lists them, chain intact."""
    target = _target(stack)
    with FairpathClient(target, timeout=10) as client:
        assert client.health() == "SERVING"
        made = [client.evaluate(GUIDE, {"is_patient_safety_incident": "NO"}).decision_id for _ in range(3)]
    with grpc.insecure_channel(target) as channel:
        stub = decision_service_pb2_grpc.DecisionServiceStub(channel)
        listed = stub.ListDecisions(decision_service_pb2.ListDecisionsRequest(page_size=500), timeout=10)
        assert set(made) <= {record.decision.decision_id for record in listed.records}
        chain = stub.VerifyChain(decision_service_pb2.VerifyChainRequest(), timeout=30)
        assert chain.intact, chain.problem
    rows = stack.exec_in_container(  # type: ignore[attr-defined]
        ["psql", "--username=fairpath", "--dbname=fairpath", "--tuples-only", "--no-align",
         "--command=SELECT count(*) FROM decisions"],
        service_name="postgres",
    )
    assert int(rows[0].strip()) >= len(made)
