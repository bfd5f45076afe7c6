"""No facts payload can break an evaluation: it gets a decision or InvalidFactsError, nothing else.

Random payloads mix declared and unknown names, every JSON type, wrong types,
deep nesting and huge strings. The gRPC-level twin of this test lives in
tests/integration.
"""

from __future__ import annotations

from typing import Any

import pytest
from fairpath.decisions import Decision
from fairpath.errors import InvalidFactsError
from fairpath.serving.evaluator import Evaluator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import GUIDE, POLICIES

EVALUATOR = Evaluator.from_directory(POLICIES)
GUIDE_POLICY = EVALUATOR.registry.get(GUIDE)
DECLARED = sorted(GUIDE_POLICY.facts)
CODES = sorted({v for spec in GUIDE_POLICY.facts.values() for v in spec.values})

json_scalars = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True), st.integers(),
    st.sampled_from(CODES), st.text(max_size=30), st.text(min_size=1100, max_size=1500),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=40,
)
names = st.one_of(st.sampled_from(DECLARED), st.text(max_size=40), st.text(min_size=100, max_size=300),
                  st.sampled_from(["type", "sid", "id", "$s", "pathway", "", "__proto__"]))


def _deep(depth: int) -> Any:
    value: Any = "YES"
    for _ in range(depth):
        value = {"x": value}
    return value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.dictionaries(names, json_values, max_size=30))
def test_random_payloads_get_a_decision_or_invalid_facts(facts: dict[str, Any]) -> None:
    """Any payload: a Decision, or InvalidFactsError with a violation per bad fact; never another exception."""
    decision: Decision | None = None
    refused: InvalidFactsError | None = None
    try:
        decision = EVALUATOR.evaluate(GUIDE, facts)
    except InvalidFactsError as error:  # the only exception allowed
        refused = error
    if refused is not None:
        assert refused.violations
        assert all(v.field.startswith("facts") and v.description for v in refused.violations)
        assert len(refused.violations) <= len(facts) or refused.violations[0].field == "facts"
    else:
        assert isinstance(decision, Decision)
        assert len(decision.trace) == len(GUIDE_POLICY.rules) + len(GUIDE_POLICY.advice) + len(GUIDE_POLICY.checks)


def test_deeply_nested_value_is_a_violation() -> None:
    """A value nested 500 deep is refused as not a single value, not a recursion error."""
    with pytest.raises(InvalidFactsError) as refused:
        EVALUATOR.evaluate(GUIDE, {"intent_to_harm": _deep(500)})
    assert refused.value.violations[0].field == "facts.intent_to_harm"
