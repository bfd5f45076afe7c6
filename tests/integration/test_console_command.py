"""``fairpath console --target``: the review console on its own, against a service in another process."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.conftest import GUIDE, POLICIES
from tests.support.servers import ServerProcess, free_port
from tests.support.waiting import wait_until


def _get(url: str) -> tuple[int, str, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - loopback http only
            return response.status, response.read().decode(), {k.lower(): v for k, v in response.headers.items()}
    except OSError:
        return 0, "", {}


def test_a_standalone_console_serves_the_remote_services_policies(tmp_path: Path) -> None:
    """The console process lists what the service process serves, with the console's security headers."""
    with ServerProcess(POLICIES, "--watch-seconds", "0", cwd=tmp_path) as server:
        server.wait_serving()
        port = free_port()
        console = subprocess.Popen(
            [sys.executable, "-m", "fairpath", "console", "--target", server.target, "--port", str(port),
             "--policies", str(POLICIES), "--log-format", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: _get(f"{url}/policies")[0] == 200, 30, "the console answering")
            status, page, headers = _get(f"{url}/policies/{GUIDE}/1.0.0")
            assert status == 200
            assert 'data-rule="G1"' in page  # its flowchart, from GetPolicy over gRPC
            assert "Open console" in page  # no auth config: open, and saying so
            assert headers["cache-control"] == "no-store"
            assert "frame-ancestors 'none'" in headers["content-security-policy"]
        finally:
            console.terminate()
            output, _ = console.communicate(timeout=15)
        assert console.returncode == 0, output
        assert '"console_serving"' in output
