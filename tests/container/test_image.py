"""The docker/Dockerfile image, run as a container: health, Evaluate, a policy reload, a decision query."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from fairpath.v1 import (
    decision_service_pb2,
    decision_service_pb2_grpc,
    policy_service_pb2,
    policy_service_pb2_grpc,
)
from fairpath_client import FairpathClient

from tests.container.conftest import tar_of, unavailable
from tests.support.policy_dirs import NAME as MINI
from tests.support.policy_dirs import write_version

pytestmark = pytest.mark.container

GUIDE = "nhs-just-culture-guide"
SERVICE_PORT = 50051
HEALTH_PORT = 50052


@pytest.fixture(scope="module")
def container(image: str) -> Iterator[object]:
    """Start the image and wait until its own HEALTHCHECK reports healthy."""
    from docker.errors import DockerException  # noqa: PLC0415
    from testcontainers.core.container import DockerContainer  # noqa: PLC0415
    from testcontainers.core.wait_strategies import HealthcheckWaitStrategy  # noqa: PLC0415

    running = (
        DockerContainer(image)
        .with_exposed_ports(SERVICE_PORT, HEALTH_PORT)
        .waiting_for(HealthcheckWaitStrategy().with_startup_timeout(120))
    )
    try:
        running.start()
    except DockerException as error:  # e.g. the Ryuk reaper image cannot be pulled
        unavailable(f"cannot start the container: {error}")
    try:
        yield running
    finally:
        running.stop()


def _target(container: object, port: int) -> str:
    host = container.get_container_host_ip()  # type: ignore[attr-defined]
    return f"{host}:{container.get_exposed_port(port)}"  # type: ignore[attr-defined]


def test_container_reports_serving_on_both_ports(container: object) -> None:
    """The service port and the plaintext health port both answer SERVING."""
    for port in (SERVICE_PORT, HEALTH_PORT):
        with FairpathClient(_target(container, port), timeout=10) as client:
            assert client.health() == "SERVING"


def test_container_evaluates_and_records_the_decision(container: object) -> None:
    """Evaluate returns a decision, and the decision trail (SQLite in the image's volume) finds it by id."""
    target = _target(container, SERVICE_PORT)
    with FairpathClient(target, timeout=10) as client:
        decision = client.evaluate(GUIDE, {"is_patient_safety_incident": "NO"})
    assert decision.decision_id
    with grpc.insecure_channel(target) as channel:
        stub = decision_service_pb2_grpc.DecisionServiceStub(channel)
        record = stub.GetDecision(
            decision_service_pb2.GetDecisionRequest(decision_id=decision.decision_id), timeout=10
        ).record
        assert record.decision.decision_id == decision.decision_id
        listed = stub.ListDecisions(decision_service_pb2.ListDecisionsRequest(), timeout=10).records
        assert decision.decision_id in {item.decision.decision_id for item in listed}


def test_container_reloads_a_policy_added_to_its_directory(container: object, tmp_path: Path) -> None:
    """A draft version copied into /app/policies serves after PolicyService.Reload, without a restart."""
    write_version(tmp_path, "1.0.0", status="draft")
    folder = tmp_path / MINI
    files = {f"{MINI}/{path.name}": path.read_text(encoding="utf-8") for path in sorted(folder.iterdir())}
    wrapped = container.get_wrapped_container()  # type: ignore[attr-defined]
    assert wrapped.put_archive("/app/policies", tar_of(files))
    with grpc.insecure_channel(_target(container, SERVICE_PORT)) as channel:
        stub = policy_service_pb2_grpc.PolicyServiceStub(channel)
        result = stub.Reload(policy_service_pb2.ReloadRequest(), timeout=60).result
        assert result.ok, result
        listed = stub.ListPolicies(policy_service_pb2.ListPoliciesRequest(), timeout=10).policies
    assert (MINI, "1.0.0") in {(policy.name, policy.version) for policy in listed}


def test_container_runs_as_a_non_root_user(container: object) -> None:
    """The service process runs as uid 10001, not root."""
    result = container.exec(["id", "-u"])  # type: ignore[attr-defined]
    assert result.output.decode().strip() == "10001"
