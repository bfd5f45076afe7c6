"""The server's settings: one frozen value built from flags, environment and defaults.

Precedence, highest first: a command-line flag, its ``FAIRPATH_*`` environment
variable, the default below. Every setting is listed once, in ``_SETTINGS``, which
drives both the ``serve`` flags (:func:`add_arguments`) and the environment lookup,
so the two can never drift apart.

==========================  ================================  =============
flag                        environment variable              default
==========================  ================================  =============
``--host``                  ``FAIRPATH_HOST``                 ``127.0.0.1``
``--port``                  ``FAIRPATH_PORT``                 ``50051``
``--policies``              ``FAIRPATH_POLICIES``             ``policies``
``--workers``               ``FAIRPATH_WORKERS``              ``1``
``--threads``               ``FAIRPATH_THREADS``              ``8``
``--max-concurrent-rpcs``   ``FAIRPATH_MAX_CONCURRENT_RPCS``  ``64``
``--grace-seconds``         ``FAIRPATH_GRACE_SECONDS``        ``10.0``
``--log-level``             ``FAIRPATH_LOG_LEVEL``            ``info``
``--log-format``            ``FAIRPATH_LOG_FORMAT``           ``json``
``--[no-]reflection``       ``FAIRPATH_REFLECTION``           on
``--max-message-bytes``     ``FAIRPATH_MAX_MESSAGE_BYTES``    4 MiB
``--tls-cert``              ``FAIRPATH_TLS_CERT``             off
``--tls-key``               ``FAIRPATH_TLS_KEY``              off
``--tls-client-ca``         ``FAIRPATH_TLS_CLIENT_CA``        off
``--auth-config``           ``FAIRPATH_AUTH_CONFIG``          off (open)
``--health-port``           ``FAIRPATH_HEALTH_PORT``          0 (off)
``--max-connection-age``    ``FAIRPATH_MAX_CONNECTION_AGE``   0 (off)
``--watch-seconds``         ``FAIRPATH_WATCH_SECONDS``        ``2.0``
``--[no-]allow-unlocked``   ``FAIRPATH_ALLOW_UNLOCKED``       off
``--store``                 ``FAIRPATH_STORE``                ``sqlite:///fairpath.sqlite3``
==========================  ================================  =============
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("json", "console")
STORE_SCHEMES = ("sqlite:///", "postgresql://", "postgres://")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class ConfigError(ValueError):
    """A setting has a value the server cannot run with; the message names the flag or variable."""


@dataclass(frozen=True)
class Config:
    """Everything ``fairpath serve`` needs to know, validated on construction.

    Attributes:
        host: Address to bind; keep the loopback default unless a proxy sits in front.
        port: TCP port; 0 asks the OS for a free one (single worker only).
        policies_dir: Directory holding ``<name>/<version>.yaml`` policy files.
        workers: Server processes sharing the port through ``SO_REUSEPORT``.
        threads: gRPC handler threads per process.
        max_concurrent_rpcs: RPCs in progress per process before new ones get
            ``RESOURCE_EXHAUSTED`` instead of queueing without bound.
        grace_seconds: How long in-flight RPCs may run after SIGTERM.
        log_level: Lowest level written: one of :data:`LOG_LEVELS`.
        log_format: ``json`` (one object per line) or ``console`` (for people).
        reflection: Serve gRPC server reflection (grpcurl, grpcui).
        max_message_bytes: Largest request or response message accepted.
        tls_cert: PEM certificate chain of the server; with ``tls_key`` it turns
            TLS on, and the port then refuses plaintext.
        tls_key: PEM private key of ``tls_cert``.
        tls_client_ca: PEM CA bundle; when set, every client must present a
            certificate it signed (mutual TLS).
        auth_config: YAML file assigning roles to certificate subjects and
            bearer tokens (:mod:`fairpath.api.auth`); empty means every caller
            may call everything.
        health_port: When not 0, a second, plaintext port serving only
            ``grpc.health.v1``, on its own threads and outside the RPC cap, for
            probes that cannot speak TLS or must not be shed under load.
        max_connection_age: Seconds after which a client connection is asked to
            reconnect (0: never), so clients balancing over several replicas
            re-resolve DNS and spread onto replicas started since they connected.
        watch_seconds: How often the policy directory is scanned for changes,
            which are then reloaded (:mod:`fairpath.watch`); 0 turns polling off.
        allow_unlocked: Serve active and retired versions missing from
            ``policies.lock`` (development and tests only; drafts never need it).
        store: Where decisions are recorded: ``sqlite:///relative/path``,
            ``sqlite:////absolute/path`` or a ``postgresql://`` URL (which may hold a
            password, so it is left out of the config's repr and never logged).

    """

    host: str = "127.0.0.1"
    port: int = 50051
    policies_dir: str = "policies"
    workers: int = 1
    threads: int = 8
    max_concurrent_rpcs: int = 64
    grace_seconds: float = 10.0
    log_level: str = "info"
    log_format: str = "json"
    reflection: bool = True
    max_message_bytes: int = 4 * 1024 * 1024
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    auth_config: str = ""
    health_port: int = 0
    max_connection_age: float = 0.0
    watch_seconds: float = 2.0
    allow_unlocked: bool = False
    store: str = field(default="sqlite:///fairpath.sqlite3", repr=False)

    def __post_init__(self) -> None:
        # Checked here as well as in the parsers so a Config built in code is as safe as one from flags.
        if not self.host:
            raise ConfigError("host must not be empty")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be between 0 and 65535, got {self.port}")
        for name in ("workers", "threads", "max_concurrent_rpcs", "max_message_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        seconds = ("grace_seconds", "watch_seconds", "max_connection_age")
        negative = [name for name in seconds if getattr(self, name) < 0]
        if negative:
            raise ConfigError(f"{negative[0]} must not be negative, got {getattr(self, negative[0])}")
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"log_level must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}")
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(f"log_format must be one of {', '.join(LOG_FORMATS)}, got {self.log_format!r}")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("tls_cert and tls_key go together: give both or neither")
        if self.tls_client_ca and not self.tls_cert:
            raise ConfigError("tls_client_ca (mutual TLS) needs tls_cert and tls_key")
        if not 0 <= self.health_port <= 65535:
            raise ConfigError(f"health_port must be between 0 and 65535, got {self.health_port}")
        if self.health_port and self.health_port == self.port:
            raise ConfigError(f"health_port must differ from port, both are {self.port}")
        if self.workers > 1 and self.port == 0:
            # Each worker would get its own random port: clients could reach only one of them.
            raise ConfigError("port 0 cannot be shared by several workers: give a fixed --port")

    @property
    def address(self) -> str:
        """``host:port`` as gRPC wants it, with IPv6 hosts bracketed."""
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{self.port}"

    @classmethod
    def from_sources(cls, argv: Sequence[str] | None, environ: Mapping[str, str]) -> Config:
        """Build a config from ``serve`` flags over environment variables over defaults.

        Args:
            argv: The ``serve`` flags alone (no program or subcommand name); ``None`` means none.
            environ: Usually ``os.environ``.

        Raises:
            ConfigError: A value does not parse or is out of range.

        """
        parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
        add_arguments(parser)
        try:
            namespace, extra = parser.parse_known_args(list(argv or ()))
        except argparse.ArgumentError as error:
            raise ConfigError(str(error)) from None
        if extra:
            raise ConfigError(f"unrecognised arguments: {' '.join(extra)}")
        return cls.from_namespace(namespace, environ)

    @classmethod
    def from_namespace(cls, namespace: argparse.Namespace, environ: Mapping[str, str]) -> Config:
        """Build a config from flags already parsed by :func:`add_arguments`, then the environment.

        Raises:
            ConfigError: A value does not parse or is out of range.

        """
        values: dict[str, Any] = {}
        for setting in _SETTINGS:
            flag_value = getattr(namespace, setting.field, None)
            if flag_value is not None:
                values[setting.field] = setting.parse(flag_value, setting.flag)
            elif setting.env in environ:
                values[setting.field] = setting.parse(environ[setting.env], setting.env)
        return cls(**values)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per setting to ``parser`` (the ``serve`` subcommand).

    Flags default to ``None`` so :meth:`Config.from_namespace` can tell "not given"
    from "given the default" and fall back to the environment.
    """
    defaults = Config()
    for setting in _SETTINGS:
        default = getattr(defaults, setting.field)
        help_text = f"{setting.help} (env {setting.env}; default {default})"
        if setting.parse is _boolean:
            parser.add_argument(
                setting.flag, dest=setting.field, default=None,
                action=argparse.BooleanOptionalAction, help=help_text,
            )
        else:
            parser.add_argument(
                setting.flag, dest=setting.field, default=None, metavar=setting.metavar, help=help_text
            )


# --- parsing ---------------------------------------------------------------------


def _text(raw: object, source: str) -> str:
    value = str(raw).strip()
    if not value:
        raise ConfigError(f"{source}: must not be empty")
    return value


def _integer(raw: object, source: str) -> int:
    try:
        return int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{source}: expected a whole number, got {raw!r}") from None


def _port(raw: object, source: str) -> int:
    value = _integer(raw, source)
    if not 0 <= value <= 65535:
        raise ConfigError(f"{source}: expected a port between 0 and 65535, got {value}")
    return value


def _positive(raw: object, source: str) -> int:
    value = _integer(raw, source)
    if value < 1:
        raise ConfigError(f"{source}: expected a number of at least 1, got {value}")
    return value


def _seconds(raw: object, source: str) -> float:
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{source}: expected a number of seconds, got {raw!r}") from None
    if not 0 <= value < float("inf"):
        raise ConfigError(f"{source}: expected a finite number of seconds >= 0, got {raw!r}")
    return value


def _store_url(raw: object, source: str) -> str:
    value = _text(raw, source)
    if not value.startswith(STORE_SCHEMES):
        scheme = value.split("://", maxsplit=1)[0]
        raise ConfigError(f"{source}: expected a sqlite:/// or postgresql:// URL, got scheme {scheme!r}")
    return value


def _choice(options: Sequence[str]) -> Callable[[object, str], str]:
    def parse(raw: object, source: str) -> str:
        value = str(raw).strip().lower()
        if value not in options:
            raise ConfigError(f"{source}: expected one of {', '.join(options)}, got {raw!r}")
        return value

    return parse


def _boolean(raw: object, source: str) -> bool:
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{source}: expected true or false, got {raw!r}")


@dataclass(frozen=True)
class _Setting:
    field: str
    flag: str
    env: str
    parse: Callable[[object, str], Any]
    help: str
    metavar: str = ""


_SETTINGS = (
    _Setting("host", "--host", "FAIRPATH_HOST", _text, "address to bind", "HOST"),
    _Setting("port", "--port", "FAIRPATH_PORT", _port, "TCP port; 0 picks a free one", "PORT"),
    _Setting("policies_dir", "--policies", "FAIRPATH_POLICIES", _text, "policy directory", "DIR"),
    _Setting("workers", "--workers", "FAIRPATH_WORKERS", _positive, "server processes on one port", "N"),
    _Setting("threads", "--threads", "FAIRPATH_THREADS", _positive, "gRPC handler threads per process", "N"),
    _Setting(
        "max_concurrent_rpcs", "--max-concurrent-rpcs", "FAIRPATH_MAX_CONCURRENT_RPCS", _positive,
        "RPCs in progress per process before RESOURCE_EXHAUSTED", "N",
    ),
    _Setting(
        "grace_seconds", "--grace-seconds", "FAIRPATH_GRACE_SECONDS", _seconds,
        "time in-flight RPCs get after SIGTERM", "SECONDS",
    ),
    _Setting(
        "log_level", "--log-level", "FAIRPATH_LOG_LEVEL", _choice(LOG_LEVELS), "lowest level logged", "LEVEL"
    ),
    _Setting(
        "log_format", "--log-format", "FAIRPATH_LOG_FORMAT", _choice(LOG_FORMATS), "json or console", "FORMAT"
    ),
    _Setting("reflection", "--reflection", "FAIRPATH_REFLECTION", _boolean, "serve gRPC server reflection"),
    _Setting(
        "max_message_bytes", "--max-message-bytes", "FAIRPATH_MAX_MESSAGE_BYTES", _positive,
        "largest message accepted or sent", "BYTES",
    ),
    _Setting("tls_cert", "--tls-cert", "FAIRPATH_TLS_CERT", _text, "PEM server certificate: TLS on", "FILE"),
    _Setting("tls_key", "--tls-key", "FAIRPATH_TLS_KEY", _text, "PEM private key of --tls-cert", "FILE"),
    _Setting(
        "tls_client_ca", "--tls-client-ca", "FAIRPATH_TLS_CLIENT_CA", _text,
        "PEM CA bundle: require client certificates it signed (mutual TLS)", "FILE",
    ),
    _Setting(
        "auth_config", "--auth-config", "FAIRPATH_AUTH_CONFIG", _text,
        "YAML file of caller roles by certificate subject and token hash", "FILE",
    ),
    _Setting(
        "health_port", "--health-port", "FAIRPATH_HEALTH_PORT", _port,
        "extra plaintext port serving only grpc.health.v1; 0 is off", "PORT",
    ),
    _Setting(
        "max_connection_age", "--max-connection-age", "FAIRPATH_MAX_CONNECTION_AGE", _seconds,
        "seconds before clients are asked to reconnect (and re-balance); 0 is never", "SECONDS",
    ),
    _Setting(
        "watch_seconds", "--watch-seconds", "FAIRPATH_WATCH_SECONDS", _seconds,
        "seconds between scans of the policy directory for changes; 0 is off", "SECONDS",
    ),
    _Setting(
        "allow_unlocked", "--allow-unlocked", "FAIRPATH_ALLOW_UNLOCKED", _boolean,
        "serve versions missing from policies.lock (development only)",
    ),
    _Setting(
        "store", "--store", "FAIRPATH_STORE", _store_url,
        "where decisions are recorded: sqlite:///FILE or a postgresql:// URL", "URL",
    ),
)
