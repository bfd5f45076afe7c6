"""The trace agrees with the engine: a property test over combinations of answers.

durable_rules decides which compiled path matches and which overlays fire; the
trace's per-rule results (fired, not fired, unanswered, not reached) and its
reasons are written outside the engine. These tests check, for random and for
exhaustively enumerated answers, that every part of the decision equals a plain
reading of the policy semantics (``tests/support/reference.py``).
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import yaml
from fairpath.policy.loader import load_bytes
from fairpath.policy.model import FactType, Policy, number_in_range
from fairpath.policy.registry import PolicyRegistry
from fairpath.serving.evaluator import Evaluator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import GUIDE, POLICIES
from tests.support.agreement import assert_agrees, finite_walk, walk_answers
from tests.support.policy_builder import minimal_policy

# The shipped policies, plus the unit tests' minimal policy: the only one with number, bool and
# string facts, so the agreement also covers comparisons on those types.
_MINIMAL = load_bytes(yaml.safe_dump(minimal_policy()).encode(), "minimal.yaml")
EVALUATOR = Evaluator(PolicyRegistry([*PolicyRegistry.from_directory(POLICIES).all(), _MINIMAL]))
POLICY_VERSIONS = EVALUATOR.registry.all()
ABSENT = object()


def _value_strategy(policy: Policy, name: str) -> st.SearchStrategy[Any]:
    spec = policy.facts[name]
    if spec.type in (FactType.ANSWER, FactType.ENUM):
        choices: st.SearchStrategy[Any] = st.sampled_from(spec.values)
    elif spec.type is FactType.SET:
        choices = st.lists(st.sampled_from(spec.values), unique=True)
    elif spec.type is FactType.BOOL:
        choices = st.booleans()
    elif spec.type is FactType.NUMBER:
        choices = st.one_of(st.integers(-5, 50), st.floats(-1e6, 1e6, allow_nan=False).filter(number_in_range))
    else:
        choices = st.text(max_size=20)
    return st.one_of(st.just(ABSENT), st.none(), choices)


@st.composite
def _policy_and_facts(draw: st.DrawFn) -> tuple[Policy, dict[str, Any]]:
    policy = draw(st.sampled_from(POLICY_VERSIONS))
    facts = {}
    for name in policy.facts:
        value = draw(_value_strategy(policy, name))
        if value is not ABSENT:
            facts[name] = value
    return policy, facts


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_policy_and_facts())
def test_random_answers_agree_with_the_engine(case: tuple[Policy, dict[str, Any]]) -> None:
    """For random answers to every fact (unanswered and UNKNOWN included), the decision matches the semantics."""
    policy, facts = case
    assert_agrees(policy, facts, EVALUATOR.evaluate(policy.name, facts, version=policy.version, alone=True))


@pytest.mark.parametrize("policy", [p for p in POLICY_VERSIONS if finite_walk(p)], ids=lambda p: p.key)
def test_every_walk_agrees_with_the_engine(policy: Policy) -> None:
    """Exhaustively: every path through the walk (and every place it can stop unanswered) agrees."""
    walks = walk_answers(policy)
    assert len(walks) >= len(policy.rules)
    overlay_facts = [{}, {"professional_group": "DOCTOR", "exclusion_under_consideration": "YES"}]
    for facts, extra in itertools.product(walks, overlay_facts):
        merged = {**facts, **{k: v for k, v in extra.items() if k in policy.facts}}
        assert_agrees(policy, merged, EVALUATOR.evaluate(policy.name, merged, version=policy.version, alone=True))


def test_guide_is_loaded() -> None:
    """The agreement tests above really run over the guide."""
    assert any(p.name == GUIDE for p in POLICY_VERSIONS)
