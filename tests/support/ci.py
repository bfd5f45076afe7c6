"""CI runs every test: what may skip on a developer's machine fails under ``CI=true``."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """Whether this is a CI run (``CI=true``, as ``.ci/run`` sets), where no test may skip."""
    return os.environ.get("CI", "").strip().lower() == "true"


def skip_outside_ci(reason: str, fix: str) -> NoReturn:
    """Skip for ``reason`` on a developer's machine; under CI=true fail instead, saying ``fix``."""
    if in_ci():
        pytest.fail(f"{reason}; CI=true, so this test must run: {fix}", pytrace=False)
    pytest.skip(reason)
