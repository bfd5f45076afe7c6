"""Run the real ``fairpath`` command line as a subprocess, as a user's shell would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_fairpath(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m fairpath ARGS`` to completion in ``cwd``; output is captured as text.

    ``FAIRPATH_TARGET`` is cleared so a developer's environment cannot redirect the call.
    """
    env = {key: value for key, value in os.environ.items() if key != "FAIRPATH_TARGET"}
    return subprocess.run([sys.executable, "-m", "fairpath", *args], cwd=cwd, capture_output=True, text=True,
                          input=stdin, timeout=120, check=False, env=env)
