"""`fairpath reload`, `status` and `policy validate`: the real CLI against a real server process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import run_fairpath as fairpath
from tests.support.policy_dirs import NAME, lock, write_version
from tests.support.servers import ServerProcess


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    """A server process over a directory holding one locked mini-policy version, no watcher."""
    root = tmp_path_factory.mktemp("admin")
    policies = root / "policies"
    write_version(policies, "1.0.0")
    lock(policies)
    with ServerProcess(policies, "--watch-seconds", "0", "--store", f"sqlite:///{root / 'd.sqlite3'}",
                       cwd=root) as server:
        server.wait_serving()
        yield server, root


def test_status_lists_what_serves_and_exits_0_after_a_clean_start(served: tuple[ServerProcess, Path]) -> None:
    """Status prints the serving versions and a clean last reload, and exits 0."""
    server, root = served
    done = fairpath("status", "--target", server.target, cwd=root)
    assert done.returncode == 0, done.stderr
    assert [NAME, "1.0.0", "active", "2020-01-01", "yes"] in [line.split()[:5] for line in done.stdout.splitlines()]
    assert "Last reload (startup): ok" in done.stdout


def test_reload_and_status_explain_a_refused_version_with_its_file_and_exit_1(
    served: tuple[ServerProcess, Path],
) -> None:
    """A draft whose own case fails: reload and status name the tests file and the case, and exit 1."""
    server, root = served
    write_version(root / "policies", "1.1.0", status="draft", wrong=True)
    reloaded = fairpath("reload", "--target", server.target, cwd=root)
    assert reloaded.returncode == 1, reloaded.stdout + reloaded.stderr
    tests_file = str(root / "policies" / NAME / "1.1.0.tests.yaml")
    [line] = [line for line in reloaded.stdout.splitlines() if "[tests]" in line]
    assert line.split()[:2] == ["error", tests_file]
    assert "case 'experienced'" in line
    status = fairpath("status", "--target", server.target, "--json", cwd=root)
    assert status.returncode == 1
    last = json.loads(status.stdout)["last_reload"]
    assert (last["trigger"], last["ok"]) == ("rpc", False)
    assert [v["version"] for v in json.loads(status.stdout)["versions"]] == ["1.0.0"]


def test_validate_reports_problems_with_lines_and_exits_1_or_0(served: tuple[ServerProcess, Path]) -> None:
    """Policy validate: a valid draft with its cases exits 0; a broken condition is reported at its line, exit 1."""
    server, root = served
    good = write_version(root / "drafts", "2.0.0", status="draft")
    done = fairpath("policy", "validate", str(good), "--target", server.target, cwd=root)
    assert (done.returncode, done.stdout.splitlines()[0]) == (0, f"{NAME} 2.0.0: valid"), done.stdout + done.stderr
    assert "cases: 5 passed, 0 failed" in done.stdout
    bad = root / "drafts" / "bad.yaml"
    text = good.read_text(encoding="utf-8")
    bad.write_text(text.replace("years >= 2", "years >== 2"), encoding="utf-8")
    line = 1 + text[: text.index("- id: r2")].count("\n")  # problems name the line where their rule starts
    done = fairpath("policy", "validate", str(bad), "--target", server.target, cwd=root)
    assert done.returncode == 1
    assert done.stdout.startswith("the draft: NOT valid\n")
    assert f"error  {bad}:{line}  [load]  rule r2: " in done.stdout


def test_validate_of_an_unreadable_file_exits_2_without_calling(tmp_path: Path) -> None:
    """A policy file that does not exist is reported on stderr, exit 2, before any call (no server needed)."""
    done = fairpath("policy", "validate", "absent.yaml", "--target", "127.0.0.1:1", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "error: cannot read absent.yaml: No such file or directory\n"
