"""Running the console: uvicorn on its own thread, next to the gRPC server or on its own.

``fairpath serve`` starts it once, in the process that owns the workers (the
only process with ``--workers 1``, the supervisor otherwise), connected to the
service's own gRPC port on loopback; ``fairpath console --target`` starts it
against a service elsewhere. When the service speaks TLS the console connects
with TLS too, and serves its pages over TLS with the same key pair, so its
cookies are ``Secure``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import grpc
import structlog
import uvicorn
from fairpath_client import TlsConfig
from fairpath_client._security import open_channel

from fairpath.api.auth import AuthPolicy
from fairpath.config import Config
from fairpath.console.app import build_app
from fairpath.console.web import ConsoleSettings
from fairpath.errors import FairpathError

_log = structlog.get_logger(__name__)
_START_SECONDS = 10.0
_WILDCARDS = {"0.0.0.0", "::", "[::]", ""}  # noqa: S104 (names of the wildcard address, never bound here)


@dataclass(frozen=True)
class ConsoleOptions:
    """Where the console listens and how it reaches and trusts the service.

    Attributes:
        host: Address the console binds (loopback by default).
        port: Its port; 0 asks the OS for a free one.
        target: ``host:port`` of the gRPC service.
        tls: How to reach a TLS service; None for plaintext.
        auth_config: The service's auth config file; "" when the service is open.
        cert: PEM certificate to serve the console over HTTPS ("" for plain HTTP).
        key: Its private key.
        policies_dir: The service's policy files, for the diff page ("": no diff page).

    """

    host: str
    port: int
    target: str
    tls: TlsConfig | None = None
    auth_config: str = ""
    cert: str = ""
    key: str = ""
    policies_dir: str = ""

    @classmethod
    def for_service(cls, config: Config, grpc_port: int) -> ConsoleOptions:
        """The options of the console ``fairpath serve`` runs beside its own gRPC port."""
        host = "127.0.0.1" if config.host in _WILDCARDS else config.host
        tls = None
        if config.tls_cert:
            # Trust the service's own chain (or --console-ca); under mutual TLS present the service's key pair.
            mutual = bool(config.tls_client_ca)
            tls = TlsConfig(
                ca=config.console_ca or config.tls_cert,
                cert=config.tls_cert if mutual else None, key=config.tls_key if mutual else None,
            )
        target = f"[{host}]:{grpc_port}" if ":" in host and not host.startswith("[") else f"{host}:{grpc_port}"
        return cls(
            host=config.console_host, port=config.console_port, target=target, tls=tls,
            auth_config=config.auth_config, cert=config.tls_cert, key=config.tls_key,
            policies_dir=config.policies_dir,
        )


class ConsoleServer:
    """The console's HTTP server on a daemon thread; :meth:`start`, then :meth:`stop`."""

    def __init__(self, options: ConsoleOptions) -> None:
        self.options = options
        self._channel: grpc.Channel = open_channel(options.target, options.tls, None)
        auth = AuthPolicy.load(options.auth_config) if options.auth_config else None
        app = build_app(ConsoleSettings(self._channel, auth=auth, secure_cookies=bool(options.cert),
                                        policies_dir=options.policies_dir))
        self._server = uvicorn.Server(uvicorn.Config(
            app, host=options.host, port=options.port, log_config=None, access_log=False,
            lifespan="off", ssl_certfile=options.cert or None, ssl_keyfile=options.key or None,
            server_header=False,
        ))
        self._thread = threading.Thread(target=self._server.run, name="fairpath-console", daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        """Where a browser opens the console."""
        scheme = "https" if self.options.cert else "http"
        return f"{scheme}://{self.options.host}:{self.port}"

    def start(self) -> None:
        """Start serving and wait until the port is bound.

        Raises:
            RuntimeError: The console did not start (e.g. the port is taken).

        """
        self._thread.start()
        deadline = time.monotonic() + _START_SECONDS
        # uvicorn has no "started" callback: poll its flag (it exits the thread when binding fails).
        while self._thread.is_alive() and not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self._server.started:
            self._server.should_exit = True
            self._channel.close()
            msg = f"the console could not listen on {self.options.host}:{self.options.port}"
            raise RuntimeError(msg)
        sockets = [sock for server in self._server.servers for sock in (server.sockets or ())]
        self.port = int(sockets[0].getsockname()[1]) if sockets else self.options.port
        _log.info("console_serving", url=self.url, target=self.options.target,
                  auth=bool(self.options.auth_config))

    def stop(self) -> None:
        """Stop serving, let open requests finish, close the channel."""
        self._server.should_exit = True
        self._thread.join(_START_SECONDS)
        self._channel.close()


def start_console(config: Config, grpc_port: int) -> ConsoleServer | None:
    """Start the console ``config`` asks for beside the service on ``grpc_port``; None when it is off.

    A console that cannot start (port taken, unreadable auth config) is logged as an error and
    the gRPC service goes on without it: decisions must not stop because a web page cannot be served.
    """
    if not config.console_port:
        return None
    try:
        console = ConsoleServer(ConsoleOptions.for_service(config, grpc_port))
        console.start()
    except (RuntimeError, OSError, FairpathError) as error:
        _log.error("console_unavailable", port=config.console_port, error=str(error))
        return None
    return console
