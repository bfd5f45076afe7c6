"""Fixtures shared by every tier."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fairpath.evaluation import Evaluator

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
GUIDE = "nhs-just-culture-guide"


@pytest.fixture(scope="session")
def evaluator() -> Iterator[Evaluator]:
    """One evaluator over the real policies/ directory, shared by the session (like a server process)."""
    shared = Evaluator.from_directory(POLICIES)
    yield shared
    shared.close()
