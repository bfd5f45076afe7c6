"""A safeguarding concern is never dropped (domain §9.4), by the current version of every policy that asks.

Guide 1.0.1 (and marx / reason 1.0.1) run the safeguarding gate before the
individual-concern gate and advise ``SAFEGUARDING_REFERRAL`` on every result that
reports a concern; restorative 1.0.0 already did (its walk has no gates, and its
referral advice reads the fact alone). The published 1.0.0 versions are locked
and keep their behaviour for callers who pin them.
"""

from __future__ import annotations

import itertools
from datetime import date

import pytest
from fairpath.policy.model import Policy
from fairpath.policy.registry import PolicyRegistry
from fairpath.serving.evaluator import Evaluator

from tests.conftest import GUIDE, POLICIES

FACT = "safeguarding_concern"
REFERRAL = "SAFEGUARDING_REFERRAL"
# What an unpinned request gets from 2026-12-06 on (1.0.1's effective_from), per policy reading the fact.
CURRENT = {
    GUIDE: "1.0.1",
    "marx-just-culture": "1.0.1",
    "reason-culpability": "1.0.1",
    "restorative-just-culture": "1.0.0",
}
SWITCH = date(2026, 12, 6)
# The answers that, in 1.0.0, could end a walk before the safeguarding gate was reached or asked.
VARIED = ("is_patient_safety_incident", "individual_concern_raised", "intent_to_harm")
ANSWERS = ("YES", "NO", None)  # None: left unanswered

REGISTRY = PolicyRegistry.from_directory(POLICIES, today=SWITCH)
EVALUATOR = Evaluator(REGISTRY)


def _readers() -> list[Policy]:
    """The current version of every policy that declares the safeguarding fact."""
    names = sorted({policy.name for policy in REGISTRY.all()})
    return [REGISTRY.get(name) for name in names if FACT in REGISTRY.get(name).facts]


def _combinations(policy: Policy) -> list[dict[str, str]]:
    """Every YES / NO / unanswered combination of the varied facts the policy declares, with a concern."""
    declared = [fact for fact in VARIED if fact in policy.facts]
    combinations = []
    for answers in itertools.product(ANSWERS, repeat=len(declared)):
        facts = {fact: answer for fact, answer in zip(declared, answers, strict=True) if answer is not None}
        combinations.append({**facts, FACT: "YES"})
    return combinations


def test_current_versions_of_the_policies_that_read_safeguarding() -> None:
    """From 2026-12-06 the fixed versions are current; the day before, the 1.0.0 versions still were."""
    assert {policy.name: policy.version for policy in _readers()} == CURRENT
    before = PolicyRegistry.from_directory(POLICIES, today=date(2026, 12, 5))
    assert {name: before.get(name).version for name in CURRENT} == dict.fromkeys(CURRENT, "1.0.0")


@pytest.mark.parametrize("policy", _readers(), ids=lambda policy: policy.key)
def test_a_safeguarding_concern_is_never_dropped(policy: Policy) -> None:
    """Whatever the gates and intent say, a concern gets the referral advice and never ends NOT_INDICATED."""
    for facts in _combinations(policy):
        decision = EVALUATOR.evaluate(policy.name, facts)
        assert decision.policy.version == policy.version
        assert REFERRAL in {item.code for item in decision.advice}, facts
        assert decision.pathway is None or decision.pathway.code != "NOT_INDICATED", facts


@pytest.mark.parametrize("name", ["nhs-just-culture-guide", "marx-just-culture", "reason-culpability"])
def test_no_individual_concern_with_a_safeguarding_concern_is_referred(name: str) -> None:
    """individual_concern_raised = NO with a concern: 1.0.1 refers it; pinned 1.0.0 still ends NOT_INDICATED."""
    facts = {"is_patient_safety_incident": "YES", "individual_concern_raised": "NO", FACT: "YES"}
    current = EVALUATOR.evaluate(name, facts)
    assert current.pathway is not None
    assert (current.policy.version, current.pathway.code) == ("1.0.1", "REFER_SAFEGUARDING_PROCESS")
    assert REFERRAL in {item.code for item in current.advice}
    pinned = EVALUATOR.evaluate(name, facts, version="1.0.0")
    assert pinned.pathway is not None
    assert (pinned.policy.version, pinned.pathway.code) == ("1.0.0", "NOT_INDICATED")
    assert REFERRAL not in {item.code for item in pinned.advice}


def test_guide_warns_when_the_professional_group_is_not_given() -> None:
    """Guide 1.0.1 raises W6 without a professional group (and not with one); pinned 1.0.0 never did."""
    facts: dict[str, str] = {"is_patient_safety_incident": "NO", "harm_severity": "LOW"}
    assert [w.code for w in EVALUATOR.evaluate(GUIDE, facts).warnings] == ["W6"]
    assert EVALUATOR.evaluate(GUIDE, {**facts, "professional_group": "DOCTOR"}).warnings == ()
    assert EVALUATOR.evaluate(GUIDE, facts, version="1.0.0").warnings == ()
