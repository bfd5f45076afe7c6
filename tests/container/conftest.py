"""Docker for the container tests: one engine, one image build per session, containers on 127.0.0.1.

Every test here is marked ``container`` (``pytest -m "not container"`` leaves them out).

* No Docker engine answering ``ping`` (a ``docker`` CLI on PATH proves nothing): on a developer's
  machine the tests skip, saying why; under ``CI=true`` they fail, because CI must run them
  (``.ci/run`` starts an engine when none answers).
* An engine that cannot build the image or start the stack (e.g. no base image and no registry:
  run ``docker/base-images.sh``) -> the tests fail; set ``FAIRPATH_CONTAINER_TESTS=optional``
  to skip them there instead (never under ``CI=true``).

Containers are reached only through ports published on 127.0.0.1, never at their bridge address.
"""

from __future__ import annotations

import gc
import os
import re
import secrets
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml
from fairpath.api.auth import hash_token

from tests.conftest import ROOT
from tests.support.ci import in_ci, skip_outside_ci

IMAGE_TAG = "fairpath:container-test"
BUILD_STAGE_TAG = "fairpath:container-test-build"
OPTIONAL_ENV = "FAIRPATH_CONTAINER_TESTS"
# The build stage's extra CA certificates: the same variable docker/compose.yaml passes to the build.
BUILD_CA_ENV = "FAIRPATH_BUILD_CA_PEM"
# CAs this host trusts beyond Debian's (update-ca-certificates reads them from here): a proxy that
# intercepts TLS shows up as one, and the image build must trust it to reach PyPI.
HOST_EXTRA_CAS = Path("/usr/local/share/ca-certificates")
# A self-signed CA certificate (its key thrown away) added to every test build's BUILD_CA_PEM, so
# the test that the build CA stays out of the runtime image has something to look for everywhere.
MARKER_CA = Path(__file__).with_name("build-ca-marker.pem")
LOCALHOST = "127.0.0.1"
# Builds compile durable-rules without printing anything for a while: wait for the daemon's answers.
DOCKER_TIMEOUT = 900
# Token name -> roles, for the auth configs the containers are given (tokens are made per session).
ROLES = {"case-system": ["evaluator"], "policy-team": ["author"], "review-board": ["auditor"]}
_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----\n.*?-----END CERTIFICATE-----", re.DOTALL)


def unavailable(reason: str) -> NoReturn:
    """The engine cannot do what a test needs: fail, or skip where allowed (never under CI=true)."""
    if os.environ.get(OPTIONAL_ENV, "").strip().lower() == "optional" and not in_ci():
        pytest.skip(f"{reason} ({OPTIONAL_ENV}=optional)")
    pytest.fail(f"{reason} (set {OPTIONAL_ENV}=optional to skip instead)", pytrace=False)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A Docker SDK client of an engine that answers a ping; skip (or fail in CI) when none does."""
    from docker.errors import DockerException  # noqa: PLC0415
    from testcontainers.core.config import testcontainers_config  # noqa: PLC0415

    import docker  # noqa: PLC0415 - only the container tier needs the Docker SDK

    # testcontainers would otherwise start its reaper (Ryuk) from an image it must pull; the
    # fixtures here remove every container, volume and network they make themselves.
    testcontainers_config.ryuk_disabled = True
    # The SDK leaks the socket of a failed probe; collect it here, where its ResourceWarning is
    # expected, rather than later in some other test under filterwarnings = error.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            client = docker.from_env(timeout=DOCKER_TIMEOUT)
            client.ping()
        except DockerException as error:
            reason = f"no Docker engine answers: {error}"
        else:
            reason = ""
        finally:
            gc.collect()
    if reason:
        skip_outside_ci(reason, ".ci/run starts a Docker engine when none answers")
    yield client
    client.close()


def certificates(text: str) -> list[str]:
    """The PEM certificates in ``text``, each from its BEGIN line to its END line."""
    return _CERTIFICATE.findall(text)


def build_ca_pem() -> str:
    """BUILD_CA_PEM for the test builds: FAIRPATH_BUILD_CA_PEM, else this host's added CAs; plus the marker."""
    given = os.environ.get(BUILD_CA_ENV)
    if given is None:
        given = "\n".join(path.read_text() for path in sorted(HOST_EXTRA_CAS.glob("**/*.crt")))
    marker = MARKER_CA.read_text()
    return given if marker in given else f"{given.strip()}\n{marker}".strip() + "\n"


@pytest.fixture(scope="session")
def build_args() -> Iterator[dict[str, str]]:
    """The image's build arguments, also exported for `docker compose build`, which then hits the same cache."""
    args = {"BUILD_CA_PEM": build_ca_pem()}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(BUILD_CA_ENV, args["BUILD_CA_PEM"])
        yield args


def build(client: Any, tag: str, args: dict[str, str], target: str | None = None) -> Any:
    """Build docker/Dockerfile (stage ``target``, else the image) from the repository root; fail with its log."""
    from docker.errors import BuildError, DockerException  # noqa: PLC0415

    try:
        image, _ = client.images.build(
            path=str(ROOT), dockerfile="docker/Dockerfile", tag=tag, buildargs=args, target=target, rm=True
        )
    except BuildError as error:
        log = "".join(str(chunk.get("stream", chunk.get("error", ""))) for chunk in error.build_log)
        unavailable(f"cannot build docker/Dockerfile: {error}\n{log[-4000:]}")
    except DockerException as error:
        unavailable(f"cannot build docker/Dockerfile: {error}")
    return image


@pytest.fixture(scope="session")
def image(docker_client: Any, build_args: dict[str, str]) -> str:
    """Build docker/Dockerfile once per session; the tag stays, so the next run's build reuses its layers."""
    build(docker_client, IMAGE_TAG, build_args)
    return IMAGE_TAG


def published_port(container: Any, port: int) -> int:
    """The host port ``port`` is published on, after checking it is published on 127.0.0.1 only."""
    container.reload()
    bindings = container.attrs["NetworkSettings"]["Ports"][f"{port}/tcp"]
    assert {binding["HostIp"] for binding in bindings} == {LOCALHOST}, bindings
    return int(bindings[0]["HostPort"])


def loopback_ports(*ports: int) -> dict[str, tuple[str, None]]:
    """``ports=`` for the Docker SDK: each port published on a free port of 127.0.0.1 only."""
    return {f"{port}/tcp": (LOCALHOST, None) for port in ports}


@dataclass(frozen=True)
class Tokens:
    """Fresh bearer tokens for the three roles, and the auth config file that grants them."""

    by_name: dict[str, str]
    config: Path

    def of(self, role: str) -> str:
        """The token of the caller that holds ``role``."""
        (name,) = [name for name, roles in ROLES.items() if role in roles]
        return self.by_name[name]


@pytest.fixture(scope="session")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Tokens:
    """An auth config granting ROLES to fresh tokens, readable by the image's uid 10001 when mounted."""
    by_name = {name: secrets.token_urlsafe(24) for name in ROLES}
    entries = {name: {"sha256": hash_token(by_name[name]), "roles": roles} for name, roles in ROLES.items()}
    config = tmp_path_factory.mktemp("auth") / "auth.yaml"
    config.write_text(yaml.safe_dump({"tokens": entries}))
    readable(config)
    return Tokens(by_name, config)


def readable(path: Path) -> Path:
    """Make ``path`` (and, for a directory, everything in it) readable by the container's user."""
    path.chmod(0o755 if path.is_dir() else 0o644)
    if path.is_dir():
        for child in path.rglob("*"):
            child.chmod(0o755 if child.is_dir() else 0o644)
    return path


def copy_readable(source: Path, destination: Path) -> Path:
    """Copy the directory ``source`` to ``destination``, readable by the container's user."""
    shutil.copytree(source, destination)
    return readable(destination)
