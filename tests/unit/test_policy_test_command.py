"""``fairpath policy test``: each version's cases through the real engine, coverage, and the exit code.

Broken suites start from the minimal policy and :func:`minimal_cases` (which
pass with full coverage) and break one thing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fairpath.cli import main
from fairpath.policy.registry import policy_files

from tests.conftest import GUIDE, POLICIES
from tests.support.cases import minimal_cases, write_cases
from tests.support.policy_builder import minimal_policy, write_policy


def write_suite(root: Path, cases: dict[str, object] | None = None, **policy: object) -> Path:
    """Write the minimal policy (changed by ``policy``) and its cases under ``root``; return its path."""
    document = minimal_policy()
    document.update(policy)
    path = write_policy(root / "mini-policy" / "1.2.3.yaml", document)
    write_cases(path, cases if cases is not None else minimal_cases())
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run ``fairpath policy test ARGS``; return the exit code and stdout."""
    code = main(["policy", "test", *args])
    return code, capsys.readouterr().out


def test_real_policies_pass_with_full_coverage(capsys: pytest.CaptureFixture[str]) -> None:
    """Every version under policies/ passes its own cases and exercises everything: exit 0."""
    code, out = run(capsys, str(POLICIES), "--quiet")
    count = len(policy_files(POLICIES))
    assert code == 0, out
    assert out.splitlines()[-1] == f"{count} policy version(s): {count} passed, 0 failed"
    assert "never exercised" not in out


def test_passing_suite_prints_the_coverage_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A passing version prints its case count, a table of item, kind and hits, and PASS."""
    path = write_suite(tmp_path)
    code, out = run(capsys, str(path))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"mini-policy@1.2.3  {path}"
    assert lines[1] == "  5 case(s): 5 passed, 0 failed"
    assert lines[2] == "  coverage: 10 of 10 items exercised"
    assert lines[3].split() == ["item", "kind", "hits"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[4:14]}
    assert rows["r1:FIRED"] == ["rule", "1"]
    assert rows["r2:UNANSWERED"] == ["rule", "1"]
    assert rows["a1:FIRED"] == ["advice", "2"]
    assert rows["c1:FIRED"] == ["check", "1"]
    assert rows["pathway:ACT"] == ["pathway", "2"]
    assert lines[14] == "  PASS"


def test_a_failing_case_is_printed_with_its_differences(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A case whose expectation is wrong fails the run and shows what was expected and what came."""
    cases = minimal_cases()
    cases["cases"][0]["expect"]["pathway"] = "LEARN"
    code, out = run(capsys, str(write_suite(tmp_path, cases)))
    assert code == 1
    assert "  FAIL  intent leads to ACT" in out
    assert "          pathway: expected 'LEARN', got 'ACT'" in out
    assert "  FAIL: 1 case(s) failed" in out
    assert out.splitlines()[-1] == "1 policy version(s): 0 passed, 1 failed"


def test_an_item_never_exercised_fails_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without the case that stops at r2, r2:UNANSWERED has no hits: marked, and the run fails."""
    cases = minimal_cases()
    cases["cases"] = [case for case in cases["cases"] if case["name"] != "years unanswered"]
    code, out = run(capsys, str(write_suite(tmp_path, cases)), "--quiet")
    assert code == 1
    assert "  coverage: 9 of 10 items exercised" in out
    [row] = [line for line in out.splitlines() if "← never exercised" in line]
    assert row.split() == ["r2:UNANSWERED", "rule", "0", "←", "never", "exercised"]
    assert "  FAIL: 1 item(s) never exercised" in out


def test_an_unreachable_pathway_can_never_be_covered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pathway no rule leads to is an item no case can exercise, so the run fails."""
    pathways = [*minimal_policy()["pathways"],
                {"code": "SPARE", "title": "Spare", "recommendation": "r", "individual_directed": False}]
    code, out = run(capsys, str(write_suite(tmp_path, pathways=pathways)))
    assert code == 1
    assert "pathway:SPARE" in next(line for line in out.splitlines() if "← never exercised" in line)


def test_a_version_without_cases_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A policy file with no tests file beside it fails, naming the file to write."""
    path = write_policy(tmp_path / "mini-policy" / "1.2.3.yaml", minimal_policy())
    code, out = run(capsys, str(tmp_path))
    assert code == 1
    tests = path.with_name("1.2.3.tests.yaml")
    assert f"  FAIL  {tests}: no test cases: write them in 1.2.3.tests.yaml" in out


def test_a_broken_policy_file_fails_with_its_position(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A policy that does not load fails with the loader's file:line message; the others still run."""
    document = minimal_policy()
    document["rules"][0]["when"] = "intent_to_harm is MAYBE"
    broken = write_policy(tmp_path / "broken" / "1.0.0.yaml", document)
    write_suite(tmp_path)
    code, out = run(capsys, str(tmp_path))
    assert code == 1
    assert f"  FAIL  {broken}:" in out
    assert "'MAYBE' is not one of intent_to_harm's values" in out
    assert out.splitlines()[-1] == "2 policy version(s): 1 passed, 1 failed"


def test_a_tests_file_path_tests_its_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Naming the tests file runs the policy it belongs to."""
    path = write_suite(tmp_path)
    code, out = run(capsys, str(path.with_name("1.2.3.tests.yaml")), "-q")
    assert code == 0
    assert out.startswith(f"mini-policy@1.2.3  {path}")


def test_one_policy_directory(capsys: pytest.CaptureFixture[str]) -> None:
    """A policy's directory runs each of its versions."""
    code, out = run(capsys, str(POLICIES / GUIDE), "-q")
    versions = len(policy_files(POLICIES / GUIDE))
    assert code == 0
    assert out.splitlines()[-1] == f"{versions} policy version(s): {versions} passed, 0 failed"


def test_default_path_comes_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without PATH the command tests $FAIRPATH_POLICIES."""
    write_suite(tmp_path)
    monkeypatch.setenv("FAIRPATH_POLICIES", str(tmp_path))
    code, out = run(capsys, "-q")
    assert code == 0
    assert out.startswith("mini-policy@1.2.3")


def test_a_missing_path_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A path that does not exist is a usage error."""
    assert main(["policy", "test", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
