"""`fairpath evaluate --policies DIR`: the same answer as the server's, made on this machine, never recorded."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import GUIDE, POLICIES, ROOT
from tests.support.cli import run_fairpath
from tests.support.policy_dirs import NAME, write_version

EXAMPLE = str(ROOT / "clients" / "python" / "examples" / "nurse-unworkable-protocol.yaml")
FOOTNOTE = f"Evaluated on this machine from {POLICIES}, without a service.\n"


def _without_ids(text: str) -> list[str]:
    """The lines of a rendered decision, less the one naming its id, time and request."""
    return [line for line in text.splitlines() if not line.startswith("Decision ")]


def test_text_output_is_the_servers_dry_run_answer(target: str, tmp_path: Path) -> None:
    """Every line but the ids equals the server's --dry-run output; it ends by saying it was made locally."""
    served = run_fairpath("evaluate", "--target", target, "--dry-run", "--policy", GUIDE, "--facts", EXAMPLE,
                          cwd=tmp_path)
    local = run_fairpath("evaluate", "--policies", str(POLICIES), "--policy", GUIDE, "--facts", EXAMPLE,
                         cwd=tmp_path)
    assert (served.returncode, local.returncode) == (0, 0), served.stderr + local.stderr
    assert local.stdout.endswith(FOOTNOTE)
    assert _without_ids(local.stdout.removesuffix(FOOTNOTE)) == _without_ids(served.stdout)
    [ids] = [line for line in local.stdout.splitlines() if line.startswith("Decision ")]
    assert ids.endswith("; dry run, not recorded")


def test_json_output_is_marked_dry_run(tmp_path: Path) -> None:
    """--json prints the decision with dry_run true: it was not, and cannot be, recorded."""
    done = run_fairpath("evaluate", "--policies", str(POLICIES), "--policy", GUIDE, "--facts", EXAMPLE, "--json",
                        cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    decision = json.loads(done.stdout)
    assert (decision["dry_run"], decision["pathway"]["code"]) == (True, "JCG_D_NOT_SINGLE_OUT_FORESIGHT")


def test_invalid_facts_get_the_servers_violations_and_exit_2(target: str, tmp_path: Path) -> None:
    """An undeclared fact and a lower-case answer: the same field violations as the server's, exit 2."""
    facts = tmp_path / "facts.yaml"
    facts.write_text('is_patient_safety_incident: "YES"\nno_such_fact: "YES"\nintent_to_harm: "yes"\n',
                     encoding="utf-8")
    served = run_fairpath("evaluate", "--target", target, "--dry-run", "--policy", GUIDE, "--facts", str(facts),
                          cwd=tmp_path)
    local = run_fairpath("evaluate", "--policies", str(POLICIES), "--policy", GUIDE, "--facts", str(facts),
                         cwd=tmp_path)
    assert (served.returncode, local.returncode) == (2, 2)
    assert local.stdout == ""
    assert sorted(local.stderr.splitlines()) == sorted(served.stderr.splitlines())
    assert any(line.startswith("facts.no_such_fact: ") for line in local.stderr.splitlines())


def test_unknown_policy_or_version_exits_3(tmp_path: Path) -> None:
    """A policy or version not in the directory is NOT_FOUND, exit 3, as from a server."""
    for extra in (["--policy", "no-such-policy"], ["--policy", GUIDE, "--version", "9.9.9"]):
        done = run_fairpath("evaluate", "--policies", str(POLICIES), *extra, "--facts", EXAMPLE, cwd=tmp_path)
        assert done.returncode == 3, done.stderr
        assert done.stderr.startswith("error: NOT_FOUND: policy ")


def test_a_broken_policy_file_or_missing_directory_exits_1_naming_it(tmp_path: Path) -> None:
    """A missing directory, or a policy file that does not load, is reported with its path (and line), exit 1."""
    done = run_fairpath("evaluate", "--policies", "absent", "--policy", NAME, "--facts", EXAMPLE, cwd=tmp_path)
    assert (done.returncode, done.stderr) == (1, "error: policy directory absent does not exist\n")
    path = write_version(tmp_path / "policies", "1.0.0", tests=False)
    path.write_text(path.read_text(encoding="utf-8").replace("years >= 2", "years >== 2"), encoding="utf-8")
    done = run_fairpath("evaluate", "--policies", "policies", "--policy", NAME, "--facts", EXAMPLE, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: cannot load the policies: policies/{NAME}/1.0.0.yaml:")


def test_a_draft_version_evaluates_without_lock_or_tests(tmp_path: Path) -> None:
    """A draft with no lock line and no cases still evaluates: the files are taken as they are."""
    write_version(tmp_path / "policies", "1.0.0", status="draft", tests=False)
    facts = tmp_path / "facts.json"
    facts.write_text('{"intent_to_harm": "NO", "years": 5}', encoding="utf-8")
    done = run_fairpath("evaluate", "--policies", "policies", "--policy", NAME, "--version", "1.0.0",
                        "--facts", str(facts), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["pathway"]["code"] == "ACT"
