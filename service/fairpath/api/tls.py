"""Server-side TLS: the credentials for ``--tls-cert``/``--tls-key`` and, for mutual TLS, ``--tls-client-ca``.

When TLS is configured the service port is bound with these credentials only, so
a plaintext client fails its handshake instead of being served. With a client CA
every client must present a certificate that CA signed; its subject then names
the caller to :mod:`fairpath.api.auth`.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from fairpath.config import Config
from fairpath.errors import CredentialsError

_PEM_MARKER = b"-----BEGIN "


def server_credentials(config: Config) -> grpc.ServerCredentials | None:
    """Return the TLS credentials ``config`` asks for, or ``None`` when TLS is off.

    Raises:
        CredentialsError: A file cannot be read or holds no PEM data.

    """
    if not config.tls_cert:
        return None
    key = _read_pem(config.tls_key, "--tls-key")
    chain = _read_pem(config.tls_cert, "--tls-cert")
    client_ca = _read_pem(config.tls_client_ca, "--tls-client-ca") if config.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(key, chain)],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def _read_pem(path: str, flag: str) -> bytes:
    # grpc only reports a bad PEM when the first client connects; check the files at start-up instead.
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise CredentialsError(f"{flag} {path}: {error.strerror or error}") from None
    if _PEM_MARKER not in data:
        raise CredentialsError(f"{flag} {path}: not a PEM file")
    return data
