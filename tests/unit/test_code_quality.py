"""The house rules for hand-written code hold: ruff and mypy --strict pass (config in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

BIN = Path(sys.executable).parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=600)


def test_ruff_finds_nothing() -> None:
    """The ruff check is clean on service, clients, tests and the generator (generated code excluded)."""
    result = _run(str(BIN / "ruff"), "check", "service", "clients", "tests", "proto")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_finds_nothing() -> None:
    """The mypy --strict check is clean on fairpath and fairpath_client."""
    result = _run(str(BIN / "mypy"))
    assert result.returncode == 0, result.stdout + result.stderr
