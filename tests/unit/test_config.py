"""Config: flags over environment over defaults, and clear errors for bad values."""

from __future__ import annotations

import argparse
import dataclasses

import pytest
from fairpath.cli import main
from fairpath.config import Config, ConfigError, add_arguments


def test_defaults_when_nothing_is_given() -> None:
    """No flags and no environment give the documented defaults."""
    assert Config.from_sources(None, {}) == Config(
        host="127.0.0.1",
        port=50051,
        policies_dir="policies",
        workers=1,
        threads=8,
        max_concurrent_rpcs=64,
        grace_seconds=10.0,
        log_level="info",
        log_format="auto",
        reflection=True,
        max_message_bytes=4 * 1024 * 1024,
    )


def test_environment_overrides_defaults() -> None:
    """Every FAIRPATH_* variable sets its field."""
    environ = {
        "FAIRPATH_HOST": "0.0.0.0",  # noqa: S104 - a value under test, nothing binds it
        "FAIRPATH_PORT": "6000",
        "FAIRPATH_POLICIES": "/srv/policies",
        "FAIRPATH_WORKERS": "3",
        "FAIRPATH_THREADS": "4",
        "FAIRPATH_MAX_CONCURRENT_RPCS": "10",
        "FAIRPATH_GRACE_SECONDS": "2.5",
        "FAIRPATH_LOG_LEVEL": "DEBUG",
        "FAIRPATH_LOG_FORMAT": "console",
        "FAIRPATH_REFLECTION": "off",
        "FAIRPATH_MAX_MESSAGE_BYTES": "1024",
        "FAIRPATH_INSECURE": "true",
    }
    assert Config.from_sources([], environ) == Config(
        host="0.0.0.0",  # noqa: S104
        port=6000,
        policies_dir="/srv/policies",
        workers=3,
        threads=4,
        max_concurrent_rpcs=10,
        grace_seconds=2.5,
        log_level="debug",
        log_format="console",
        reflection=False,
        max_message_bytes=1024,
        insecure=True,
    )


def test_flags_override_environment() -> None:
    """A flag wins over its variable; variables without a flag still apply."""
    environ = {"FAIRPATH_PORT": "6000", "FAIRPATH_THREADS": "4", "FAIRPATH_REFLECTION": "false"}
    config = Config.from_sources(["--port", "7000", "--reflection"], environ)
    assert (config.port, config.threads, config.reflection) == (7000, 4, True)


@pytest.mark.parametrize(
    ("argv", "environ", "named"),
    [
        (["--port", "http"], {}, "--port"),
        ([], {"FAIRPATH_PORT": "70000"}, "FAIRPATH_PORT"),
        (["--workers", "0"], {}, "--workers"),
        ([], {"FAIRPATH_THREADS": "-1"}, "FAIRPATH_THREADS"),
        (["--grace-seconds", "-1"], {}, "--grace-seconds"),
        ([], {"FAIRPATH_GRACE_SECONDS": "nan"}, "FAIRPATH_GRACE_SECONDS"),
        (["--log-level", "loud"], {}, "--log-level"),
        ([], {"FAIRPATH_LOG_FORMAT": "xml"}, "FAIRPATH_LOG_FORMAT"),
        ([], {"FAIRPATH_REFLECTION": "maybe"}, "FAIRPATH_REFLECTION"),
        (["--host", " "], {}, "--host"),
        (["--no-such-flag"], {}, "--no-such-flag"),
    ],
)
def test_bad_values_raise_an_error_naming_their_source(
    argv: list[str], environ: dict[str, str], named: str
) -> None:
    """A bad value raises ConfigError whose message names the flag or variable it came from."""
    with pytest.raises(ConfigError, match=named):
        Config.from_sources(argv, environ)


def test_several_workers_need_a_fixed_port() -> None:
    """Several workers with port 0 are refused: each worker would pick a different port."""
    with pytest.raises(ConfigError, match="port 0"):
        Config.from_sources(["--workers", "2", "--port", "0"], {})


def test_constructing_in_code_is_validated_too() -> None:
    """A Config built directly checks its values like one built from flags."""
    with pytest.raises(ConfigError, match="threads"):
        Config(threads=0)


def test_every_field_has_a_flag() -> None:
    """add_arguments covers every Config field, so nothing is settable only in code."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    dests = {action.dest for action in parser._actions if action.dest != "help"}
    assert dests == {field.name for field in dataclasses.fields(Config)}


def test_address_brackets_ipv6_hosts() -> None:
    """An IPv6 host is bracketed in the bind address gRPC receives."""
    assert Config(host="::1", port=1).address == "[::1]:1"
    assert Config(port=0).address == "127.0.0.1:0"


def test_serve_reports_a_bad_value_as_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """`fairpath serve` with a bad flag exits 2 with a one-line message and no traceback."""
    assert main(["serve", "--port", "http"]) == 2
    err = capsys.readouterr().err
    assert err == "fairpath serve: error: --port: expected a whole number, got 'http'\n"


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.9.8.7", "::1", "[::1]", "localhost", "LocalHost", "::ffff:127.0.0.1"]
)
def test_loopback_hosts_serve_without_tls_or_auth(host: str) -> None:
    """On loopback nothing is required: `make serve` and tests need neither TLS nor --auth-config."""
    config = Config.from_sources(["--host", host], {})
    assert config.loopback
    assert config.unprotected == ()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "fairpath.example.org"])  # noqa: S104 - nothing binds
def test_a_non_loopback_host_without_tls_and_auth_is_refused(host: str) -> None:
    """A public (or unresolved) host with neither protection is refused, naming both fixes and --insecure."""
    with pytest.raises(ConfigError) as refused:
        Config.from_sources(["--host", host], {})
    message = str(refused.value)
    for fix in ("--tls-cert", "--auth-config", "--insecure", "FAIRPATH_INSECURE"):
        assert fix in message


@pytest.mark.parametrize(
    ("argv", "missing", "fix"),
    [
        # TLS alone: any client completing the handshake (or holding a CA-signed certificate) may call everything.
        (["--tls-cert", "s.pem", "--tls-key", "s.key"], "auth", "Set --auth-config,"),
        (["--tls-cert", "s.pem", "--tls-key", "s.key", "--tls-client-ca", "ca.pem"], "auth", "Set --auth-config,"),
        # Roles alone: bearer tokens and facts cross the network readable.
        (["--auth-config", "auth.yaml"], "tls", "Set --tls-cert and --tls-key,"),
    ],
)
def test_half_protected_non_loopback_host_is_refused_naming_what_is_missing(
    argv: list[str], missing: str, fix: str
) -> None:
    """TLS without roles, or roles without TLS, on a non-loopback host still needs --insecure."""
    with pytest.raises(ConfigError, match=fix):
        Config.from_sources(["--host", "0.0.0.0", *argv], {})  # noqa: S104
    config = Config.from_sources(["--host", "0.0.0.0", "--insecure", *argv], {})  # noqa: S104
    assert config.unprotected == (missing,)


def test_tls_and_auth_together_need_no_insecure_flag() -> None:
    """With TLS and caller roles, a non-loopback host is served as it is."""
    argv = ["--host", "0.0.0.0", "--tls-cert", "s.pem", "--tls-key", "s.key", "--auth-config", "a.yaml"]  # noqa: S104
    assert Config.from_sources(argv, {}).unprotected == ()


def test_insecure_comes_from_the_flag_or_the_environment() -> None:
    """--insecure and FAIRPATH_INSECURE both allow an open non-loopback host; --no-insecure wins over the variable."""
    public = ["--host", "0.0.0.0"]  # noqa: S104
    assert Config.from_sources([*public, "--insecure"], {}).unprotected == ("tls", "auth")
    assert Config.from_sources(public, {"FAIRPATH_INSECURE": "1"}).insecure
    with pytest.raises(ConfigError, match="--insecure"):
        Config.from_sources([*public, "--no-insecure"], {"FAIRPATH_INSECURE": "1"})
    with pytest.raises(ConfigError, match="--insecure"):
        Config(host="0.0.0.0")  # noqa: S104


def test_serve_refuses_an_open_public_host_as_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """`fairpath serve --host 0.0.0.0` exits 2 before binding anything, with one line naming the fix."""
    assert main(["serve", "--host", "0.0.0.0"]) == 2  # noqa: S104
    err = capsys.readouterr().err
    assert err.startswith("fairpath serve: error: refusing to serve on 0.0.0.0, which is not a loopback address")
    assert "pass --insecure (FAIRPATH_INSECURE=true)" in err
    assert err.count("\n") == 1
