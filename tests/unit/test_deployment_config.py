"""The deployment settings of Config: TLS files, auth config and the health port."""

from __future__ import annotations

import pytest
from fairpath.config import Config, ConfigError
from fairpath.healthcheck import default_target


def test_tls_and_auth_settings_come_from_flags_and_environment() -> None:
    """Each new setting reads its flag, else its FAIRPATH_* variable."""
    environ = {
        "FAIRPATH_TLS_CERT": "/env/server.pem",
        "FAIRPATH_TLS_KEY": "/env/server.key",
        "FAIRPATH_TLS_CLIENT_CA": "/env/ca.pem",
        "FAIRPATH_AUTH_CONFIG": "/env/auth.yaml",
        "FAIRPATH_HEALTH_PORT": "50052",
        "FAIRPATH_MAX_CONNECTION_AGE": "300",
    }
    config = Config.from_sources(["--tls-cert", "/flag/server.pem", "--health-port", "9000"], environ)
    assert (config.tls_cert, config.tls_key, config.tls_client_ca) == (
        "/flag/server.pem",
        "/env/server.key",
        "/env/ca.pem",
    )
    assert (config.auth_config, config.health_port) == ("/env/auth.yaml", 9000)
    assert config.max_connection_age == 300.0


def test_security_is_off_by_default() -> None:
    """Without the settings the server is plaintext, open and has no extra health port."""
    config = Config()
    assert (config.tls_cert, config.tls_key, config.tls_client_ca, config.auth_config) == ("", "", "", "")
    assert (config.health_port, config.max_connection_age) == (0, 0.0)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"tls_cert": "c.pem"}, "tls_cert and tls_key go together"),
        ({"tls_key": "k.pem"}, "tls_cert and tls_key go together"),
        ({"tls_client_ca": "ca.pem"}, "needs tls_cert and tls_key"),
        ({"health_port": 70000}, "health_port must be between"),
        ({"port": 6000, "health_port": 6000}, "health_port must differ from port"),
        ({"max_connection_age": -1.0}, "max_connection_age must not be negative"),
    ],
)
def test_inconsistent_security_settings_are_refused(settings: dict[str, object], problem: str) -> None:
    """Half a key pair, mTLS without TLS, a clashing health port or a negative age stop start-up."""
    with pytest.raises(ConfigError, match=problem):
        Config(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("environ", "target"),
    [
        ({}, "127.0.0.1:50051"),
        ({"FAIRPATH_PORT": "6000"}, "127.0.0.1:6000"),
        ({"FAIRPATH_PORT": "6000", "FAIRPATH_HEALTH_PORT": "50052"}, "127.0.0.1:50052"),
        ({"FAIRPATH_HEALTH_PORT": "0"}, "127.0.0.1:50051"),
    ],
)
def test_healthcheck_asks_the_health_port_when_there_is_one(environ: dict[str, str], target: str) -> None:
    """The container health check prefers the plaintext health port, else the service port, on loopback."""
    assert default_target(environ) == target
