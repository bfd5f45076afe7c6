"""Chained policies at (re)load, through a real server: refusals reported by GetStatus and ``fairpath status``.

A cycle between two policies, and a requirement of a version that is not served, are refused with a
``requires`` problem naming the file and the line; every other version keeps serving, chained
``pre-formal-check`` 2.0.0 included. A reload that brings a cycle in refuses only the changed file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fairpath.api.server import Running
from fairpath.app import build_server
from fairpath.config import Config
from fairpath.serving.evaluator import Evaluator
from fairpath.serving.reload import Reloader
from fairpath_client import FairpathClient

from tests.support.cli import run_fairpath
from tests.support.policy_builder import line_of, minimal_policy, write_policy
from tests.support.policy_dirs import copy_policies

GUIDE_B = {
    "is_patient_safety_incident": "YES", "safeguarding_concern": "NO", "individual_concern_raised": "YES",
    "intent_to_harm": "NO", "substance_abuse_indicated": "YES", "exclusion_under_consideration": "NO",
}


def _chained(root: Path, name: str, requires: str, version: str = "1.0.0") -> Path:
    """Write a draft ``name`` (drafts may serve unlocked) requiring ``requires``'s decision."""
    document: dict[str, Any] = minimal_policy(name=name, version="1.0.0", status="draft")
    document["facts"].append({"name": "upstream", "type": "enum", "values": ["ACT", "LEARN"], "question": "Up?"})
    document["requires"] = [{"policy": requires, "version": version, "facts": {"upstream": "pathway"}}]
    return write_policy(root / name / "1.0.0.yaml", document)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A copy of the real policies, plus two drafts requiring each other."""
    policies = copy_policies(tmp_path / "policies")
    _chained(policies, "cycle-a", "cycle-b")
    _chained(policies, "cycle-b", "cycle-a")
    return policies


@pytest.fixture
def served(root: Path, tmp_path: Path) -> Iterator[tuple[Running, Reloader]]:
    """A server over ``root``, started as ``fairpath serve`` starts: with the start-up reload."""
    evaluator = Evaluator()
    reloader = Reloader(evaluator, root)
    reloader.reload("startup")
    running = build_server(Config(host="127.0.0.1", port=0, store=f"sqlite:///{tmp_path / 'd.sqlite3'}"),
                           evaluator, reloader)
    running.start()
    yield running, reloader
    running.stop(None).wait(5)
    evaluator.close()


def test_a_cycle_is_refused_at_load_and_reported_while_the_rest_serves(
    served: tuple[Running, Reloader], root: Path
) -> None:
    """GetStatus names both files of the cycle, at their requirement's line; chained 2.0.0 still evaluates."""
    running, _ = served
    with FairpathClient(f"127.0.0.1:{running.port}", timeout=30) as client:
        status = client.get_status()
        decision = client.evaluate("pre-formal-check", GUIDE_B, version="2.0.0")
    assert status.last_reload is not None
    assert not status.last_reload.ok
    problems = {p.path: p for p in status.last_reload.problems if p.check == "requires"}
    for name in ("cycle-a", "cycle-b"):
        path = root / name / "1.0.0.yaml"
        problem = problems[str(path)]
        assert problem.line == line_of(path, "- policy: cycle-")
        assert problem.severity == "error"
        assert "requirement cycle: cycle-a@1.0.0 -> cycle-b@1.0.0 -> cycle-a@1.0.0" in problem.message
    serving = {f"{v.name}@{v.version}" for v in status.versions}
    assert not {"cycle-a@1.0.0", "cycle-b@1.0.0"} & serving
    assert {"pre-formal-check@2.0.0", "pre-formal-check@1.0.0", "nhs-just-culture-guide@1.0.1"} <= serving
    assert decision.pathway is not None
    assert decision.pathway.code == "TRIAGE_HEALTH_AND_WELLBEING_PATHWAY"

    shown = run_fairpath("status", "--target", f"127.0.0.1:{running.port}", cwd=root)
    assert shown.returncode == 1
    line = line_of(root / "cycle-a" / "1.0.0.yaml", "- policy: cycle-")
    assert f"{root / 'cycle-a' / '1.0.0.yaml'}:{line}  [requires]" in shown.stdout
    assert "requirement cycle: cycle-a@1.0.0 -> cycle-b@1.0.0 -> cycle-a@1.0.0" in shown.stdout


def test_a_reload_bringing_a_cycle_in_refuses_only_the_changed_file(
    served: tuple[Running, Reloader], root: Path
) -> None:
    """cycle-b is rewritten to require the guide (it serves), then back to cycle-a: only it is refused again."""
    running, reloader = served
    _chained(root, "cycle-b", "nhs-just-culture-guide")  # its upstream enum cannot take the guide's pathways
    result = reloader.reload("rpc")
    assert "no version of cycle-b is served" in _requires_messages(result, "cycle-a")[0]
    assert "can give pathway" in _requires_messages(result, "cycle-b")[0]

    fixed: dict[str, Any] = minimal_policy(name="cycle-b", version="1.0.0", status="draft")
    write_policy(root / "cycle-b" / "1.0.0.yaml", fixed)  # requires nothing: both now serve
    assert reloader.reload("rpc").ok is False  # cycle-b has no test cases: refused by the test gate…
    (root / "cycle-b" / "1.0.0.tests.yaml").write_text(
        "policy: cycle-b\nversion: 1.0.0\ncases:\n  - name: intent\n    facts: {intent_to_harm: 'YES'}\n"
        "    expect: {pathway: ACT, sub_reason: intent, fired: [r1], advice: [HR_ADVICE]}\n", encoding="utf-8")
    (root / "cycle-a" / "1.0.0.tests.yaml").write_text(
        "policy: cycle-a\nversion: 1.0.0\ncases:\n  - name: intent upstream\n"
        "    facts: {intent_to_harm: 'YES'}\n"
        "    expect: {pathway: ACT, sub_reason: intent, fired: [r1], advice: [HR_ADVICE]}\n", encoding="utf-8")
    result = reloader.reload("rpc")
    assert {"cycle-a@1.0.0", "cycle-b@1.0.0"} <= set(result.loaded), result.problems

    _chained(root, "cycle-b", "cycle-a")  # back into a cycle: the changed file is blamed, cycle-a keeps serving
    result = reloader.reload("rpc")
    assert "requirement cycle" in _requires_messages(result, "cycle-b")[0]
    assert _requires_messages(result, "cycle-a") == []
    with FairpathClient(f"127.0.0.1:{running.port}", timeout=30) as client:
        decision = client.evaluate("cycle-a", {"intent_to_harm": "YES"}, version="1.0.0")
    assert decision.required[0].decision is not None
    assert decision.required[0].decision.policy.name == "cycle-b"


def _requires_messages(result: Any, name: str) -> list[str]:
    return [p.message for p in result.problems if p.check == "requires" and f"/{name}/" in p.path]


def test_validate_policy_runs_a_chained_drafts_cases_through_the_served_versions_it_requires(
    served: tuple[Running, Reloader], root: Path
) -> None:
    """ValidatePolicy on pre-formal-check 2.0.0's text: its 28 cases pass through the served guide.

    A draft requiring a policy this server does not serve is not valid, and says which.
    """
    running, _ = served
    text = (root / "pre-formal-check" / "2.0.0.yaml").read_text(encoding="utf-8")
    cases = (root / "pre-formal-check" / "2.0.0.tests.yaml").read_text(encoding="utf-8")
    with FairpathClient(f"127.0.0.1:{running.port}", timeout=60) as client:
        report = client.validate_policy(text, cases, path="pre-formal-check/2.0.0.yaml")
        missing = client.validate_policy(text.replace("policy: nhs-just-culture-guide", "policy: no-such-guide"),
                                         cases, path="draft.yaml")
    assert report.ok, report.problems
    assert (report.passed, report.failed) == (28, 0)
    assert not missing.ok
    assert "requires no-such-guide@current: no version of no-such-guide is served" in missing.problems[0].message


def test_offline_evaluate_and_policy_test_take_the_required_policy_from_the_same_directory(
    root: Path, tmp_path: Path
) -> None:
    """`fairpath evaluate --policies DIR` and `fairpath policy test` run 2.0.0 through the guide found beside it.

    The cycle drafts in the same directory do not stop either: only the asked-for policy's chain counts.
    """
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps(GUIDE_B), encoding="utf-8")
    evaluated = run_fairpath("evaluate", "--policies", str(root), "--policy", "pre-formal-check", "--version",
                             "2.0.0", "--facts", str(facts), "--json", cwd=tmp_path)
    tested = run_fairpath("policy", "test", str(root / "pre-formal-check" / "2.0.0.yaml"), cwd=tmp_path)
    (root / "cycle-a" / "1.0.0.tests.yaml").write_text(
        "policy: cycle-a\nversion: 1.0.0\ncases:\n  - {name: any, facts: {}, expect: {status: DECIDED}}\n",
        encoding="utf-8")
    cycled = run_fairpath("policy", "test", str(root / "cycle-a" / "1.0.0.yaml"), cwd=tmp_path)

    assert evaluated.returncode == 0, evaluated.stderr
    decision = json.loads(evaluated.stdout)
    assert decision["pathway"]["code"] == "TRIAGE_HEALTH_AND_WELLBEING_PATHWAY"
    assert decision["required"][0]["decision"]["pathway"]["code"] == "JCG_B_SUBSTANCE_ABUSE"
    assert decision["required"][0]["decision"]["dry_run"] is True
    assert tested.returncode == 0, tested.stdout
    assert "1 policy version(s): 1 passed, 0 failed" in tested.stdout
    assert cycled.returncode == 1
    assert "requirement cycle: cycle-a@1.0.0 -> cycle-b@1.0.0 -> cycle-a@1.0.0" in cycled.stdout
