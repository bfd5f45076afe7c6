"""docker/compose.yaml: fairpath with PostgreSQL as its decision store, up with `docker compose up --wait`."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from fairpath_client import FairpathClient

from tests.conftest import GUIDE, ROOT
from tests.container.conftest import LOCALHOST, Tokens, unavailable

# The first test of a session builds the image; a cold build (durable-rules compiles) can take
# minutes on two busy cores, more than the suite's 300 s per test.
pytestmark = [pytest.mark.container, pytest.mark.timeout(900)]

FACTS = {"is_patient_safety_incident": "NO"}


@pytest.fixture(scope="module")
def stack(docker_client: Any, image: str, build_args: dict[str, str], tokens: Tokens) -> Iterator[Any]:
    """`docker compose up --build --wait` with fresh tokens and password, as its own project; `down -v` after."""
    from testcontainers.compose import DockerCompose  # noqa: PLC0415

    with pytest.MonkeyPatch.context() as patch:
        # Its own project name: never the `fairpath` stack (and volume) someone may run here.
        patch.setenv("COMPOSE_PROJECT_NAME", f"fairpath-test-{secrets.token_hex(4)}")
        # A free port on loopback, so the test never collides with a stack already on 50051.
        patch.setenv("FAIRPATH_PUBLISH", f"{LOCALHOST}:0")
        patch.setenv("FAIRPATH_AUTH_FILE", str(tokens.config))
        patch.setenv("FAIRPATH_DB_PASSWORD", secrets.token_urlsafe(16))
        # Compose would build with BuildKit, whose cache is not the classic builder's that built
        # `image`: with the same builder and build arguments, `up --build` reuses every layer.
        patch.setenv("DOCKER_BUILDKIT", "0")
        compose = DockerCompose(ROOT / "docker", compose_file_name="compose.yaml", build=True, wait=True)
        try:
            try:
                compose.start()
            except subprocess.CalledProcessError as error:
                unavailable(f"`docker compose up` failed: {error.stderr.decode(errors='replace')[-4000:]}")
            yield compose
        finally:
            compose.stop()


def target(stack: Any) -> str:
    """``127.0.0.1:<port>`` of fairpath's published port (which a restart may change)."""
    host, port = stack.get_service_host_and_port("fairpath", 50051)
    assert host == LOCALHOST
    return f"{LOCALHOST}:{port}"


def psql(stack: Any, query: str) -> list[str]:
    """Rows of ``query`` run by psql inside the postgres service, one string per row."""
    stdout, stderr, code = stack.exec_in_container(
        ["psql", "--username=fairpath", "--dbname=fairpath", "--tuples-only", "--no-align", f"--command={query}"],
        service_name="postgres",
    )
    assert code == 0, stderr
    return [line for line in stdout.splitlines() if line]


def test_decisions_land_in_postgresql_with_the_chain_intact(stack: Any, tokens: Tokens) -> None:
    """Decisions made through the compose service are rows of PostgreSQL's decisions table, chain intact."""
    with FairpathClient(target(stack), timeout=30, token=tokens.of("evaluator")) as client:
        assert client.health() == "SERVING"
        made = {client.evaluate(GUIDE, FACTS).decision_id for _ in range(3)}
    with FairpathClient(target(stack), timeout=30, token=tokens.of("auditor")) as auditor:
        listed = {record.decision.decision_id for record in auditor.list_decisions(page_size=500).records}
        chain = auditor.verify_chain()
    assert made <= listed
    assert chain.intact, chain.problem
    assert made <= set(psql(stack, "SELECT decision_id FROM decisions"))


def test_decisions_survive_a_restart_of_the_fairpath_container(stack: Any, tokens: Tokens) -> None:
    """After `docker compose restart fairpath`, earlier decisions are still listed and new ones extend the chain."""
    with FairpathClient(target(stack), timeout=30, token=tokens.of("evaluator")) as client:
        before = client.evaluate(GUIDE, FACTS).decision_id
    started = stack.get_container("fairpath").ID
    stack._run_command([*stack.compose_command_property, "restart", "fairpath"])
    stack._run_command([*stack.compose_command_property, "up", "--wait"])  # until healthy again
    assert started == stack.get_container("fairpath").ID  # the same container, restarted
    with FairpathClient(target(stack), timeout=30, token=tokens.of("evaluator")) as client:
        after = client.evaluate(GUIDE, FACTS).decision_id
    with FairpathClient(target(stack), timeout=30, token=tokens.of("auditor")) as auditor:
        listed = {record.decision.decision_id for record in auditor.list_decisions(page_size=500).records}
        chain = auditor.verify_chain()
    assert {before, after} <= listed
    assert chain.intact, chain.problem
    assert chain.records_checked == len(psql(stack, "SELECT decision_id FROM decisions"))
