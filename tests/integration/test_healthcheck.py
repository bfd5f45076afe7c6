"""`python -m fairpath.healthcheck`, the container HEALTHCHECK, against a real server."""

from __future__ import annotations

import os
import subprocess
import sys

from fairpath.healthcheck import main
from fairpath.serving.evaluator import Evaluator

from tests.support.servers import free_port, serving


def test_exits_0_while_serving_and_1_once_stopped(evaluator: Evaluator) -> None:
    """SERVING is exit 0; after a graceful stop (NOT_SERVING, then nothing listening) it is exit 1."""
    with serving(evaluator) as running:
        target = f"127.0.0.1:{running.port}"
        assert main(["--target", target]) == 0
        assert main(["--target", target, "--service", "fairpath.v1.EvaluationService"]) == 0
        assert main(["--target", target, "--service", "no.such.Service"]) == 1
    assert main(["--target", target, "--timeout", "0.5"]) == 1


def test_module_asks_the_health_port_from_the_environment(evaluator: Evaluator) -> None:
    """As Docker runs it (no flags), the check finds the health port in FAIRPATH_HEALTH_PORT."""
    health_port = free_port()
    with serving(evaluator, health_port=health_port):
        result = subprocess.run(
            [sys.executable, "-m", "fairpath.healthcheck"],
            env={**os.environ, "FAIRPATH_HEALTH_PORT": str(health_port), "FAIRPATH_PORT": "1"},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 0, result.stderr
