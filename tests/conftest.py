"""Fixtures shared by every tier."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fairpath.serving.evaluator import Evaluator

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
GUIDE = "nhs-just-culture-guide"


@pytest.fixture(scope="session", autouse=True)
def session_store_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Record test servers' decisions in a session temporary file, never in ./fairpath.sqlite3.

    Also exported as FAIRPATH_STORE, which ``fairpath serve`` subprocesses read. Their review
    console is off (FAIRPATH_CONSOLE_PORT=0) unless a test passes ``--console-port``: parallel runs
    must not fight over its default port 8080.
    """
    url = f"sqlite:///{tmp_path_factory.mktemp('decisions') / 'decisions.sqlite3'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FAIRPATH_STORE", url)
        patch.setenv("FAIRPATH_CONSOLE_PORT", "0")
        yield url


@pytest.fixture(scope="session")
def evaluator() -> Iterator[Evaluator]:
    """One evaluator over the real policies/ directory, shared by the session (like a server process)."""
    shared = Evaluator.from_directory(POLICIES)
    yield shared
    shared.close()
