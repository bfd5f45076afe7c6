"""The deployment files (Dockerfile, compose, Kubernetes) agree with the code they deploy, without Docker."""

from __future__ import annotations

import argparse
import copy
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from fairpath.api.auth import AuthPolicy, Role
from fairpath.config import add_arguments
from fairpath.policy.registry import policy_files
from fairpath.serving.evaluator import Evaluator
from fairpath.serving.reload import Reloader

from tests.conftest import POLICIES, ROOT
from tests.support.ci import skip_outside_ci

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


def test_dockerfile_pins_python_311_and_keeps_build_tools_and_the_build_ca_out_of_the_runtime() -> None:
    """Both stages use python:3.11 (durable-rules fails on 3.13); gcc, pip and BUILD_CA_PEM stay in the build stage."""
    text = (DOCKER / "Dockerfile").read_text()
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in text
    build, runtime = text.split("FROM ${PYTHON_IMAGE} AS runtime")
    assert "gcc" in build
    assert "ARG BUILD_CA_PEM" in build
    assert "PIP_CERT" in build
    instructions = [line for line in runtime.splitlines() if line and not line.startswith("#")]
    assert not [line for line in instructions if re.search(r"apt-get|pip |BUILD_CA|PIP_CERT", line)]
    assert [line for line in instructions if "--from=" in line] == [
        "COPY --from=build /opt/fairpath /opt/fairpath",
        "COPY --from=build /app/policies /app/policies",
    ]
    assert re.search(r"^USER 10001", runtime, re.MULTILINE)
    assert 'CMD ["python", "-m", "fairpath.healthcheck"]' in runtime
    assert "EXPOSE 50051" in runtime


def test_compose_runs_fairpath_on_a_healthy_postgresql_of_the_base_distribution() -> None:
    """compose.yaml starts fairpath after PostgreSQL is healthy: the major version Debian bookworm ships (15)."""
    services = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]
    assert services["postgres"]["image"] == "postgres:15-bookworm"
    # The stand-in docker/base-images.sh builds under that name installs the same major version.
    assert "install --yes --no-install-recommends postgresql-15" in (DOCKER / "base/postgres.Dockerfile").read_text()
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


def test_base_images_script_builds_the_names_the_dockerfile_and_compose_use() -> None:
    """docker/base-images.sh --list names the Debian base, then exactly the Dockerfile's and compose's base images."""
    listed = subprocess.run(
        [str(DOCKER / "base-images.sh"), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]
    python_image = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", (DOCKER / "Dockerfile").read_text(), re.MULTILINE)
    assert python_image is not None
    assert listed == ["fairpath-debian:bookworm", python_image[1], compose["postgres"]["image"]]
    # Each stand-in is built FROM that Debian base, whose suite is the one the image names carry.
    for name in ("python", "postgres"):
        assert "ARG BASE=fairpath-debian:bookworm" in (DOCKER / f"base/{name}.Dockerfile").read_text()
    assert all(image.endswith("-bookworm") for image in listed[1:])


def test_compose_runs_fairpath_read_only_with_roles_and_the_documented_dev_token() -> None:
    """Compose's fairpath checks tokens (auth.dev.yaml's: "fairpath-dev-only"), read-only, on loopback by default."""
    fairpath = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]["fairpath"]
    assert fairpath["environment"]["FAIRPATH_AUTH_CONFIG"] == "/etc/fairpath/auth.yaml"
    assert fairpath["volumes"] == ["${FAIRPATH_AUTH_FILE:-./auth.dev.yaml}:/etc/fairpath/auth.yaml:ro"]
    assert fairpath["read_only"] is True
    assert fairpath["cap_drop"] == ["ALL"]
    assert fairpath["ports"] == ["${FAIRPATH_PUBLISH:-127.0.0.1:50051}:50051"]
    policy = AuthPolicy.load(DOCKER / "auth.dev.yaml")
    caller = policy.identify({"authorization": "Bearer fairpath-dev-only"}, {})
    assert caller.name == "token:dev"
    assert caller.roles == frozenset(Role)


def _rendered_manifests(image: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        skip_outside_ci("kubectl (which renders the kustomization) is not installed", "install kubectl")
    rendered = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, check=True).stdout
    # What `envsubst '$FAIRPATH_IMAGE'` does in the README's apply command.
    assert rendered.count("${FAIRPATH_IMAGE}") == 1
    assert "${" not in rendered.replace("${FAIRPATH_IMAGE}", "")
    return [document for document in yaml.safe_load_all(rendered.replace("${FAIRPATH_IMAGE}", image)) if document]


# The oldest and the newest Kubernetes whose schemas kubernetes-validate ships (gRPC probes need 1.24+).
KUBERNETES_VERSIONS = [kubernetes_validate.utils.all_versions()[0], kubernetes_validate.utils.latest_version()]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_rendered_kustomization_is_valid_against_the_kubernetes_schemas(version: str) -> None:
    """`kubectl kustomize docker/k8s`, image filled in, passes the Kubernetes schemas strictly (no unknown field)."""
    manifests = _rendered_manifests("registry.example.org/fairpath:0.1.0")
    assert sorted(document["kind"] for document in manifests) == [
        "Deployment", "Namespace", "PodDisruptionBudget", "Service"
    ]
    for document in manifests:
        kubernetes_validate.validate(document, version, strict=True)
    (deployment,) = [document for document in manifests if document["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.org/fairpath:0.1.0"
    # The validator is not a formality: the same Deployment with a misspelt field is rejected.
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"grpc": {"port": 50052}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


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
    versions = policy_files(POLICIES)
    expected = {f"{p.parent.name}@{p.stem}" for p in versions}
    assert result.problems == ()
    assert {policy.key for policy in evaluator.registry.all()} == expected


@pytest.mark.parametrize("name", ["compose.yaml", "k8s/deployment.yaml", "k8s/service.yaml", "k8s/pdb.yaml"])
def test_deployment_files_are_valid_yaml(name: str) -> None:
    """Each deployment file parses as one YAML mapping."""
    assert isinstance(yaml.safe_load((DOCKER / name).read_text()), dict)
