"""Policy scenarios as data: every ``policies/<name>/<version>.tests.yaml`` case, through the real engine.

The cases are run by :mod:`fairpath.policy.cases`, the same runner as
``fairpath policy test`` and the reload gate.
"""

from __future__ import annotations

from typing import Any

import pytest
from fairpath.policy.cases import cases_file, load_cases
from fairpath.policy.model import Policy
from fairpath.policy.registry import policy_files
from fairpath.serving.evaluator import Evaluator
from fairpath.serving.gate import check_case, run_cases

from tests.conftest import POLICIES

EVALUATOR = Evaluator.from_directory(POLICIES)
VERSIONS = EVALUATOR.registry.all()


def _cases(policy: Policy) -> list[dict[str, Any]]:
    path = cases_file(policy.path)
    return load_cases(path.read_bytes(), policy, str(path))


CASES = [
    pytest.param(policy, case, id=f"{policy.key}: {case['name']}") for policy in VERSIONS for case in _cases(policy)
]


def test_every_policy_version_has_scenarios() -> None:
    """Each policy file has a scenario file beside it with at least one case."""
    for path in policy_files(POLICIES):
        assert cases_file(path).exists(), f"{path} has no {cases_file(path).name}"
    assert CASES


@pytest.mark.parametrize(("policy", "case"), CASES)
def test_scenario(policy: Policy, case: dict[str, Any]) -> None:
    """The engine's decision matches the scenario's expectation exactly."""
    decision = EVALUATOR.evaluate(policy.name, case["facts"], version=policy.version)
    assert check_case(case, decision) == ()


@pytest.mark.parametrize("policy", VERSIONS, ids=lambda p: p.key)
def test_scenarios_cover_every_rule_and_pathway(policy: Policy) -> None:
    """A policy's scenarios exercise every rule outcome, advice, check and pathway the walk can reach."""
    report = run_cases(
        EVALUATOR.compiled(policy),
        _cases(policy),
        lambda facts: EVALUATOR.evaluate(policy.name, facts, version=policy.version),
    )
    assert report.failed == 0
    assert [item.item for item in report.uncovered] == []
