"""Throwaway X.509 certificates for TLS tests, made with the ``openssl`` command at run time.

The ``cryptography`` package is not a dependency; the ``openssl`` CLI is on every
machine that runs the suite (CI image, developer boxes, the Docker build stage).
Keys are P-256 (fast to generate); certificates live one day.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pair:
    """A PEM certificate and its private key, as files."""

    cert: Path
    key: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _key(path: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))


def make_ca(directory: Path, name: str) -> Pair:
    """Create a self-signed CA called ``name`` in ``directory``."""
    pair = Pair(directory / f"{name}.pem", directory / f"{name}.key")
    _key(pair.key)
    _openssl(
        "req", "-x509", "-new", "-key", str(pair.key), "-out", str(pair.cert), "-days", "1",
        "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )
    return pair


def issue(ca: Pair, directory: Path, common_name: str, *, server: bool) -> Pair:
    """Issue a certificate for ``common_name`` signed by ``ca``: a server's (localhost) or a client's."""
    stem = directory / common_name.replace("/", "_")
    pair = Pair(stem.with_suffix(".pem"), stem.with_suffix(".key"))
    _key(pair.key)
    csr = stem.with_suffix(".csr")
    _openssl("req", "-new", "-key", str(pair.key), "-out", str(csr), "-subj", f"/CN={common_name}")
    extensions = stem.with_suffix(".ext")
    extensions.write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
        if server
        else "extendedKeyUsage=clientAuth\n"
    )
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key), "-CAcreateserial",
        "-out", str(pair.cert), "-days", "1", "-extfile", str(extensions),
    )
    return pair


@dataclass(frozen=True)
class Pki:
    """A CA, a localhost server certificate, and client certificates, including one from a stranger CA."""

    ca: Pair
    server: Pair
    clients: dict[str, Pair]
    stranger_ca: Pair
    stranger: Pair


def make_pki(directory: Path, client_names: tuple[str, ...]) -> Pki:
    """Create the CA, the server pair, one client pair per name, and a client pair from another CA."""
    ca = make_ca(directory, "fairpath-test-ca")
    stranger_ca = make_ca(directory, "stranger-ca")
    return Pki(
        ca=ca,
        server=issue(ca, directory, "localhost", server=True),
        clients={name: issue(ca, directory, name, server=False) for name in client_names},
        stranger_ca=stranger_ca,
        stranger=issue(stranger_ca, directory, "stranger", server=False),
    )
