"""The server's settings: one frozen value built from flags, environment and defaults.

Precedence, highest first: a command-line flag, its ``FAIRPATH_*`` environment
variable, the default below. Every setting is listed once, in ``_SETTINGS``, which
drives both the ``serve`` flags (:func:`add_arguments`) and the environment lookup,
so the two can never drift apart.

A host that is not loopback (127.0.0.0/8, ``::1``, ``localhost``) needs TLS *and*
``--auth-config``, or ``--insecure`` to accept serving without them
(:attr:`Config.unprotected`): otherwise anyone who can reach the port may call
every RPC, export, ``Reload`` and ``ValidatePolicy`` included.

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
``--log-format``            ``FAIRPATH_LOG_FORMAT``           ``auto``
``--[no-]reflection``       ``FAIRPATH_REFLECTION``           on
``--max-message-bytes``     ``FAIRPATH_MAX_MESSAGE_BYTES``    4 MiB
``--tls-cert``              ``FAIRPATH_TLS_CERT``             off
``--tls-key``               ``FAIRPATH_TLS_KEY``              off
``--tls-client-ca``         ``FAIRPATH_TLS_CLIENT_CA``        off
``--auth-config``           ``FAIRPATH_AUTH_CONFIG``          off (open)
``--[no-]insecure``         ``FAIRPATH_INSECURE``             off
``--health-port``           ``FAIRPATH_HEALTH_PORT``          0 (off)
``--max-connection-age``    ``FAIRPATH_MAX_CONNECTION_AGE``   0 (off)
``--watch-seconds``         ``FAIRPATH_WATCH_SECONDS``        ``2.0``
``--[no-]allow-unlocked``   ``FAIRPATH_ALLOW_UNLOCKED``       off
``--store``                 ``FAIRPATH_STORE``                ``sqlite:///fairpath.sqlite3``
``--console-host``          ``FAIRPATH_CONSOLE_HOST``         ``127.0.0.1``
``--console-port``          ``FAIRPATH_CONSOLE_PORT``         ``8080`` (0: off)
``--console-ca``            ``FAIRPATH_CONSOLE_CA``           the ``--tls-cert`` chain
``--checkpoint-key``        ``FAIRPATH_CHECKPOINT_KEY``       off
``--checkpoint-every``      ``FAIRPATH_CHECKPOINT_EVERY``     0 (off)
``--checkpoint-file``       ``FAIRPATH_CHECKPOINT_FILE``      off (log only)
==========================  ================================  =============
"""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("auto", "json", "console")
#: The store URLs fairpath can open (:func:`fairpath.audit.store.open_store`), named once here.
SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")
STORE_SCHEMES = (SQLITE_PREFIX, *POSTGRES_PREFIXES)
#: Where decisions are recorded when neither ``--store`` nor ``FAIRPATH_STORE`` says.
DEFAULT_STORE = "sqlite:///fairpath.sqlite3"
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
        log_format: ``json`` (one object per line), ``console`` (for people), or ``auto``: console
            when the log goes to a terminal, JSON otherwise (structlog's own development setup).
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
        insecure: Serve on a non-loopback host without TLS or without
            ``auth_config`` (e.g. behind a proxy that terminates TLS and
            authenticates callers); without it such a config is refused.
        health_port: When not 0, a second, plaintext port serving only
            ``grpc.health.v1``, on its own threads and outside the RPC cap, for
            probes that cannot speak TLS or must not be shed under load.
        max_connection_age: Seconds after which a client connection is asked to
            reconnect (0: never), so clients balancing over several replicas
            re-resolve DNS and spread onto replicas started since they connected.
        watch_seconds: How often the policy directory is scanned for changes,
            which are then reloaded (:mod:`fairpath.serving.watch`); 0 turns polling off.
        allow_unlocked: Serve active and retired versions missing from
            ``policies.lock`` (development and tests only; drafts never need it).
        store: Where decisions are recorded: ``sqlite:///relative/path``,
            ``sqlite:////absolute/path`` or a ``postgresql://`` URL (which may hold a
            password, so it is left out of the config's repr and never logged).
        console_host: Address the review console (:mod:`fairpath.console`) binds.
        console_port: Its port; 0 turns the console off. It runs once per service, in the
            process that owns the workers, as a client of the service's own gRPC port.
        console_ca: PEM CA the console trusts for the service's certificate when TLS is on;
            empty: the ``tls_cert`` chain itself (enough for a chain that ends in its CA).
        checkpoint_key: PEM Ed25519 private key that signs checkpoints of the decision trail's
            hash chain (:mod:`fairpath.audit.checkpoint`); empty: no checkpoints are signed.
        checkpoint_every: Minutes between the checkpoints the server writes by itself (one
            writer per service, also with several workers); 0 turns them off.
        checkpoint_file: File each periodic checkpoint is appended to as one line (they are
            always logged as well); empty: logged only.

    """

    host: str = "127.0.0.1"
    port: int = 50051
    policies_dir: str = "policies"
    workers: int = 1
    threads: int = 8
    max_concurrent_rpcs: int = 64
    grace_seconds: float = 10.0
    log_level: str = "info"
    log_format: str = "auto"
    reflection: bool = True
    max_message_bytes: int = 4 * 1024 * 1024
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    auth_config: str = ""
    insecure: bool = False
    health_port: int = 0
    max_connection_age: float = 0.0
    watch_seconds: float = 2.0
    allow_unlocked: bool = False
    store: str = field(default=DEFAULT_STORE, repr=False)
    console_host: str = "127.0.0.1"
    console_port: int = 8080
    console_ca: str = ""
    checkpoint_key: str = ""
    checkpoint_every: float = 0.0
    checkpoint_file: str = ""

    def __post_init__(self) -> None:
        # Checked here as well as in the parsers so a Config built in code is as safe as one from flags.
        if not self.host:
            raise ConfigError("host must not be empty")
        self._check_ports()
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
        self._check_protection()
        if self.checkpoint_every < 0:
            raise ConfigError(f"checkpoint_every must not be negative, got {self.checkpoint_every}")
        if self.checkpoint_every and not self.checkpoint_key:
            raise ConfigError("--checkpoint-every needs --checkpoint-key: periodic checkpoints are signed with it")
        if self.checkpoint_file and not self.checkpoint_every:
            raise ConfigError(
                "--checkpoint-file needs --checkpoint-every (minutes between checkpoints): it receives them"
            )

    def _check_ports(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be between 0 and 65535, got {self.port}")
        if not 0 <= self.health_port <= 65535:
            raise ConfigError(f"health_port must be between 0 and 65535, got {self.health_port}")
        if not 0 <= self.console_port <= 65535:
            raise ConfigError(f"console_port must be between 0 and 65535, got {self.console_port}")
        if self.console_port and self.console_port in (self.port, self.health_port):
            raise ConfigError(f"console_port must differ from port and health_port, got {self.console_port}")
        if self.health_port and self.health_port == self.port:
            raise ConfigError(f"health_port must differ from port, both are {self.port}")
        if self.workers > 1 and self.port == 0:
            # Each worker would get its own random port: clients could reach only one of them.
            raise ConfigError("port 0 cannot be shared by several workers: give a fixed --port")

    def _check_protection(self) -> None:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("tls_cert and tls_key go together: give both or neither")
        if self.tls_client_ca and not self.tls_cert:
            raise ConfigError("tls_client_ca (mutual TLS) needs tls_cert and tls_key")
        if self.unprotected and not self.insecure:
            raise ConfigError(_unprotected_message(self.host, self.unprotected))
        if self.console_port and not _is_loopback(self.console_host) and not self.auth_config and not self.insecure:
            # An open console on the network would let anyone read decisions and record outcomes.
            raise ConfigError(
                f"refusing to serve the console on {self.console_host}, which is not a loopback address, without "
                "--auth-config: anyone who can reach it could read decisions and record outcomes. Set "
                "--auth-config, keep --console-host on loopback behind a proxy, or pass --insecure"
            )

    @property
    def loopback(self) -> bool:
        """Whether ``host`` is reachable from this machine only: 127.0.0.0/8, ``::1`` or ``localhost``."""
        return _is_loopback(self.host)

    @property
    def unprotected(self) -> tuple[str, ...]:
        """What a non-loopback host serves without: ``"tls"``, ``"auth"``, both, or none.

        Always empty on loopback, where only this machine's users can connect. Serving
        while it is not empty needs :attr:`insecure`, and then logs a warning.
        """
        if self.loopback:
            return ()
        missing = {"tls": not self.tls_cert, "auth": not self.auth_config}
        return tuple(name for name, absent in missing.items() if absent)

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


# What each missing protection exposes on a non-loopback host, and the flags that add it.
_EXPOSURES = {
    "tls": ("TLS", "calls, facts and bearer tokens cross the network readable", "--tls-cert and --tls-key"),
    "auth": (
        "--auth-config",
        "every caller that connects may call every RPC (export, Reload and ValidatePolicy included)",
        "--auth-config",
    ),
}


def _is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        # Any other name may resolve to a public address: treat it as one rather than resolve it here.
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _unprotected_message(host: str, missing: Sequence[str]) -> str:
    names = " or ".join(_EXPOSURES[name][0] for name in missing)
    risks = "; ".join(_EXPOSURES[name][1] for name in missing)
    fixes = " and ".join(_EXPOSURES[name][2] for name in missing)
    return (
        f"refusing to serve on {host}, which is not a loopback address, without {names}: {risks}. "
        f"Set {fixes}, or pass --insecure (FAIRPATH_INSECURE=true) to serve anyway, "
        "e.g. behind a proxy that terminates TLS and authenticates callers"
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


def _duration(unit: str) -> Callable[[object, str], float]:
    def parse(raw: object, source: str) -> float:
        try:
            value = float(str(raw).strip())
        except ValueError:
            raise ConfigError(f"{source}: expected a number of {unit}, got {raw!r}") from None
        if not 0 <= value < float("inf"):
            raise ConfigError(f"{source}: expected a finite number of {unit} >= 0, got {raw!r}")
        return value

    return parse


_seconds = _duration("seconds")
_minutes = _duration("minutes")


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
        "log_format", "--log-format", "FAIRPATH_LOG_FORMAT", _choice(LOG_FORMATS),
        "json, console, or auto: console on a terminal, json otherwise", "FORMAT"
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
        "insecure", "--insecure", "FAIRPATH_INSECURE", _boolean,
        "allow a non-loopback --host without TLS and --auth-config (logged as a warning)",
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
    _Setting("console_host", "--console-host", "FAIRPATH_CONSOLE_HOST", _text, "address the review console binds",
             "HOST"),
    _Setting("console_port", "--console-port", "FAIRPATH_CONSOLE_PORT", _port,
             "port of the review console (web pages); 0 is off", "PORT"),
    _Setting("console_ca", "--console-ca", "FAIRPATH_CONSOLE_CA", _text,
             "PEM CA the console trusts for the service's own certificate (default: the --tls-cert chain)",
             "FILE"),
    _Setting(
        "checkpoint_key", "--checkpoint-key", "FAIRPATH_CHECKPOINT_KEY", _text,
        "PEM Ed25519 private key signing checkpoints of the decision trail", "FILE",
    ),
    _Setting(
        "checkpoint_every", "--checkpoint-every", "FAIRPATH_CHECKPOINT_EVERY", _minutes,
        "minutes between checkpoints the server writes by itself; 0 is off", "MINUTES",
    ),
    _Setting(
        "checkpoint_file", "--checkpoint-file", "FAIRPATH_CHECKPOINT_FILE", _text,
        "append each periodic checkpoint to this file as one line (they are logged too)", "FILE",
    ),
)
