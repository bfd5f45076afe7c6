"""Request facts: normalised to what the engine may see, or refused with every violation at once."""

from __future__ import annotations

import math
from typing import Any

import pytest
from fairpath.errors import FieldViolation, InvalidFactsError
from fairpath.policy.facts import MAX_FACT_NAME, MAX_FACTS, MAX_STRING, MAX_SUGGESTIONS, normalise_facts
from fairpath.policy.model import Policy
from fairpath.policy.registry import PolicyRegistry

from tests.conftest import POLICIES
from tests.support.policy_builder import build_policy

# The minimal policy's facts: intent_to_harm (answer), severity (enum LOW/HIGH),
# stage (enum OPEN/UNKNOWN), years (number), on_duty (bool), note (string).


@pytest.fixture(scope="module")
def policy() -> Policy:
    """Load the builder's minimal policy: one fact of each type."""
    return build_policy()


def violations(policy: Policy, facts: dict[str, Any]) -> list[FieldViolation]:
    """Return the violations normalise_facts raises for ``facts`` (failing if it does not raise)."""
    with pytest.raises(InvalidFactsError) as caught:
        normalise_facts(policy, facts)
    return caught.value.violations


def only_violation(policy: Policy, facts: dict[str, Any]) -> FieldViolation:
    """Return the single violation raised for ``facts``."""
    found = violations(policy, facts)
    assert len(found) == 1, found
    return found[0]


class TestNormalisation:
    """Valid facts come back in the engine's types, unanswered ones removed."""

    def test_every_type(self, policy: Policy) -> None:
        """A value of each declared type is kept, numbers as float."""
        facts = {"intent_to_harm": "YES", "severity": "HIGH", "years": 3, "on_duty": False, "note": "late"}
        clean = normalise_facts(policy, facts)
        assert clean == {**facts, "years": 3.0}
        assert type(clean["years"]) is float
        assert clean["on_duty"] is False

    def test_empty(self, policy: Policy) -> None:
        """No facts is valid: everything unanswered."""
        assert normalise_facts(policy, {}) == {}

    def test_input_is_not_modified(self, policy: Policy) -> None:
        """The caller's mapping is left as it was."""
        facts: dict[str, Any] = {"intent_to_harm": "UNKNOWN", "years": 2, "note": None}
        normalise_facts(policy, facts)
        assert facts == {"intent_to_harm": "UNKNOWN", "years": 2, "note": None}

    @pytest.mark.parametrize("answer", ["YES", "NO"])
    def test_answers_are_kept(self, policy: Policy, answer: str) -> None:
        """YES and NO are answers."""
        assert normalise_facts(policy, {"intent_to_harm": answer}) == {"intent_to_harm": answer}

    def test_unknown_answer_is_unanswered(self, policy: Policy) -> None:
        """UNKNOWN to a yes/no question is dropped: it means not answered yet."""
        clean = normalise_facts(policy, {"intent_to_harm": "UNKNOWN", "severity": "LOW"})
        assert clean == {"severity": "LOW"}

    @pytest.mark.parametrize("name", ["intent_to_harm", "severity", "stage", "years", "on_duty", "note"])
    def test_null_is_unanswered(self, policy: Policy, name: str) -> None:
        """Null is dropped for every fact type."""
        assert normalise_facts(policy, {name: None}) == {}

    def test_declared_unknown_enum_code_is_an_answer(self, policy: Policy) -> None:
        """An enum that declares UNKNOWN keeps it as a value like any other code."""
        assert normalise_facts(policy, {"stage": "UNKNOWN"}) == {"stage": "UNKNOWN"}

    def test_undeclared_unknown_enum_code_is_refused(self, policy: Policy) -> None:
        """An enum that does not declare UNKNOWN refuses it rather than treating it as a gap."""
        violation = only_violation(policy, {"severity": "UNKNOWN"})
        assert violation == FieldViolation("facts.severity", "must be one of LOW, HIGH")

    @pytest.mark.parametrize("value", [10**15, 1e300, 0.00001, -1e-7])
    def test_numbers_the_engine_cannot_read_are_refused(self, policy: Policy, value: float) -> None:
        """Numbers durable_rules would receive in exponent form (below 1e-4, from 1e15) are violations, not INTERNAL."""
        violation = only_violation(policy, {"years": value})
        assert "0.0001" in violation.description

    @pytest.mark.parametrize(
        ("value", "expected"), [(0, 0.0), (-2, -2.0), (2.5, 2.5), (10**15 - 1, 1e15 - 1), (0.0001, 0.0001)]
    )
    def test_numbers_become_floats(self, policy: Policy, value: float, expected: float) -> None:
        """Integers and floats are accepted and stored as float."""
        clean = normalise_facts(policy, {"years": value})
        assert clean == {"years": expected}
        assert type(clean["years"]) is float

    @pytest.mark.parametrize("value", [True, False])
    def test_bools(self, policy: Policy, value: bool) -> None:
        """True and false are kept as bools."""
        assert normalise_facts(policy, {"on_duty": value}) == {"on_duty": value}

    def test_longest_allowed_string(self, policy: Policy) -> None:
        """A string of exactly the limit is accepted unchanged, as is the empty string."""
        assert normalise_facts(policy, {"note": "x" * MAX_STRING}) == {"note": "x" * MAX_STRING}
        assert normalise_facts(policy, {"note": ""}) == {"note": ""}

    def test_most_facts_allowed(self, policy: Policy) -> None:
        """Exactly MAX_FACTS names are counted, not refused (they fail only as undeclared)."""
        facts = {f"extra_{i}": None for i in range(MAX_FACTS)}
        found = violations(policy, facts)
        assert len(found) == MAX_FACTS
        assert {v.description for v in found} == {"not a fact of mini-policy@1.2.3"}


class TestViolations:
    """Each bad fact is one FieldViolation at ``facts.<name>`` saying what was expected and got."""

    @pytest.mark.parametrize(
        ("name", "value", "description"),
        [
            ("intent_to_harm", "yes", "must be one of YES, NO, UNKNOWN; answers are upper case: YES"),
            ("intent_to_harm", "MAYBE", "must be one of YES, NO, UNKNOWN"),
            ("intent_to_harm", True, "must be one of YES, NO, UNKNOWN, got true/false"),
            ("intent_to_harm", 1, "must be one of YES, NO, UNKNOWN, got a number"),
            ("intent_to_harm", {"v": "YES"}, "must be one of YES, NO, UNKNOWN, got an object"),
            ("intent_to_harm", ["YES"], "must be one of YES, NO, UNKNOWN, got a list"),
            ("severity", "MEDIUM", "must be one of LOW, HIGH"),
            ("severity", "low", "must be one of LOW, HIGH; codes are upper case: LOW"),
            ("severity", "HIGHT", "must be one of LOW, HIGH; did you mean `HIGH`?"),
            ("severity", 2.0, "must be one of LOW, HIGH, got a number"),
            ("severity", ("LOW",), "must be one of LOW, HIGH, got a list"),
            ("on_duty", "true", "must be true or false, got text"),
            ("on_duty", 1, "must be true or false, got a number"),
            ("on_duty", {}, "must be true or false, got an object"),
            ("years", "3", "must be a finite number, got text"),
            ("years", True, "must be a finite number, got true/false"),
            ("years", [3], "must be a finite number, got a list"),
            ("years", {"n": 3}, "must be a finite number, got an object"),
            ("years", math.nan, "must be a finite number, got a number"),
            ("years", math.inf, "must be a finite number, got a number"),
            ("years", -math.inf, "must be a finite number, got a number"),
            ("years", b"3", "must be a finite number, got bytes"),
            ("note", 3, f"must be text of at most {MAX_STRING} characters, got a number"),
            ("note", False, f"must be text of at most {MAX_STRING} characters, got true/false"),
            ("note", ["a"], f"must be text of at most {MAX_STRING} characters, got a list"),
            ("note", {"a": "b"}, f"must be text of at most {MAX_STRING} characters, got an object"),
            ("note", "x" * (MAX_STRING + 1), f"must be text of at most {MAX_STRING} characters, got text"),
        ],
    )
    def test_wrong_value(self, policy: Policy, name: str, value: Any, description: str) -> None:
        """The violation names the field and the expected type or values."""
        assert only_violation(policy, {name: value}) == FieldViolation(f"facts.{name}", description)

    def test_undeclared_fact(self, policy: Policy) -> None:
        """A fact the policy does not declare is refused, naming the policy version."""
        violation = only_violation(policy, {"shoe_size": 9})
        assert violation == FieldViolation("facts.shoe_size", "not a fact of mini-policy@1.2.3")

    def test_misspelt_fact_suggests_the_declared_one(self, policy: Policy) -> None:
        """A name close to a declared fact says which one was probably meant."""
        violation = only_violation(policy, {"intent_to_harms": "YES"})
        assert violation.description == "not a fact of mini-policy@1.2.3; did you mean `intent_to_harm`?"

    def test_suggestions_are_bounded(self, policy: Policy) -> None:
        """Only the first MAX_SUGGESTIONS undeclared names are compared, and never a name longer than any fact's."""
        found = violations(policy, {f"intent_to_harm{n:02}": None for n in range(MAX_SUGGESTIONS + 1)})
        hinted = [v.field for v in found if v.description.endswith("did you mean `intent_to_harm`?")]
        assert hinted == [f"facts.intent_to_harm{n:02}" for n in range(MAX_SUGGESTIONS)]
        long_name = "intent_to_harm" + "_" * MAX_FACT_NAME
        assert only_violation(policy, {long_name: "YES"}).description == "not a fact of mini-policy@1.2.3"

    def test_undeclared_fact_even_when_null(self, policy: Policy) -> None:
        """An undeclared name is refused even with a null value (a typo must not pass as unanswered)."""
        assert only_violation(policy, {"intnet_to_harm": None}).field == "facts.intnet_to_harm"

    def test_outcome_fields_are_not_facts(self, policy: Policy) -> None:
        """A request cannot set the walk's outcome fields as facts."""
        found = violations(policy, {"pathway": "ACT", "individual_directed": True, "status": "DECIDED"})
        assert [v.field for v in found] == ["facts.individual_directed", "facts.pathway", "facts.status"]

    def test_all_reported_at_once(self, policy: Policy) -> None:
        """Every bad fact is reported, undeclared ones first, then in the policy's order; valid ones raise nothing."""
        facts = {
            "intent_to_harm": "MAYBE",
            "severity": "LOW",
            "years": math.nan,
            "shoe_size": 9,
            "on_duty": "no",
            "note": "fine",
        }
        found = violations(policy, facts)
        fields = [v.field for v in found]
        assert fields == ["facts.shoe_size", "facts.intent_to_harm", "facts.years", "facts.on_duty"]
        error = InvalidFactsError(found)
        # The message names each fact, so str(error) alone says what to fix (the client's too).
        assert str(error).startswith(
            "4 invalid fact(s): shoe_size: not a fact of mini-policy@1.2.3; intent_to_harm: must be one of YES, NO, "
        )

    def test_too_many_facts(self, policy: Policy) -> None:
        """More than MAX_FACTS names is one violation on ``facts`` (the names are not examined)."""
        facts = {f"extra_{i}": None for i in range(MAX_FACTS + 1)}
        expected = FieldViolation("facts", f"at most {MAX_FACTS} facts, got {MAX_FACTS + 1}")
        assert violations(policy, facts) == [expected]

    def test_huge_fact_name_is_truncated_in_the_field(self, policy: Policy) -> None:
        """An enormous undeclared name is cut to 64 characters and an ellipsis in the field path."""
        name = "a" * 10_000
        violation = only_violation(policy, {name: "YES"})
        assert violation.field == "facts." + "a" * 64 + "…"

    def test_64_character_name_is_not_truncated(self, policy: Policy) -> None:
        """A name of exactly 64 characters is shown whole."""
        name = "b" * 64
        assert only_violation(policy, {name: "YES"}).field == f"facts.{name}"


def test_violations_come_in_one_order_whatever_order_the_facts_came_in() -> None:
    """Undeclared facts first, by name, then the rest in the policy's declaration order.

    A protobuf Struct does not keep the caller's order, so the same request must read the same.
    """
    policy = next(p for p in PolicyRegistry.from_directory(POLICIES).all() if p.key == "nhs-just-culture-guide@1.0.1")
    facts = {"zz_unknown": "YES", "professional_group": "nurse", "aa_unknown": "YES", "intent_to_harm": "yes",
             "is_patient_safety_incident": "maybe"}
    orders = set()
    for reverse in (False, True):
        items = sorted(facts.items(), reverse=reverse)
        with pytest.raises(InvalidFactsError) as raised:
            normalise_facts(policy, dict(items))
        orders.add(tuple(v.field for v in raised.value.violations))
    declared = list(policy.facts)
    assert orders == {(
        "facts.aa_unknown", "facts.zz_unknown",
        *sorted(("facts.professional_group", "facts.intent_to_harm", "facts.is_patient_safety_incident"),
                key=lambda field: declared.index(field.removeprefix("facts."))),
    )}


class TestCodesOnly:
    """A request of declared codes only (the usual one) is checked per fact by one set lookup: still per fact."""

    def test_a_request_of_codes_is_kept_as_sent(self, policy: Policy) -> None:
        """Answers and enum codes come back as they were sent, in the order sent."""
        facts = {"severity": "HIGH", "intent_to_harm": "NO", "stage": "UNKNOWN"}
        clean = normalise_facts(policy, facts)
        assert clean == facts
        assert list(clean) == list(facts)
        assert clean is not facts

    def test_a_code_of_another_fact_is_refused(self, policy: Policy) -> None:
        """Each value is checked against its own fact's codes, not against every code of the policy."""
        assert only_violation(policy, {"intent_to_harm": "NO", "severity": "YES"}) == FieldViolation(
            "facts.severity", "must be one of LOW, HIGH"
        )

    def test_an_unknown_answer_among_codes_is_unanswered(self, policy: Policy) -> None:
        """UNKNOWN is a code of an answer, but it is not kept: the answer is left out."""
        assert normalise_facts(policy, {"intent_to_harm": "UNKNOWN", "severity": "LOW"}) == {"severity": "LOW"}

    def test_an_undeclared_fact_among_codes_is_refused(self, policy: Policy) -> None:
        """A name no fact has is refused even when its value is a code of some fact."""
        violation = only_violation(policy, {"intent_to_harm": "NO", "intent": "NO"})
        assert violation.field == "facts.intent"
