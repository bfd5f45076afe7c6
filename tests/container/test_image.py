"""The docker/Dockerfile image run as a deployer runs it: TLS, roles, non-root, read-only, policies mounted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from fairpath.v1 import policy_service_pb2, policy_service_pb2_grpc
from fairpath_client import FairpathClient, PermissionDeniedError, TlsConfig

from tests.conftest import GUIDE, POLICIES
from tests.container.conftest import (
    LOCALHOST,
    ROLES,
    Tokens,
    copy_readable,
    loopback_ports,
    published_port,
    readable,
)
from tests.support.certs import Pki, make_pki
from tests.support.policy_dirs import NAME as MINI
from tests.support.policy_dirs import write_version

# The first test of a session builds the image; a cold build (durable-rules compiles) can take
# minutes on two busy cores, more than the suite's 300 s per test.
pytestmark = [pytest.mark.container, pytest.mark.timeout(900)]

SERVICE_PORT = 50051
HEALTH_PORT = 50052
SECRETS = "/etc/fairpath/secret"
HEALTHY_WITHIN = 120


@dataclass(frozen=True)
class Running:
    """A started container of the image, what it was given, and where it is reached on 127.0.0.1."""

    container: Any
    policies: Path
    pki: Pki
    tokens: Tokens

    @property
    def service(self) -> str:
        """``127.0.0.1:<port>`` of the TLS service port."""
        return f"{LOCALHOST}:{published_port(self.container, SERVICE_PORT)}"

    @property
    def health(self) -> str:
        """``127.0.0.1:<port>`` of the plaintext health port."""
        return f"{LOCALHOST}:{published_port(self.container, HEALTH_PORT)}"

    def client(self, role: str) -> FairpathClient:
        """A client over TLS (trusting the test CA) with the token of the caller holding ``role``."""
        tls = TlsConfig(ca=str(self.pki.ca.cert))
        return FairpathClient(self.service, timeout=30, tls=tls, token=self.tokens.of(role))


def wait_healthy(container: Any) -> None:
    """Return once Docker reports the image's own HEALTHCHECK healthy; fail with the logs otherwise."""
    deadline = time.monotonic() + HEALTHY_WITHIN
    while True:
        container.reload()
        state = container.attrs["State"]
        if state.get("Health", {}).get("Status") == "healthy":
            return
        if state["Status"] == "exited" or time.monotonic() > deadline:
            logs = container.logs().decode(errors="replace")[-4000:]
            pytest.fail(f"container not healthy ({state['Status']}, {state.get('Health')}):\n{logs}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def running(
    docker_client: Any, image: str, tokens: Tokens, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """Run the image as the Kubernetes Deployment does, with mutual files mounted; wait for healthy."""
    pki = make_pki(tmp_path_factory.mktemp("pki"), ())
    secret = tmp_path_factory.mktemp("secret")
    for source, name in ((pki.server.cert, "tls.crt"), (pki.server.key, "tls.key"), (tokens.config, "auth.yaml")):
        (secret / name).write_bytes(source.read_bytes())
    readable(secret)
    policies = copy_readable(POLICIES, tmp_path_factory.mktemp("mounted") / "policies")
    container = docker_client.containers.run(
        image,
        detach=True,
        read_only=True,
        tmpfs={"/tmp": "size=16m"},
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"],
        environment={
            "FAIRPATH_TLS_CERT": f"{SECRETS}/tls.crt",
            "FAIRPATH_TLS_KEY": f"{SECRETS}/tls.key",
            "FAIRPATH_AUTH_CONFIG": f"{SECRETS}/auth.yaml",
        },
        volumes={
            str(secret): {"bind": SECRETS, "mode": "ro"},
            str(policies): {"bind": "/app/policies", "mode": "ro"},
        },
        ports=loopback_ports(SERVICE_PORT, HEALTH_PORT),
    )
    try:
        wait_healthy(container)
        yield Running(container, policies, pki, tokens)
    finally:
        container.remove(force=True, v=True)


def test_healthcheck_goes_healthy_and_both_ports_answer_serving(running: Running) -> None:
    """The image's HEALTHCHECK reports healthy; the TLS service port and the plaintext health port say SERVING."""
    assert running.container.attrs["State"]["Health"]["Status"] == "healthy"
    with running.client("evaluator") as client:
        assert client.health() == "SERVING"
    with FairpathClient(running.health, timeout=10) as plaintext:
        assert plaintext.health() == "SERVING"


def test_service_runs_as_uid_10001_on_a_read_only_root_filesystem(running: Running) -> None:
    """The server process (pid 1) is uid/gid 10001, the root filesystem is read-only, and it still serves."""
    assert running.container.attrs["HostConfig"]["ReadonlyRootfs"] is True
    status = running.container.exec_run(["cat", "/proc/1/status"]).output.decode()
    ids = {line.split(":")[0]: line.split()[1:] for line in status.splitlines() if line.startswith(("Uid:", "Gid:"))}
    assert ids == {"Uid": ["10001"] * 4, "Gid": ["10001"] * 4}
    written = running.container.exec_run(["sh", "-c", "echo x > /app/probe"])
    assert written.exit_code != 0
    assert b"Read-only file system" in written.output


def test_evaluate_then_read_the_decision_back_through_the_auditor_api(running: Running) -> None:
    """An evaluator's decision is recorded with its caller and read back by an auditor; roles are enforced."""
    with running.client("evaluator") as evaluator:
        decision = evaluator.evaluate(GUIDE, {"is_patient_safety_incident": "NO"})
        with pytest.raises(PermissionDeniedError):
            evaluator.list_decisions()
    evaluator_name = next(name for name, roles in ROLES.items() if roles == ["evaluator"])
    assert decision.caller == f"token:{evaluator_name}"
    with running.client("auditor") as auditor:
        record = auditor.get_decision(decision.decision_id)
        listed = auditor.list_decisions(page_size=500).records
        chain = auditor.verify_chain()
    assert record.decision.decision_id == decision.decision_id
    assert record.decision.pathway == decision.pathway
    assert decision.decision_id in {item.decision.decision_id for item in listed}
    assert chain.intact, chain.problem


def test_reload_serves_a_version_added_to_the_mounted_policies(running: Running, tmp_path: Path) -> None:
    """A draft version written into the mounted directory on the host serves after an author's Reload."""
    write_version(running.policies, "1.0.0", status="draft")
    readable(running.policies / MINI)
    token = running.tokens.of("author")
    credentials = grpc.ssl_channel_credentials(running.pki.ca.cert.read_bytes())
    with grpc.secure_channel(running.service, credentials) as channel:
        stub = policy_service_pb2_grpc.PolicyServiceStub(channel)
        metadata = (("authorization", f"Bearer {token}"),)
        result = stub.Reload(policy_service_pb2.ReloadRequest(), timeout=60, metadata=metadata).result
        assert result.ok, result
    with running.client("author") as author:
        listed = {(policy.name, policy.version) for policy in author.list_policies()}
    assert (MINI, "1.0.0") in listed


def test_image_refuses_to_serve_openly_without_tls_and_roles(docker_client: Any, image: str) -> None:
    """Run with nothing configured, the image exits 2 before serving, saying what is missing and how to allow it."""
    container = docker_client.containers.run(image, detach=True, read_only=True, ports=loopback_ports(SERVICE_PORT))
    try:
        result = container.wait(timeout=60)
        output = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True, v=True)
    assert result["StatusCode"] == 2, output
    assert "refusing to serve on 0.0.0.0" in output
    assert "FAIRPATH_INSECURE=true" in output
