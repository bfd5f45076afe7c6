"""``lacks`` on set facts and ``always`` as a walk condition, from the text to durable_rules' decision.

Both are documented in policies/AUTHORING.md, yet no shipped policy uses ``lacks``
or ``always`` in its walk, so the property tests over the shipped policies never
reach them. Here a small policy uses both; it is loaded, compiled and evaluated by
the real durable_rules engine, and every result is checked against the documented
meaning (``holds``) as well as against a hand-written expectation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fairpath.decisions import Decision, RuleResult
from fairpath.engine.compiler import compile_policy, complement, member_field, pattern
from fairpath.policy import conditions as cond
from fairpath.policy.conditions import Always, Answered, AnyOf, Compare, parse
from fairpath.policy.facts import normalise_facts
from fairpath.policy.model import Policy
from fairpath.policy.registry import PolicyRegistry
from fairpath.serving.evaluator import Evaluator

from tests.support.policy_builder import PARTIES, build_policy, set_and_always_policy


@pytest.fixture(scope="module", name="policy")
def _policy() -> Policy:
    return build_policy(set_and_always_policy())


@pytest.fixture(scope="module", name="evaluator")
def _evaluator(policy: Policy) -> Iterator[Evaluator]:
    evaluator = Evaluator(PolicyRegistry([policy]))
    yield evaluator
    evaluator.close()


def _evaluate(evaluator: Evaluator, policy: Policy, facts: dict[str, Any]) -> Decision:
    """Evaluate through durable_rules and check the result against the documented meaning first."""
    decision = evaluator.evaluate(policy.name, facts)
    clean = normalise_facts(policy, facts)
    for overlay in (*policy.advice, *policy.checks):
        fired = {t.rule_id for t in decision.trace if t.result is RuleResult.FIRED}
        assert (overlay.id in fired) is cond.holds(overlay.condition, clean), overlay.id
    return decision


def _results(decision: Decision) -> dict[str, str]:
    return {t.rule_id: t.result.value for t in decision.trace}


# --- the language -----------------------------------------------------------------------------


class TestLacksParsesAndMeans:
    """``fact lacks V`` parses to its own comparison, negates to ``has`` and reads sets only."""

    def test_lacks_parses_to_a_set_comparison(self) -> None:
        """``lacks`` takes one value, as ``has`` does; ``has any`` expands to alternatives."""
        assert parse("parties lacks PATIENT") == Compare("parties", "lacks", "PATIENT")
        assert parse("parties has PATIENT") == Compare("parties", "has", "PATIENT")
        assert parse("parties has any [PATIENT, FAMILY]") == AnyOf(
            (Compare("parties", "has", "PATIENT"), Compare("parties", "has", "FAMILY"))
        )
        assert parse("parties has any [STAFF]") == Compare("parties", "has", "STAFF")

    def test_lacks_and_has_negate_into_each_other(self) -> None:
        """``not`` turns ``lacks`` into ``has`` and back (NNF), so both read the same field in the engine."""
        assert cond.to_nnf(parse("not (parties lacks PATIENT)")) == Compare("parties", "has", "PATIENT")
        assert cond.to_nnf(parse("not (parties has PATIENT)")) == Compare("parties", "lacks", "PATIENT")

    def test_lacks_renders_back_to_its_text(self) -> None:
        """Compiler output and explanations show ``lacks`` as written."""
        assert cond.to_text(parse("parties lacks PATIENT and parties has FAMILY")) == (
            "parties lacks PATIENT and parties has FAMILY"
        )

    @pytest.mark.parametrize(
        ("facts", "lacks", "has"),
        [
            ({"parties": ("FAMILY",)}, True, False),
            ({"parties": ("PATIENT", "FAMILY")}, False, True),
            ({"parties": ()}, True, False),
            ({}, False, False),  # unanswered: neither, whichever way it is written
            ({"parties": "PATIENT"}, False, False),  # not a set value: never holds
        ],
    )
    def test_lacks_holds_only_for_an_answered_set_without_the_code(
        self, facts: dict[str, cond.Value], lacks: bool, has: bool
    ) -> None:
        """``lacks`` is true of an answered set without the code (the empty set too), false when unanswered."""
        assert cond.holds(parse("parties lacks PATIENT"), facts) is lacks
        assert cond.holds(parse("parties has PATIENT"), facts) is has
        assert cond.holds(parse("not (parties has PATIENT)"), facts) is lacks

    @pytest.mark.parametrize("text", [
        "parties is PATIENT", "parties is not PATIENT", "parties in [PATIENT]", "parties < 3",
    ])
    def test_only_has_and_lacks_read_a_set_value(self, text: str) -> None:
        """Other comparisons never hold on a set value, as in the engine, which sees only one field per code."""
        assert cond.holds(parse(text), {"parties": ("PATIENT",)}) is False

    def test_lacks_compiles_to_the_code_field_being_false(self) -> None:
        """A set fact reaches durable_rules as one boolean per code: ``lacks`` matches it false, ``has`` true."""
        assert member_field("parties", "PATIENT") == "parties__PATIENT"
        assert pattern(parse("parties lacks PATIENT")) == [{"parties__PATIENT": False}]
        assert pattern(parse("parties has PATIENT")) == [{"parties__PATIENT": True}]
        assert complement(parse("parties lacks PATIENT")) == AnyOf(
            (Answered("parties", negated=True), Compare("parties", "has", "PATIENT"))
        )

    def test_always_reads_no_facts_and_its_negation_never_holds(self) -> None:
        """``always`` needs no answer (a walk never stops on it) and ``not always`` is the empty alternative."""
        assert parse("always") == Always()
        assert cond.required_facts(Always()) == ()
        assert cond.to_nnf(parse("not always")) == AnyOf(())
        assert cond.specialise(cond.to_nnf(parse("not always")), {}, frozenset()) is False


# --- compiled and decided by durable_rules ------------------------------------------------------


class TestCompiledPolicy:
    """The compiler turns ``always`` steps and ``lacks`` into engine rules that mean what the text says."""

    def test_always_steps_add_no_stop_and_no_else_path(self, policy: Policy) -> None:
        """Three ways to end: parties unanswered at r1, r1 holds, r1 fails then r2; no path takes an always-else."""
        compiled = compile_policy(policy)

        ends = [
            ([(s.rule_id, s.held) for s in t.steps], t.target.pathway if t.target else "", t.unanswered_rule)
            for t in compiled.terminals
        ]
        assert ends == [
            ([("r0", True)], "", "r1"),
            ([("r0", True), ("r1", True)], "LEARN", ""),
            ([("r0", True), ("r1", False), ("r2", True)], "ACT", ""),
        ]
        assert all(t.always_on == ("a2",) for t in compiled.terminals)

    def test_lacks_reaches_the_engine_as_a_false_code_field(self, policy: Policy) -> None:
        """The walk rule and the advice rule both match ``parties__<code>`` being false."""
        compiled = compile_policy(policy)

        learn = str(compiled.rules["path-1"])
        assert "{'parties__PATIENT': False}" in learn
        advice = str(compiled.rules["overlay-a1"])
        assert "{'parties__FAMILY': False}" in advice
        assert "{'parties__PATIENT': True}" in advice


class TestDecidedByTheEngine:
    """Real evaluations: ``always`` walks on without an answer, ``lacks`` decides the pathway and overlays."""

    def test_a_set_without_the_code_takes_the_lacks_branch(self, evaluator: Evaluator, policy: Policy) -> None:
        """No patient among the parties: r1 fires and the walk ends on LEARN (no_patient)."""
        decision = _evaluate(evaluator, policy, {"parties": ["FAMILY", "STAFF"]})

        assert (decision.status.value, decision.pathway and decision.pathway.code) == ("DECIDED", "LEARN")
        assert decision.pathway is not None
        assert decision.pathway.sub_reason == "no_patient"
        assert {k: v for k, v in _results(decision).items() if k.startswith("r")} == {
            "r0": "FIRED", "r1": "FIRED", "r2": "NOT_REACHED",
        }
        assert [a.code for a in decision.advice] == ["STAFF_SUPPORT_OFFER"]
        assert decision.warnings == ()

    def test_the_trace_explains_an_always_step_and_a_set_answer(self, evaluator: Evaluator, policy: Policy) -> None:
        """Reviewers read why: ``always`` read nothing; the set answer is shown as it would be written."""
        decision = _evaluate(evaluator, policy, {"parties": ["STAFF", "FAMILY"]})
        reasons = {t.rule_id: t.reason for t in decision.trace}

        assert reasons["r0"] == "no facts read: the condition holds, so go to rule r1"
        assert reasons["r1"] == (
            "parties = [FAMILY, STAFF]: the condition holds, so the walk ends at pathway LEARN (no_patient)"
        )

    def test_a_set_with_the_code_walks_on_through_always_to_its_pathway(
        self, evaluator: Evaluator, policy: Policy
    ) -> None:
        """A patient affected: r1 does not fire, r2 (always) does, pathway ACT; lacks-advice fires without FAMILY."""
        decision = _evaluate(evaluator, policy, {"parties": ["PATIENT", "STAFF"]})

        assert decision.pathway is not None
        assert (decision.pathway.code, decision.pathway.sub_reason) == ("ACT", "patient")
        assert {k: v for k, v in _results(decision).items() if k.startswith("r")} == {
            "r0": "FIRED", "r1": "NOT_FIRED", "r2": "FIRED",
        }
        assert sorted(a.code for a in decision.advice) == ["FAMILY_LIAISON", "STAFF_SUPPORT_OFFER"]
        assert [w.code for w in decision.warnings] == ["c1"]

    def test_a_set_with_every_code_fires_no_lacks_overlay(self, evaluator: Evaluator, policy: Policy) -> None:
        """Every party named: nothing is lacking, so neither the lacks-advice nor the lacks-check fires."""
        decision = _evaluate(evaluator, policy, {"parties": PARTIES})

        assert decision.pathway is not None
        assert decision.pathway.code == "ACT"
        assert (_results(decision)["a1"], _results(decision)["c1"]) == ("NOT_FIRED", "NOT_FIRED")

    def test_the_empty_set_lacks_every_code(self, evaluator: Evaluator, policy: Policy) -> None:
        """An answered empty list is an answer: it lacks PATIENT, so the walk ends on LEARN."""
        decision = _evaluate(evaluator, policy, {"parties": []})

        assert (decision.status.value, decision.pathway and decision.pathway.code) == ("DECIDED", "LEARN")

    def test_an_unanswered_set_stops_after_always_and_lacks_concludes_nothing(
        self, evaluator: Evaluator, policy: Policy
    ) -> None:
        """``always`` needs no answer so r0 fires; r1 stops the walk; lacks-overlays stay off; always-advice is on."""
        decision = _evaluate(evaluator, policy, {})

        assert (decision.status.value, decision.pathway) == ("NEEDS_INFORMATION", None)
        assert [(m.fact, m.rule_id) for m in decision.missing_facts] == [("parties", "r1")]
        assert {k: v for k, v in _results(decision).items() if k.startswith("r")} == {
            "r0": "FIRED", "r1": "UNANSWERED", "r2": "NOT_REACHED",
        }
        assert [a.code for a in decision.advice] == ["STAFF_SUPPORT_OFFER"]
        assert decision.warnings == ()
