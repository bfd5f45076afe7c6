"""Wait for what another thread or process will make true; fail the test, saying what, if it never is."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest


def wait_until(
    predicate: Callable[[], bool],
    timeout: float = 10,
    message: str = "the condition",
    *,
    details: Callable[[], str] | None = None,
) -> None:
    """Return once ``predicate()`` is true; fail the test after ``timeout`` seconds.

    Args:
        predicate: Polled every 50 ms; it may itself fail the test (e.g. when a server died).
        timeout: Seconds to wait.
        message: What is awaited, for the failure: "timed out waiting for <message>".
        details: Called only on failure, so what it adds (a server's log) is as of then.

    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {message}" + (f":\n{details()}" if details else ""))
        time.sleep(0.05)
