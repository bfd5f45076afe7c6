"""The console's settings of ``fairpath serve``: flags, environment, defaults and what is refused."""

from __future__ import annotations

import pytest
from fairpath.config import Config, ConfigError
from fairpath.console.runner import ConsoleOptions


def test_the_console_defaults_to_loopback_8080_and_flags_beat_the_environment() -> None:
    """Default 127.0.0.1:8080; FAIRPATH_CONSOLE_PORT sets it; --console-port wins; 0 turns it off."""
    assert (Config().console_host, Config().console_port) == ("127.0.0.1", 8080)
    assert Config.from_sources([], {"FAIRPATH_CONSOLE_PORT": "9090"}).console_port == 9090
    assert Config.from_sources(["--console-port", "0"], {"FAIRPATH_CONSOLE_PORT": "9090"}).console_port == 0
    with pytest.raises(ConfigError, match="FAIRPATH_CONSOLE_PORT"):
        Config.from_sources([], {"FAIRPATH_CONSOLE_PORT": "eighty"})


def test_the_console_port_must_differ_from_the_grpc_ports() -> None:
    """The console cannot share the gRPC or health port."""
    with pytest.raises(ConfigError, match="console_port must differ"):
        Config(port=8080)
    with pytest.raises(ConfigError, match="console_port must differ"):
        Config(health_port=8080)
    assert Config(port=8080, console_port=0).console_port == 0


def test_an_open_console_off_loopback_is_refused_unless_insecure() -> None:
    """A console on a network address needs --auth-config (or --insecure); on loopback it may be open."""
    with pytest.raises(ConfigError, match=r"refusing to serve the console on 0\.0\.0\.0"):
        Config(console_host="0.0.0.0")  # noqa: S104 - the point of the test
    assert Config(console_host="0.0.0.0", auth_config="auth.yaml").console_host == "0.0.0.0"  # noqa: S104
    assert Config(console_host="0.0.0.0", insecure=True).insecure  # noqa: S104
    assert Config(console_host="0.0.0.0", console_port=0).console_port == 0  # noqa: S104 - off: nothing served


def test_the_console_reaches_the_service_on_loopback_with_its_tls() -> None:
    """A wildcard service host is reached on 127.0.0.1; with TLS the console trusts --console-ca or the chain."""
    options = ConsoleOptions.for_service(Config(host="0.0.0.0", insecure=True), 50051)  # noqa: S104
    assert (options.target, options.tls) == ("127.0.0.1:50051", None)
    tls = Config(tls_cert="s.pem", tls_key="s.key", console_ca="ca.pem")
    options = ConsoleOptions.for_service(tls, 50051)
    assert options.tls is not None
    assert (options.tls.ca, options.tls.cert) == ("ca.pem", None)
    assert (options.cert, options.key) == ("s.pem", "s.key")  # pages over HTTPS, so cookies are Secure
    mutual = ConsoleOptions.for_service(Config(tls_cert="s.pem", tls_key="s.key", tls_client_ca="c.pem"), 1)
    assert mutual.tls is not None
    assert (mutual.tls.ca, mutual.tls.cert, mutual.tls.key) == ("s.pem", "s.pem", "s.key")
