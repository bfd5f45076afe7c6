"""The deployment files (Dockerfile, compose, Kubernetes) agree with the code they deploy, without Docker."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from fairpath.config import add_arguments
from fairpath.evaluation import Evaluator
from fairpath.reload import Reloader

from tests.conftest import POLICIES, ROOT

DOCKER = ROOT / "docker"
K8S = DOCKER / "k8s"


def _settings_env_names() -> set[str]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    helps = " ".join(action.help or "" for action in parser._actions)
    return set(re.findall(r"FAIRPATH_[A-Z_]+", helps))


def _deployment() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((K8S / "deployment.yaml").read_text())
    return document


def _container() -> dict[str, Any]:
    container: dict[str, Any] = _deployment()["spec"]["template"]["spec"]["containers"][0]
    return container


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


def test_every_configured_variable_is_a_real_setting() -> None:
    """Each FAIRPATH_* variable set by the Dockerfile, compose or the Deployment is one `serve` reads."""
    known = _settings_env_names()
    used = set(re.findall(r"FAIRPATH_[A-Z_]+", (DOCKER / "Dockerfile").read_text()))
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    used |= set(compose["services"]["fairpath"]["environment"])
    used |= set(_env(_container()))
    assert used - known == set()


def test_dockerfile_pins_python_311_and_keeps_the_compiler_out_of_the_runtime() -> None:
    """Both stages use python:3.11 (durable-rules fails on 3.13); only the build stage installs gcc."""
    text = (DOCKER / "Dockerfile").read_text()
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in text
    build, runtime = text.split("FROM ${PYTHON_IMAGE} AS runtime")
    assert "gcc" in build
    assert "apt-get" not in runtime
    assert "--no-index" in runtime
    assert re.search(r"^USER 10001", runtime, re.MULTILINE)
    assert 'CMD ["python", "-m", "fairpath.healthcheck"]' in runtime
    assert "EXPOSE 50051" in runtime


def test_compose_runs_fairpath_on_a_healthy_postgresql_16() -> None:
    """compose.yaml starts fairpath after PostgreSQL 16 is healthy, with FAIRPATH_STORE pointing at it."""
    services = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]
    assert services["postgres"]["image"].startswith("postgres:16")
    assert "healthcheck" in services["postgres"]
    fairpath = services["fairpath"]
    assert fairpath["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert fairpath["environment"]["FAIRPATH_STORE"].startswith("postgresql://fairpath:")
    assert "@postgres:5432/fairpath" in fairpath["environment"]["FAIRPATH_STORE"]
    assert fairpath["healthcheck"]["test"] == ["CMD", "python", "-m", "fairpath.healthcheck"]


def test_deployment_runs_several_replicas_probed_over_grpc_health() -> None:
    """At least two replicas; startup, readiness and liveness are gRPC probes of the health port."""
    assert _deployment()["spec"]["replicas"] >= 2
    container = _container()
    health_port = int(_env(container)["FAIRPATH_HEALTH_PORT"])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"] == {"port": health_port}


def test_deployment_reads_tls_and_roles_from_the_secret() -> None:
    """The TLS files and auth config come from the Secret's keys, which the example Secret documents."""
    volumes = {volume["name"]: volume for volume in _deployment()["spec"]["template"]["spec"]["volumes"]}
    mounted = {item["key"] for item in volumes["secret"]["secret"]["items"]}
    env = _env(_container())
    example = yaml.safe_load((K8S / "secret.example.yaml").read_text())["stringData"]
    assert {"tls.crt", "tls.key", "client-ca.crt", "auth.yaml"} == mounted
    assert env["FAIRPATH_STORE"]["secretKeyRef"]["key"] == "store-url"
    assert mounted | {"store-url"} == set(example)
    files = ("FAIRPATH_TLS_CERT", "FAIRPATH_TLS_KEY", "FAIRPATH_TLS_CLIENT_CA", "FAIRPATH_AUTH_CONFIG")
    assert all(env[variable].startswith("/etc/fairpath/secret/") for variable in files)


def test_service_is_headless_on_the_grpc_port() -> None:
    """The Service has no cluster IP (clients balance per call over pod IPs) and exposes port 50051."""
    service = yaml.safe_load((K8S / "service.yaml").read_text())
    assert service["spec"]["clusterIP"] == "None"
    assert [port["port"] for port in service["spec"]["ports"]] == [50051]


def test_kustomization_lists_existing_files() -> None:
    """Every resource kustomization.yaml names exists beside it."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert all((K8S / name).is_file() for name in kustomization["resources"])


def test_policies_configmap_serves_every_policy_as_kubelet_mounts_it(tmp_path: Path) -> None:
    """The script's flat keys, laid out as kubelet mounts them (symlinks via ..data), all load and serve."""
    stub = tmp_path / "bin" / "kubectl"
    stub.parent.mkdir()
    stub.write_text('#!/bin/sh\nfor arg in "$@"; do echo "$arg"; done\n')
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{stub.parent}{os.pathsep}{os.environ['PATH']}"}
    script = [str(K8S / "policies-configmap.sh"), str(POLICIES)]
    args = subprocess.run(script, env=env, capture_output=True, text=True, check=True).stdout.split()
    pairs = [arg.removeprefix("--from-file=").split("=", 1) for arg in args if arg.startswith("--from-file=")]
    files = dict(pairs)
    assert all("/" not in key for key in files)

    mount = tmp_path / "policies"
    snapshot = mount / "..2026_01_31_12_00_00.1"
    snapshot.mkdir(parents=True)
    for key, source in files.items():
        (snapshot / key).write_bytes(Path(source).read_bytes())
        (mount / key).symlink_to(f"..data/{key}")
    (mount / "..data").symlink_to(snapshot.name)

    evaluator = Evaluator()
    result = Reloader(evaluator, mount, allow_unlocked=False).reload("startup")
    versions = [p for p in POLICIES.glob("*/*.yaml") if not p.name.endswith(".tests.yaml")]
    expected = {f"{p.parent.name}@{p.stem}" for p in versions}
    assert result.problems == ()
    assert {policy.key for policy in evaluator.registry.all()} == expected


@pytest.mark.parametrize("name", ["compose.yaml", "k8s/deployment.yaml", "k8s/service.yaml", "k8s/pdb.yaml"])
def test_deployment_files_are_valid_yaml(name: str) -> None:
    """Each deployment file parses as one YAML mapping."""
    assert isinstance(yaml.safe_load((DOCKER / name).read_text()), dict)
