"""Client credentials: TLS (optionally with a client certificate) and bearer tokens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

if TYPE_CHECKING:
    # Typing-only names of types-grpcio: what a unary and a streaming call return.
    from grpc import _CallFuture, _CallIterator

_Request = TypeVar("_Request")
_Response = TypeVar("_Response")

#: The header a bearer token travels in.
AUTHORIZATION_HEADER = "authorization"


@dataclass(frozen=True)
class TlsConfig:
    """How to reach a service that speaks TLS.

    Attributes:
        ca: PEM file of the CA that signed the server's certificate; ``None``
            trusts the system's roots.
        cert: PEM file of this client's certificate, for mutual TLS.
        key: PEM file of the private key of ``cert``.
        server_name: The name to expect in the server's certificate when it
            differs from the target's host (e.g. calling by IP address).

    """

    ca: str | Path | None = None
    cert: str | Path | None = None
    key: str | Path | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            msg = "cert and key go together: give both or neither"
            raise ValueError(msg)

    def credentials(self) -> grpc.ChannelCredentials:
        """Read the files and return gRPC channel credentials.

        Raises:
            OSError: A file cannot be read.

        """
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca),
            private_key=_read(self.key),
            certificate_chain=_read(self.cert),
        )

    def options(self) -> list[tuple[str, Any]]:
        """Channel options these settings need (the server-name override, if any)."""
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []


def open_channel(target: str, tls: TlsConfig | None, token: str | None) -> grpc.Channel:
    """Open a channel to ``target``: plaintext or TLS, sending ``token`` on every call if given."""
    if tls is None:
        channel = grpc.insecure_channel(target)
    else:
        channel = grpc.secure_channel(target, tls.credentials(), options=tls.options())
    return with_token(channel, token) if token else channel


def with_token(channel: grpc.Channel, token: str) -> grpc.Channel:
    """Return ``channel`` with ``authorization: Bearer <token>`` added to every call."""
    # Metadata rather than grpc.access_token_call_credentials: those refuse plaintext channels,
    # and a token over loopback or behind a TLS-terminating proxy is a legitimate set-up.
    return grpc.intercept_channel(channel, _TokenInterceptor(token))


class _TokenInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    def __init__(self, token: str) -> None:
        if not token or any(c.isspace() for c in token):
            msg = "a bearer token must be non-empty and contain no whitespace"
            raise ValueError(msg)
        self._header = (AUTHORIZATION_HEADER, f"Bearer {token}")

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        return _CallDetails(details, [*(details.metadata or ()), self._header])

    def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, _Request], _CallFuture[_Response]],
        client_call_details: grpc.ClientCallDetails,
        request: _Request,
    ) -> _CallFuture[_Response]:
        """Send the call with the token added."""
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.ClientCallDetails, _Request], _CallIterator[_Response]],
        client_call_details: grpc.ClientCallDetails,
        request: _Request,
    ) -> _CallIterator[_Response]:
        """Send the streaming call with the token added."""
        return continuation(self._details(client_call_details), request)


class _CallDetails(grpc.ClientCallDetails):
    """A copy of a call's details with other metadata; grpc ships only the abstract class."""

    def __init__(self, details: grpc.ClientCallDetails, metadata: Any) -> None:
        self.method = details.method
        self.timeout = details.timeout
        self.metadata = metadata
        self.credentials = details.credentials
        self.wait_for_ready = getattr(details, "wait_for_ready", None)
        self.compression = getattr(details, "compression", None)


def _read(path: str | Path | None) -> bytes | None:
    return None if path is None else Path(path).read_bytes()
