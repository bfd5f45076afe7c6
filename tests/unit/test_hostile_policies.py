"""Policy files written to hurt the service are refused quickly and cleanly, never hang or crash it."""

from __future__ import annotations

import pytest
import yaml
from fairpath.engine.compiler import Action, CompiledPolicy, compile_policy
from fairpath.engine.durable import DurableEngine
from fairpath.errors import EngineError, InvalidFactsError, PolicyFileError
from fairpath.evaluation import Evaluator
from fairpath.policy.conditions import ConditionSyntaxError, parse
from fairpath.policy.loader import load_bytes
from fairpath.policy.registry import PolicyRegistry

from tests.support.policy_builder import minimal_policy


def _chain(rules: int) -> bytes:
    """A walk where both answers of every rule lead to the next: its paths double with each rule."""
    document = minimal_policy()
    document["facts"] = [{"name": f"q{i}", "type": "answer", "question": f"Q{i}?"} for i in range(rules)]
    document["rules"] = [
        {"id": f"r{i}", "title": f"R{i}", "when": f"q{i} is YES",
         "then": f"go to r{i + 1}" if i + 1 < rules else "pathway ACT",
         "else": f"go to r{i + 1}" if i + 1 < rules else "pathway LEARN"}
        for i in range(rules)
    ]
    document["advice"], document["checks"] = [], []
    return yaml.safe_dump(document).encode()


def test_a_walk_with_exponentially_many_paths_is_refused_while_compiling() -> None:
    """30 rules whose answers all lead on (2^30 paths) fail compilation at the rule limit, not after minutes."""
    policy = load_bytes(_chain(30), "chain.yaml")
    with pytest.raises(PolicyFileError, match="more paths than the engine takes"):
        compile_policy(policy)


def test_a_condition_nested_past_the_limit_is_a_syntax_error() -> None:
    """400 nested parentheses give a ConditionSyntaxError with a column, not a RecursionError."""
    with pytest.raises(ConditionSyntaxError, match="nest at most"):
        parse("(" * 400 + "x is YES" + ")" * 400)
    with pytest.raises(ConditionSyntaxError, match="nest at most"):
        parse("not " * 400 + "x is YES")


def test_deeply_nested_yaml_is_a_policy_file_error() -> None:
    """YAML nested thousands deep is refused as a policy file error."""
    with pytest.raises(PolicyFileError):
        load_bytes(b"policy: " + b"[" * 5000 + b"]" * 5000, "deep.yaml")


def test_mixed_key_types_at_the_top_are_reported_not_a_type_error() -> None:
    """A document with a number key beside text keys gets the unknown-key error."""
    text = yaml.safe_dump(minimal_policy()).encode() + b"1: one\n"
    with pytest.raises(PolicyFileError, match="unknown key"):
        load_bytes(text, "mixed.yaml")


@pytest.mark.parametrize(("section", "key"), [("facts", "sensitvie"), ("rules", "esle"), ("advice", "txt"),
                                              ("pathways", "individual_directd"), ("checks", "wen")])
def test_a_misspelt_key_in_an_entry_is_refused_with_its_line(section: str, key: str) -> None:
    """A typo such as `sensitvie: true` is an error naming the key and line, never silently ignored."""
    document = minimal_policy()
    document[section][0][key] = True
    with pytest.raises(PolicyFileError, match=key) as caught:
        load_bytes(yaml.safe_dump(document).encode(), "typo.yaml")
    assert caught.value.line is not None


def test_engine_errors_never_carry_the_facts() -> None:
    """An engine failure's message and chained exceptions hold no fact value, so logs of it cannot leak facts."""
    policy = load_bytes(yaml.safe_dump(minimal_policy()).encode())
    engine = DurableEngine(sessions=2)
    partial = CompiledPolicy(policy=policy, ruleset="leak@test",
                             rules={"r": {"all": [{"m": {"$and": [{"type": "case"}, {"note": "other"}]}}]}},
                             actions={"r": Action("terminal", terminal=0)}, terminals=())
    engine.register(partial)
    with pytest.raises(EngineError) as caught:
        engine.evaluate(partial, {"note": "PATIENT JOHN SMITH"})
    error: BaseException | None = caught.value
    while error is not None:
        assert "JOHN SMITH" not in str(error)
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)


def test_a_number_durable_cannot_read_never_reaches_it() -> None:
    """1e-05 in a request is an invalid fact, not an INTERNAL engine failure."""
    evaluator = Evaluator(PolicyRegistry([load_bytes(yaml.safe_dump(minimal_policy()).encode())]))
    with pytest.raises(InvalidFactsError):
        evaluator.evaluate("mini-policy", {"intent_to_harm": "NO", "years": 1e-05})
    assert evaluator.evaluate("mini-policy", {"intent_to_harm": "NO", "years": 2.5}).pathway is not None
