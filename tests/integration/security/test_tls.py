"""TLS and mutual TLS on a real server: who gets through the handshake, and who does not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fairpath.api.server import Running
from fairpath.app import build_server
from fairpath.config import Config
from fairpath.errors import CredentialsError
from fairpath.serving.evaluator import Evaluator
from fairpath_client import FairpathClient, ServerError, ServiceUnavailableError, TlsConfig
from fairpath_client.cli import main as client_main

from tests.support.certs import Pki
from tests.support.servers import free_port, serving


@pytest.fixture(scope="module")
def tls_server(evaluator: Evaluator, pki: Pki) -> Iterator[Running]:
    """Serve with a server certificate only: clients verify the server, the server asks for no certificate."""
    with serving(evaluator, tls_cert=str(pki.server.cert), tls_key=str(pki.server.key)) as running:
        yield running


@pytest.fixture(scope="module")
def mtls_server(evaluator: Evaluator, pki: Pki) -> Iterator[Running]:
    """Serve with mutual TLS: every client must present a certificate signed by the test CA."""
    with serving(
        evaluator,
        tls_cert=str(pki.server.cert),
        tls_key=str(pki.server.key),
        tls_client_ca=str(pki.ca.cert),
        health_port=free_port(),
    ) as running:
        yield running


def _client(running: Running, tls: TlsConfig | None = None) -> FairpathClient:
    return FairpathClient(f"127.0.0.1:{running.port}", timeout=3, tls=tls)


def test_tls_client_trusting_the_ca_is_served(tls_server: Running, pki: Pki) -> None:
    """A client that verifies the server's certificate against the CA gets answers."""
    with _client(tls_server, TlsConfig(ca=pki.ca.cert)) as client:
        assert client.list_policies()


def test_plaintext_is_refused_when_tls_is_on(tls_server: Running) -> None:
    """The TLS port does not also speak plaintext: a plaintext client never gets an answer."""
    with _client(tls_server) as client, pytest.raises(ServiceUnavailableError):
        client.list_policies()


def test_client_not_trusting_the_server_is_refused(tls_server: Running, pki: Pki) -> None:
    """A client that trusts another CA refuses the server's certificate (no silent downgrade)."""
    tls = TlsConfig(ca=pki.stranger_ca.cert)
    with _client(tls_server, tls) as client, pytest.raises(ServiceUnavailableError):
        client.list_policies()


def test_mtls_client_with_a_valid_certificate_is_served(mtls_server: Running, pki: Pki) -> None:
    """Under mutual TLS a client presenting a certificate from the client CA gets answers."""
    pair = pki.clients["hr-system"]
    with _client(mtls_server, TlsConfig(ca=pki.ca.cert, cert=pair.cert, key=pair.key)) as client:
        assert client.health() == "SERVING"
        assert client.list_policies()


def test_mtls_client_without_a_certificate_is_refused(mtls_server: Running, pki: Pki) -> None:
    """Under mutual TLS a client that presents no certificate fails the handshake."""
    with _client(mtls_server, TlsConfig(ca=pki.ca.cert)) as client, pytest.raises(ServiceUnavailableError):
        client.list_policies()


def test_mtls_client_with_a_certificate_from_another_ca_is_refused(mtls_server: Running, pki: Pki) -> None:
    """Under mutual TLS a certificate the client CA did not sign fails the handshake."""
    tls = TlsConfig(ca=pki.ca.cert, cert=pki.stranger.cert, key=pki.stranger.key)
    with _client(mtls_server, tls) as client, pytest.raises(ServiceUnavailableError):
        client.list_policies()


def test_mtls_refuses_plaintext(mtls_server: Running) -> None:
    """Under mutual TLS a plaintext client gets nothing from the service port."""
    with _client(mtls_server) as client, pytest.raises(ServiceUnavailableError):
        client.health()


def test_health_port_answers_plaintext_under_mtls(mtls_server: Running) -> None:
    """The health-only port answers probes in plaintext, which the mTLS service port refuses."""
    with FairpathClient(f"127.0.0.1:{mtls_server.health_port}", timeout=3) as probe:
        assert probe.health() == "SERVING"


def test_health_port_serves_nothing_but_health(mtls_server: Running) -> None:
    """The plaintext health port exposes no fairpath service: policies are not reachable through it."""
    probe = FairpathClient(f"127.0.0.1:{mtls_server.health_port}", timeout=3)
    with probe, pytest.raises(ServerError) as error:
        probe.list_policies()
    assert error.value.code == "UNIMPLEMENTED"


def test_cli_speaks_mutual_tls(mtls_server: Running, pki: Pki, capsys: pytest.CaptureFixture[str]) -> None:
    """`policies --ca --cert --key` lists the policies over mutual TLS."""
    pair = pki.clients["hr-system"]
    target = f"127.0.0.1:{mtls_server.port}"
    args = ["--target", target, "--ca", str(pki.ca.cert), "--cert", str(pair.cert), "--key", str(pair.key)]
    assert client_main(["policies", *args, "--json"]) == 0
    assert "nhs-just-culture-guide" in capsys.readouterr().out


def test_cli_takes_credentials_from_the_environment(
    mtls_server: Running, pki: Pki, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """FAIRPATH_CA, FAIRPATH_CERT and FAIRPATH_KEY stand in for the flags."""
    pair = pki.clients["hr-system"]
    monkeypatch.setenv("FAIRPATH_CA", str(pki.ca.cert))
    monkeypatch.setenv("FAIRPATH_CERT", str(pair.cert))
    monkeypatch.setenv("FAIRPATH_KEY", str(pair.key))
    assert client_main(["policies", "--target", f"127.0.0.1:{mtls_server.port}"]) == 0
    assert "nhs-just-culture-guide" in capsys.readouterr().out


def test_cli_without_a_client_certificate_fails_cleanly(
    mtls_server: Running, pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused by mTLS, the CLI exits 1 with one error line, not a traceback."""
    code = client_main(["policies", "--target", f"127.0.0.1:{mtls_server.port}", "--ca", str(pki.ca.cert)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: UNAVAILABLE")
    assert "Traceback" not in err


def test_cli_refuses_a_missing_certificate_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A --cert that does not exist is a usage error (exit 2) named on stderr."""
    missing = tmp_path / "nope.pem"
    with pytest.raises(SystemExit) as exit_info:
        client_main(["policies", "--cert", str(missing), "--key", str(missing)])
    assert exit_info.value.code == 2
    assert "--cert" in capsys.readouterr().err


@pytest.mark.parametrize("setting", ["tls_cert", "tls_key", "tls_client_ca"])
def test_server_refuses_to_start_with_an_unreadable_tls_file(
    evaluator: Evaluator, pki: Pki, tmp_path: Path, setting: str
) -> None:
    """A missing certificate, key or client CA stops start-up with the flag named, before binding."""
    settings = {
        "tls_cert": str(pki.server.cert),
        "tls_key": str(pki.server.key),
        "tls_client_ca": str(pki.ca.cert),
        setting: str(tmp_path / "missing.pem"),
    }
    flag = "--" + setting.replace("_", "-")
    with pytest.raises(CredentialsError, match=flag):
        build_server(Config(host="127.0.0.1", port=0, **settings), evaluator)
