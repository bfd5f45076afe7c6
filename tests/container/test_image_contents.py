"""What the docker/Dockerfile image holds: no build-host CA, no secret, no compiler (inspected file by file)."""

from __future__ import annotations

import re
import tarfile
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import POLICIES
from tests.container.conftest import BUILD_STAGE_TAG, build, certificates

# The first test of a session builds the image; a cold build (durable-rules compiles) can take
# minutes on two busy cores, more than the suite's 300 s per test.
pytestmark = [pytest.mark.container, pytest.mark.timeout(900)]

# Executables of a C/C++ toolchain, by file name: gcc, cc, c++, g++, cc1, clang, tcc, also versioned
# (gcc-12) or target-prefixed (x86_64-linux-gnu-gcc-12).
COMPILER = re.compile(
    r"^(?:[a-z0-9_]+-linux-gnu-)?(?:gcc|g\+\+|cc|c\+\+|cc1|cc1plus|clang|clang\+\+|tcc)(?:-[0-9.]+)?$"
)
# A whole PEM key, not the marker string alone (libraries that parse keys, e.g. GnuTLS, hold that).
PRIVATE_KEY = re.compile(rb"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----\r?\n[A-Za-z0-9+/=\r\n]{40,}-----END")
DPKG_LIST = re.compile(r"^/var/lib/dpkg/info/.+\.list$")
# Bigger files are shared libraries and the like, not where a bundle or key would be copied to.
LARGEST_SCANNED = 16 * 1024 * 1024


def body_lines(pem: str) -> list[bytes]:
    """The base64 lines of a PEM certificate (without BEGIN/END), each specific to that certificate."""
    return [line.encode() for line in pem.splitlines()[1:-1] if len(line) == 64]


@dataclass
class Contents:
    """What a walk over an image's filesystem found."""

    files: set[str] = field(default_factory=set)
    # Path -> (permission bits, owner uid, is a directory) of everything under /app.
    app_modes: dict[str, tuple[int, int, bool]] = field(default_factory=dict)
    compilers: list[str] = field(default_factory=list)
    private_keys: list[str] = field(default_factory=list)
    build_ca_copies: list[str] = field(default_factory=list)
    # Every path some Debian package installed (from /var/lib/dpkg/info/*.list), merged-/usr aware.
    packaged: set[str] = field(default_factory=set)

    def not_packaged(self, paths: list[str]) -> list[str]:
        """Those of ``paths`` that no Debian package installed: what the image's build added."""
        return [path for path in paths if path not in self.packaged and f"/usr{path}" not in self.packaged]


def walk(docker_client: Any, image: str, build_cas: list[str]) -> Contents:
    """Export a (never started) container of ``image`` and look at every regular file in it."""
    # One line of each CA's body is enough to find it: base64 lines of distinct keys never coincide.
    needles = [body_lines(pem)[1] for pem in build_cas]
    found = Contents()
    container = docker_client.containers.create(image, entrypoint=["true"])
    try:
        stream = container.export()
        with tarfile.open(fileobj=_Reader(stream), mode="r|") as archive:
            for member in archive:
                path = "/" + member.name.lstrip("./")
                if member.isfile() or member.issym():
                    found.files.add(path)
                if path.startswith("/app/"):
                    found.app_modes[path.rstrip("/")] = (member.mode & 0o7777, member.uid, member.isdir())
                if COMPILER.match(path.rsplit("/", 1)[-1]) and (member.isfile() or member.issym()):
                    found.compilers.append(path)
                if not member.isfile() or member.size > LARGEST_SCANNED:
                    continue
                data = archive.extractfile(member).read()  # type: ignore[union-attr]
                if PRIVATE_KEY.search(data):
                    found.private_keys.append(path)
                if any(needle in data for needle in needles):
                    found.build_ca_copies.append(path)
                if DPKG_LIST.match(path):
                    found.packaged.update(data.decode(errors="replace").splitlines())
    finally:
        container.remove(force=True, v=True)
    return found


class _Reader:
    """A file-like reader over the Docker SDK's chunk iterator, for tarfile's stream mode."""

    def __init__(self, chunks: Any) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


@pytest.fixture(scope="module")
def build_cas(build_args: dict[str, str]) -> list[str]:
    """The CA certificates the build stage was given (this host's added CAs and the test marker)."""
    cas = certificates(build_args["BUILD_CA_PEM"])
    assert cas, "the test build always passes at least the marker CA"
    return cas


@pytest.fixture(scope="module")
def runtime(docker_client: Any, image: str, build_cas: list[str]) -> Contents:
    """The runtime image's filesystem, walked once for this module."""
    return walk(docker_client, image, build_cas)


def test_the_build_stage_trusts_the_build_ca(
    docker_client: Any, image: str, build_args: dict[str, str], build_cas: list[str]
) -> None:
    """BUILD_CA_PEM reaches the build stage's trust store (so pip gets through a TLS-intercepting proxy)."""
    # Every layer comes from the cache. The tag stays, so `docker image prune` keeps these layers
    # (the compiled dependencies) for the next run's build.
    build(docker_client, BUILD_STAGE_TAG, build_args, target="build")
    bundle = docker_client.containers.run(
        BUILD_STAGE_TAG, ["cat", "/etc/ssl/certs/ca-certificates.crt"], remove=True
    ).decode()
    assert all(body_lines(pem)[1].decode() in bundle for pem in build_cas)


def test_the_runtime_image_holds_no_ca_of_the_build(runtime: Contents, docker_client: Any, image: str) -> None:
    """No file of the runtime image contains a build CA; neither its config nor its history mention one."""
    assert runtime.build_ca_copies == []
    attrs = docker_client.images.get(image).attrs
    config = repr(attrs["Config"])
    history = repr(docker_client.images.get(image).history())
    for text in (config, history):
        assert "BEGIN CERTIFICATE" not in text
        assert "BUILD_CA_PEM" not in text
    trust_variables = ("PIP_CERT=", "SSL_CERT_FILE=", "REQUESTS_CA_BUNDLE=")
    assert not [item for item in attrs["Config"]["Env"] if item.startswith(trust_variables)]


def test_the_runtime_image_holds_no_secret(runtime: Contents, docker_client: Any, image: str) -> None:
    """No private key but Debian's own (GnuTLS's self-test keys), no credential in the environment, /app = policies."""
    assert runtime.not_packaged(runtime.private_keys) == []
    env = dict(item.split("=", 1) for item in docker_client.images.get(image).attrs["Config"]["Env"])
    assert not [name for name in env if re.search(r"PASSWORD|SECRET|TOKEN|_KEY$", name)]
    assert "@" not in env.get("FAIRPATH_STORE", "")  # a URL with credentials in it
    policies = {f"/app/policies/{path.relative_to(POLICIES)}" for path in POLICIES.rglob("*") if path.is_file()}
    assert {path for path in runtime.files if path.startswith("/app/")} == policies


def test_the_baked_in_policies_are_readable_by_the_service_and_writable_by_root_only(runtime: Contents) -> None:
    """Every file and folder under /app/policies is root's, readable (and folders enterable) by uid 10001."""
    policies = {path: mode for path, mode in runtime.app_modes.items() if path.startswith("/app/policies/")}
    assert "/app/policies/policies.lock" in policies
    for path, (mode, uid, directory) in policies.items():
        assert uid == 0, path
        assert mode & 0o004, f"{path} is not readable by others: {mode:o}"
        assert not mode & 0o022, f"{path} is writable by others: {mode:o}"
        assert mode & 0o001 or not directory, f"{path} cannot be entered by others: {mode:o}"


def test_the_runtime_image_holds_no_compiler(runtime: Contents) -> None:
    """gcc, cc, c++, clang and their kin are absent: the build stage's toolchain stays in the build stage."""
    assert runtime.files, "the walk saw no file at all"
    assert runtime.compilers == []
