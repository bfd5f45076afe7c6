"""The policy directory scan and a reload's reading of files: symlinks that leave, oversized files.

Each test builds a directory of ``mini-policy`` versions in ``tmp_path``
(:mod:`tests.support.policy_dirs`) and stages it on the real engine.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fairpath.engine.durable import DurableEngine
from fairpath.policy.loader import MAX_POLICY_BYTES, MAX_TESTS_BYTES
from fairpath.policy.registry import policy_files, scan_policy_files
from fairpath.serving.staging import Staged, stage
from fairpath.serving.state import ServingState

from tests.support.policy_dirs import NAME, lock, write_version

OUTSIDE = "ignored: a symlink leading outside the policy directory"


@pytest.fixture(name="engine")
def _engine() -> DurableEngine:
    return DurableEngine(sessions=4)


def _stage(root: Path, engine: DurableEngine) -> Staged:
    staged = stage(root, ServingState.empty(engine), engine, allow_unlocked=True)
    staged.state.supersede()
    return staged


def test_symlinks_leading_out_of_the_directory_are_ignored_and_named(tmp_path: Path) -> None:
    """A file link and a directory link to outside are not scanned; links that stay inside are."""
    root, elsewhere = tmp_path / "policies", tmp_path / "elsewhere"
    write_version(root, "1.0.0")
    write_version(elsewhere, "9.0.0")  # elsewhere/mini-policy/9.0.0.yaml
    (root / "stolen.yaml").symlink_to(elsewhere / NAME / "9.0.0.yaml")
    (root / "linked-dir").symlink_to(elsewhere / NAME)
    (root / ".hidden-copy").mkdir()  # a ConfigMap keeps the real files in a hidden directory
    (root / ".hidden-copy" / "2.0.0.yaml").write_bytes((root / NAME / "1.0.0.yaml").read_bytes())
    (root / "inside.yaml").symlink_to(root / ".hidden-copy" / "2.0.0.yaml")
    scan = scan_policy_files(root)
    assert scan.files == [root / "inside.yaml", root / NAME / "1.0.0.yaml"]
    assert scan.outside == [root / "linked-dir", root / "stolen.yaml"]
    assert policy_files(root) == scan.files


def test_a_directory_reached_through_a_relative_link_that_climbs_out_is_outside(tmp_path: Path) -> None:
    """``policies/up -> ..`` leads to the directory's parent: ignored, not walked."""
    root = tmp_path / "policies"
    write_version(root, "1.0.0")
    (tmp_path / "secret.yaml").write_text("policy: nope\n")
    (root / "up").symlink_to("..")
    scan = scan_policy_files(root)
    assert scan.files == [root / NAME / "1.0.0.yaml"]
    assert scan.outside == [root / "up"]


def test_a_reload_warns_about_each_ignored_link_and_serves_the_rest(tmp_path: Path, engine: DurableEngine) -> None:
    """The reload result carries one warning per link out (path = the link); the versions inside serve."""
    root, elsewhere = tmp_path / "policies", tmp_path / "elsewhere"
    write_version(root, "1.0.0")
    lock(root)
    write_version(elsewhere, "9.0.0")
    (root / "stolen.yaml").symlink_to(elsewhere / NAME / "9.0.0.yaml")
    staged = _stage(root, engine)
    assert [version.policy.key for version in staged.loaded] == [f"{NAME}@1.0.0"]
    assert not staged.refused
    assert [(p.path, p.severity, p.message) for p in staged.warnings] == [
        (str(root / "stolen.yaml"), "warning", OUTSIDE)
    ]


def test_an_oversized_policy_file_is_refused_naming_it(tmp_path: Path, engine: DurableEngine) -> None:
    """A policy file past MAX_POLICY_BYTES is refused at the load step with its path; the others serve."""
    write_version(tmp_path, "1.0.0")
    big = write_version(tmp_path, "2.0.0")
    with big.open("ab") as file:
        file.write(b"#" * MAX_POLICY_BYTES + b"\n")
    staged = _stage(tmp_path, engine)
    assert [version.policy.key for version in staged.loaded] == [f"{NAME}@1.0.0"]
    [refusal] = staged.refused
    [problem] = refusal.problems
    assert (problem.path, problem.check) == (str(big), "load")
    assert problem.message == "larger than 256 KiB, the most a file may hold"


def test_an_oversized_tests_file_refuses_its_version(tmp_path: Path, engine: DurableEngine) -> None:
    """A tests file past MAX_TESTS_BYTES is a ``tests`` problem naming it, and its version does not serve."""
    policy = write_version(tmp_path, "1.0.0")
    tests = policy.with_name("1.0.0.tests.yaml")
    with tests.open("ab") as file:
        file.write(b"#" * MAX_TESTS_BYTES + b"\n")
    staged = _stage(tmp_path, engine)
    assert staged.loaded == []
    [problem] = staged.refused[0].problems
    assert (problem.path, problem.check, problem.message) == (
        str(tests), "tests", "larger than 1024 KiB, the most a file may hold"
    )


def test_a_missing_tests_file_is_still_reported_as_missing(tmp_path: Path, engine: DurableEngine) -> None:
    """No tests file: the version is refused with the 'no test cases' problem, as before the size limit."""
    write_version(tmp_path, "1.0.0", tests=False)
    staged = _stage(tmp_path, engine)
    [problem] = staged.refused[0].problems
    assert problem.check == "tests"
    assert "has no test cases" in problem.message


def test_an_unreadable_policy_file_is_refused_with_the_reason(tmp_path: Path, engine: DurableEngine) -> None:
    """A dangling symlink inside the directory: refused with ``cannot read`` and the OS's reason."""
    write_version(tmp_path, "1.0.0")
    (tmp_path / "gone.yaml").symlink_to(tmp_path / ".nowhere.yaml")
    staged = _stage(tmp_path, engine)
    [refusal] = staged.refused
    assert refusal.problems[0].message == f"cannot read: {os.strerror(2)}"
