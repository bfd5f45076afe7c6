"""`fairpath serve` on a non-loopback host: refused without TLS and roles unless --insecure says so."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from fairpath_client import FairpathClient

from tests.conftest import GUIDE
from tests.integration.security.conftest import TOKENS
from tests.support.policy_dirs import copy_policies
from tests.support.servers import ServerProcess

ANY_ADDRESS = "0.0.0.0"  # noqa: S104 - the point of these tests; clients only ever connect to 127.0.0.1


def test_an_open_non_loopback_host_is_refused_before_binding(tmp_path: Path) -> None:
    """--host 0.0.0.0 without TLS, roles or --insecure: exit 2, one line naming the fix, the port never opened."""
    root = copy_policies(tmp_path / "policies", GUIDE)
    with ServerProcess(root, "--host", ANY_ADDRESS, cwd=tmp_path) as server:
        assert server.wait(timeout=30) == 2
        output = "".join(server.lines)
        port = int(server.target.rsplit(":", 1)[1])
    assert output.startswith(f"fairpath serve: error: refusing to serve on {ANY_ADDRESS}")
    assert "Set --tls-cert and --tls-key and --auth-config, or pass --insecure (FAIRPATH_INSECURE=true)" in output
    assert "Traceback" not in output
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


def test_fairpath_insecure_serves_without_tls_and_warns_once(
    tmp_path: Path, auth_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FAIRPATH_INSECURE=true with roles but no TLS: serves (tokens still checked) and warns what is missing."""
    root = copy_policies(tmp_path / "policies", GUIDE)
    monkeypatch.setenv("FAIRPATH_INSECURE", "true")
    args = ("--host", ANY_ADDRESS, "--auth-config", str(auth_config), "--watch-seconds", "0")
    with ServerProcess(root, *args, cwd=tmp_path) as server:
        server.wait_serving()
        token, _ = TOKENS["case-system"]
        with FairpathClient(server.target, token=token) as client:
            decision = client.evaluate(GUIDE, {"is_patient_safety_incident": "NO"}, dry_run=True)
        assert (decision.policy.name, decision.caller) == (GUIDE, "token:case-system")
        (warning,) = server.events("serving_insecure")
        assert server.stop() == 0
    assert warning["level"] == "warning"
    assert (warning["host"], warning["without"]) == (ANY_ADDRESS, ["tls"])
