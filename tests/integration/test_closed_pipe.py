"""A reader that stops early (`fairpath policy test | head -1`) never changes a command's exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.policy_dirs import write_version


def run_into_closed_pipe(*args: str, cwd: Path) -> tuple[int, str]:
    """Run ``python ARGS`` with stdout a pipe nobody reads (closed before it starts); return exit code and stderr.

    Closing the read end first makes the command's very first write fail, whatever the pipe's buffer size.
    """
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, *args], cwd=cwd, stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=120, check=False)
    finally:
        os.close(write_end)
    return done.returncode, done.stderr


def test_failing_policy_test_stays_1(tmp_path: Path) -> None:
    """`fairpath policy test` with a failing case exits 1 into a closed pipe, without a traceback."""
    write_version(tmp_path / "policies", "1.0.0", wrong=True)
    write_version(tmp_path / "policies", "1.1.0")
    assert run_into_closed_pipe("-m", "fairpath", "policy", "test", "policies", cwd=tmp_path) == (1, "")


def test_passing_policy_test_stays_0(tmp_path: Path) -> None:
    """`fairpath policy test` whose cases all pass exits 0 into a closed pipe (the reader's leaving is no failure)."""
    write_version(tmp_path / "policies", "1.0.0")
    assert run_into_closed_pipe("-m", "fairpath", "policy", "test", "policies", cwd=tmp_path) == (0, "")


def test_client_entry_point_keeps_its_code(target: str, tmp_path: Path) -> None:
    """`python -m fairpath_client policies` exits 0 into a closed pipe; `evaluate` of invalid facts still exits 2."""
    assert run_into_closed_pipe("-m", "fairpath_client", "policies", "--target", target, cwd=tmp_path) == (0, "")
    facts = tmp_path / "facts.json"
    facts.write_text('{"no_such_fact": "YES"}', encoding="utf-8")
    code, stderr = run_into_closed_pipe("-m", "fairpath_client", "evaluate", "--target", target, "--policy",
                                        "nhs-just-culture-guide", "--facts", str(facts), cwd=tmp_path)
    assert code == 2
    assert stderr.startswith("facts.no_such_fact: not a fact of nhs-just-culture-guide@")
