"""Docker for the container tests: skipped cleanly when no engine answers, built once per session.

Every test here is marked ``container`` (``pytest -m "not container"`` leaves them out).

* No Docker engine answering ``ping`` (a ``docker`` CLI on PATH proves nothing) -> the tests
  are skipped, saying why.
* An engine that cannot build the image or pull ``postgres:16`` / Ryuk (no registry access)
  -> the tests fail, because a machine with Docker is expected to run them; set
  ``FAIRPATH_CONTAINER_TESTS=optional`` to skip them there instead.
"""

from __future__ import annotations

import gc
import io
import os
import tarfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from tests.conftest import ROOT

IMAGE_TAG = "fairpath:container-test"
OPTIONAL_ENV = "FAIRPATH_CONTAINER_TESTS"


def unavailable(reason: str) -> NoReturn:
    """Skip when container tests are optional here, fail otherwise."""
    if os.environ.get(OPTIONAL_ENV, "").strip().lower() == "optional":
        pytest.skip(f"{reason} ({OPTIONAL_ENV}=optional)")
    pytest.fail(f"{reason} (set {OPTIONAL_ENV}=optional to skip instead)", pytrace=False)


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """Skip unless a Docker engine answers a ping."""
    from docker.errors import DockerException  # noqa: PLC0415

    import docker  # noqa: PLC0415 - only the container tier needs the Docker SDK

    # The SDK leaks the socket of a failed probe; collect it here, where its ResourceWarning is
    # expected, rather than later in some other test under filterwarnings = error.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            client = docker.from_env()
            client.ping()
        except DockerException as error:
            reason = f"no Docker engine answers: {error}"
        else:
            client.close()
            return
        finally:
            gc.collect()
    pytest.skip(reason)


@pytest.fixture(scope="session")
def image(docker_engine: None) -> Iterator[str]:
    """Build docker/Dockerfile from the repository root once; remove the image afterwards."""
    from docker.errors import BuildError, DockerException  # noqa: PLC0415
    from testcontainers.core.image import DockerImage  # noqa: PLC0415

    built = DockerImage(path=str(ROOT), dockerfile_path="docker/Dockerfile", tag=IMAGE_TAG)
    try:
        built.build()
    except (BuildError, DockerException) as error:
        unavailable(f"cannot build docker/Dockerfile: {error}")
    yield str(built)
    built.remove()


def tar_of(files: dict[str, str]) -> bytes:
    """Pack ``{relative path: text}`` as a tar archive, world-readable, for ``put_archive``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        directories = sorted({str(Path(name).parent) for name in files} - {"."})
        for directory in directories:
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            archive.addfile(info)
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
