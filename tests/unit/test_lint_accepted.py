"""Accepted lint findings (``<version>.accepted.yaml``).

Lint counts them instead of warning, lists them on request, reports acceptances that match nothing, and nothing else
reads the file as a policy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from fairpath.policy.lock import plan_lock
from fairpath.policy.registry import PolicyRegistry, policy_files

from tests.conftest import POLICIES
from tests.support.cli import run_fairpath

PRE = "pre-formal-check"


def copy_pre_formal(root: Path, *, accepted: bool = True) -> Path:
    """Copy pre-formal-check 1.0.0 (with its accepted findings unless told not to) and the lock into ``root``."""
    folder = root / PRE
    folder.mkdir(parents=True)
    for name in ("1.0.0.yaml", "1.0.0.tests.yaml", *(["1.0.0.accepted.yaml"] if accepted else [])):
        shutil.copy2(POLICIES / PRE / name, folder / name)
    shutil.copy2(POLICIES / "policies.lock", root / "policies.lock")
    return folder


def test_the_shipped_findings_are_accepted_and_lint_is_quiet(tmp_path: Path) -> None:
    """pre-formal-check 1.0.0's two warnings are counted as accepted: no warning line, exit 0, a hint to list them."""
    folder = copy_pre_formal(tmp_path)
    done = run_fairpath("policy", "lint", str(folder / "1.0.0.yaml"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "warning:" not in done.stdout
    assert done.stdout.splitlines()[-1] == (
        "1 file(s): 0 errors, 0 warnings, 2 accepted (--show-accepted lists them with their reasons)")


def test_show_accepted_lists_each_finding_with_its_reason(tmp_path: Path) -> None:
    """--show-accepted prints the finding as lint words it, then the reviewer's reason from the file."""
    folder = copy_pre_formal(tmp_path)
    done = run_fairpath("policy", "lint", "--show-accepted", str(folder / "1.0.0.yaml"), cwd=tmp_path)
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "warning: rule S4: 'then' and 'else' both lead to rule P1" in text
    assert "[answer-leads-nowhere] accepted in 1.0.0.accepted.yaml: On purpose (design note D2" in text
    assert "[overlapping-conditions] accepted in 1.0.0.accepted.yaml: On purpose" in text


def test_without_the_file_the_warnings_are_back(tmp_path: Path) -> None:
    """The acceptance, not a change to lint, silences them: without the file both warnings print."""
    folder = copy_pre_formal(tmp_path, accepted=False)
    done = run_fairpath("policy", "lint", str(folder / "1.0.0.yaml"), cwd=tmp_path)
    assert done.stdout.count(" warning: ") == 2
    assert done.stdout.splitlines()[-1] == "1 file(s): 0 errors, 2 warnings"


def test_an_acceptance_that_matches_no_finding_is_itself_a_warning(tmp_path: Path) -> None:
    """A stale entry (the rule changed, or never warned) is reported at its line in the accepted file."""
    folder = copy_pre_formal(tmp_path)
    sidecar = folder / "1.0.0.accepted.yaml"
    sidecar.write_text(sidecar.read_text(encoding="utf-8") + (
        "  - check: dead-branch\n    rule: P1\n    reason: no longer true\n"), encoding="utf-8")
    done = run_fairpath("policy", "lint", str(folder / "1.0.0.yaml"), cwd=tmp_path)
    assert done.returncode == 0
    [line] = [line for line in done.stdout.splitlines() if "[stale-acceptance]" in line]
    assert line.strip().startswith(f"{sidecar}:")
    assert "accepts a dead-branch finding on rule P1, but lint reports no such warning" in line


def test_an_acceptance_without_a_reason_is_an_error(tmp_path: Path) -> None:
    """Accepting needs a reason: an entry without one fails lint (exit 1), naming the file and entry."""
    folder = copy_pre_formal(tmp_path)
    (folder / "1.0.0.accepted.yaml").write_text(
        "accepted:\n  - check: answer-leads-nowhere\n    rule: S4\n", encoding="utf-8")
    done = run_fairpath("policy", "lint", str(folder / "1.0.0.yaml"), cwd=tmp_path)
    assert done.returncode == 1
    assert "accepted[0] must give check, rule and reason" in done.stdout


def test_the_accepted_file_is_not_a_policy_and_the_lock_does_not_cover_it(tmp_path: Path) -> None:
    """The registry, the lock and the scan skip it: the locked 1.0.0 keeps its digest and loads as before."""
    copy_pre_formal(tmp_path)
    assert [path.name for path in policy_files(tmp_path)] == ["1.0.0.yaml"]
    assert [p.key for p in PolicyRegistry.from_directory(tmp_path).all()] == [f"{PRE}@1.0.0"]
    plan = plan_lock(tmp_path)
    assert plan.ok
    assert not plan.added
    assert not plan.mismatched
