"""Check a decision against the reference reading of its policy, and enumerate a policy's walks.

Shared by the property tests (``tests/property/test_agreement.py``) and the compiler's unit tests
(``tests/unit/test_compiler.py``), which compile inside each test so a mutation run sees them.
"""

from __future__ import annotations

import itertools
from typing import Any

from fairpath.decisions import Decision, RuleKind, RuleResult
from fairpath.policy.conditions import holds
from fairpath.policy.facts import normalise_facts
from fairpath.policy.model import FactType, Policy

from tests.support.reference import expected


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


def answers(policy: Policy, name: str) -> list[Any]:
    """Every value a finite fact can take (every subset, for a set fact)."""
    spec = policy.facts[name]
    if spec.type is FactType.SET:
        return [list(c) for n in range(len(spec.values) + 1) for c in itertools.combinations(spec.values, n)]
    return list(spec.values)


def walk_answers(policy: Policy) -> list[dict[str, Any]]:
    """Every distinct walk: each reached question answered YES, NO or left unanswered."""
    found: list[dict[str, Any]] = []

    def extend(rule_id: str, facts: dict[str, Any]) -> None:
        rule = policy.rules_by_id[rule_id]
        if not rule.needs:  # no facts to answer: follow the rule as it stands
            target = rule.then
            found.append(dict(facts)) if not target.rule else extend(target.rule, facts)
            return
        found.append(dict(facts))  # left unanswered here
        for held in (True, False):
            for combo in itertools.product(*(answers(policy, f) for f in rule.needs)):
                trial = {**facts, **dict(zip(rule.needs, combo, strict=True))}
                clean = normalise_facts(policy, trial)
                if holds(rule.condition, clean) is not held or any(f not in clean for f in rule.needs):
                    continue
                target = rule.then if held else rule.otherwise
                if target.rule:
                    extend(target.rule, trial)
                else:
                    found.append(trial)
                break

    extend(policy.start.id, {})
    return found


def finite_walk(policy: Policy) -> bool:
    """Whether every fact the walk needs has finitely many answers (so :func:`walk_answers` can list them)."""
    finite = (FactType.ANSWER, FactType.ENUM, FactType.SET)
    return all(policy.facts[f].type in finite for r in policy.rules for f in r.needs)
