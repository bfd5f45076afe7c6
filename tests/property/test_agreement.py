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
from fairpath.decisions import Decision, RuleKind, RuleResult
from fairpath.policy.conditions import holds
from fairpath.policy.facts import normalise_facts
from fairpath.policy.loader import load_bytes
from fairpath.policy.model import FactType, Policy, number_in_range
from fairpath.policy.registry import PolicyRegistry
from fairpath.serving.evaluator import Evaluator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import GUIDE, POLICIES
from tests.support.policy_builder import minimal_policy
from tests.support.reference import expected

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


def assert_agrees(policy: Policy, facts: dict[str, Any], decision: Decision) -> None:
    """Every part of ``decision`` matches the reference reading of ``policy``."""
    clean = normalise_facts(policy, facts)
    want = expected(policy, clean)
    assert decision.status.value == want.status
    assert (decision.pathway.code if decision.pathway else "") == want.pathway
    assert (decision.pathway.sub_reason if decision.pathway else "") == want.sub_reason
    assert tuple(m.fact for m in decision.missing_facts) == want.missing
    walk = [t for t in decision.trace if t.kind is RuleKind.QUESTION]
    reached = [(t.rule_id, t.result.value) for t in walk if t.result is not RuleResult.NOT_REACHED]
    assert tuple(reached) == want.walk
    assert walk[: len(reached)] == [t for t in walk if t.result is not RuleResult.NOT_REACHED], "reached rules first"
    assert sorted(t.rule_id for t in decision.trace) == sorted(
        [r.id for r in policy.rules] + [a.id for a in policy.advice] + [c.id for c in policy.checks]
    ), "every rule exactly once"
    fired_overlays = {
        t.rule_id for t in decision.trace if t.kind is not RuleKind.QUESTION and t.result is RuleResult.FIRED
    }
    assert fired_overlays == want.overlays
    assert {a.rule_id for a in decision.advice} == want.overlays & {a.id for a in policy.advice}
    assert {w.code for w in decision.warnings} == want.overlays & {c.id for c in policy.checks}
    for entry in decision.trace:
        if entry.result is RuleResult.FIRED:
            assert "the condition holds" in entry.reason
        elif entry.result is RuleResult.NOT_FIRED:
            assert "does not hold" in entry.reason
        for name, value in entry.facts_seen.items():
            assert clean.get(name, value) == value


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_policy_and_facts())
def test_random_answers_agree_with_the_engine(case: tuple[Policy, dict[str, Any]]) -> None:
    """For random answers to every fact (unanswered and UNKNOWN included), the decision matches the semantics."""
    policy, facts = case
    assert_agrees(policy, facts, EVALUATOR.evaluate(policy.name, facts, version=policy.version))


def _answers(policy: Policy, name: str) -> list[Any]:
    """Every value a finite fact can take (every subset, for a set fact)."""
    spec = policy.facts[name]
    if spec.type is FactType.SET:
        return [list(c) for n in range(len(spec.values) + 1) for c in itertools.combinations(spec.values, n)]
    return list(spec.values)


def _walk_answers(policy: Policy) -> list[dict[str, Any]]:
    """Every distinct walk: each reached question answered YES, NO or left unanswered."""
    answers: list[dict[str, Any]] = []

    def extend(rule_id: str, facts: dict[str, Any]) -> None:
        rule = policy.rules_by_id[rule_id]
        if not rule.needs:  # no facts to answer: follow the rule as it stands
            target = rule.then
            answers.append(dict(facts)) if not target.rule else extend(target.rule, facts)
            return
        answers.append(dict(facts))  # left unanswered here
        for held in (True, False):
            for combo in itertools.product(*(_answers(policy, f) for f in rule.needs)):
                trial = {**facts, **dict(zip(rule.needs, combo, strict=True))}
                clean = normalise_facts(policy, trial)
                if holds(rule.condition, clean) is not held or any(f not in clean for f in rule.needs):
                    continue
                target = rule.then if held else rule.otherwise
                if target.rule:
                    extend(target.rule, trial)
                else:
                    answers.append(trial)
                break

    extend(policy.start.id, {})
    return answers


def _finite_walk(policy: Policy) -> bool:
    finite = (FactType.ANSWER, FactType.ENUM, FactType.SET)
    return all(policy.facts[f].type in finite for r in policy.rules for f in r.needs)


@pytest.mark.parametrize("policy", [p for p in POLICY_VERSIONS if _finite_walk(p)], ids=lambda p: p.key)
def test_every_walk_agrees_with_the_engine(policy: Policy) -> None:
    """Exhaustively: every path through the walk (and every place it can stop unanswered) agrees."""
    walks = _walk_answers(policy)
    assert len(walks) >= len(policy.rules)
    overlay_facts = [{}, {"professional_group": "DOCTOR", "exclusion_under_consideration": "YES"}]
    for facts, extra in itertools.product(walks, overlay_facts):
        merged = {**facts, **{k: v for k, v in extra.items() if k in policy.facts}}
        assert_agrees(policy, merged, EVALUATOR.evaluate(policy.name, merged, version=policy.version))


def test_guide_is_loaded() -> None:
    """The agreement tests above really run over the guide."""
    assert any(p.name == GUIDE for p in POLICY_VERSIONS)
