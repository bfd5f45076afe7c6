"""Policy scenarios as data: every ``policies/<name>/<version>.tests.yaml`` case, through the real engine.

Each case gives facts and the expected status, pathway, sub-reason, fired walk
rules, missing facts, advice codes and warnings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from fairpath.decisions import RuleKind, RuleResult
from fairpath.evaluation import Evaluator
from tests.conftest import POLICIES


def _cases() -> list[Any]:
    params = []
    for path in sorted(POLICIES.rglob("*.tests.yaml")):
        document = yaml.safe_load(path.read_text())
        for case in document["cases"]:
            params.append(
                pytest.param(document["policy"], document["version"], case,
                             id=f"{document['policy']}@{document['version']}: {case['name']}")
            )
    return params


CASES = _cases()


def test_every_policy_version_has_scenarios() -> None:
    """Each policy file has a scenario file beside it with at least one case."""
    for path in POLICIES.rglob("*.yaml"):
        if not path.name.endswith(".tests.yaml"):
            tests = Path(str(path).removesuffix(".yaml") + ".tests.yaml")
            assert tests.exists(), f"{path} has no {tests.name}"
    assert CASES


@pytest.mark.parametrize(("policy", "version", "case"), CASES)
def test_scenario(evaluator: Evaluator, policy: str, version: str, case: dict[str, Any]) -> None:
    """The engine's decision matches the scenario's expectation exactly."""
    decision = evaluator.evaluate(policy, case["facts"], version=version)
    expect = case["expect"]
    assert decision.status.value == expect["status"]
    assert (decision.pathway.code if decision.pathway else "") == (expect.get("pathway") or "")
    assert (decision.pathway.sub_reason if decision.pathway else "") == str(expect.get("sub_reason") or "")
    fired = [t.rule_id for t in decision.trace if t.kind is RuleKind.QUESTION and t.result is RuleResult.FIRED]
    assert fired == [str(rule) for rule in expect["fired"]]
    assert [m.fact for m in decision.missing_facts] == list(expect.get("missing") or [])
    assert {a.code for a in decision.advice} == set(expect["advice"])
    assert {w.code for w in decision.warnings} == set(expect.get("warnings") or [])
    # Pins which rule produced a code that several rules share (MHPS, regulators).
    assert set(expect.get("advice_rules_include") or []) <= {a.rule_id for a in decision.advice}


def test_scenarios_cover_every_rule_and_pathway() -> None:
    """Together, a policy's scenarios fire every rule, fire every advice and check, and reach every pathway."""
    evaluator = Evaluator.from_directory(POLICIES)
    seen: dict[str, set[str]] = {}
    for param in CASES:
        policy, version, case = param.values
        decision = evaluator.evaluate(policy, case["facts"], version=version)
        key = f"{policy}@{version}"
        seen.setdefault(key, set()).update(
            f"{t.rule_id}:{t.result.value}" for t in decision.trace if t.result is not RuleResult.NOT_REACHED
        )
        if decision.pathway:
            seen[key].add(f"pathway:{decision.pathway.code}")
    for loaded in evaluator.registry.all():
        covered = seen.get(loaded.key, set())
        wanted = {f"{rule.id}:{result}" for rule in loaded.rules for result in ("FIRED", "NOT_FIRED", "UNANSWERED")
                  if not (result == "UNANSWERED" and not rule.needs)}
        wanted |= {f"{rule.id}:FIRED" for rule in (*loaded.advice, *loaded.checks)}
        wanted |= {f"pathway:{code}" for code in loaded.pathways}
        assert not wanted - covered, f"{loaded.key}: never exercised: {sorted(wanted - covered)}"
