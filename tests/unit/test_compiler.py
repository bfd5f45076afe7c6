"""The compiler (``fairpath.engine.compiler``), pinned by fast tests that compile inside each test.

The property tests (``tests/property``) and the policy scenarios (``tests/policies``) compile the
shipped policies once, at import, and then evaluate many facts. These compile in the test itself
(never at import or in a shared fixture), so a mutation run (README, "Mutation testing") re-runs them
against each changed line of the compiler in seconds: every walk of every shipped policy, every
scenario, and each guard and shape of what the compiler emits.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

import pytest
from fairpath.engine import compiler
from fairpath.engine.compiler import MAX_GROUPS, Action, Step, Terminal, compile_policy, complement, pattern
from fairpath.errors import PolicyFileError
from fairpath.policy import conditions as cond
from fairpath.policy.cases import cases_file, load_cases
from fairpath.policy.loader import load_bytes
from fairpath.policy.model import Target
from fairpath.policy.registry import PolicyRegistry
from fairpath.serving.evaluator import Evaluator
from fairpath.serving.gate import run_cases

from tests.conftest import POLICIES
from tests.support.agreement import assert_agrees, finite_walk, walk_answers
from tests.support.policy_builder import build_policy, minimal_policy, policy_text, set_and_always_policy


def test_every_walk_of_every_freshly_compiled_policy_agrees_with_the_semantics() -> None:
    """Compiled in the test: every path of every walk (and each stop on unanswered facts) is decided as specified."""
    evaluator = Evaluator.from_directory(POLICIES)  # as served: a policy may need others loaded beside it
    try:
        walked = 0
        for policy in evaluator.registry.all():
            if not finite_walk(policy):
                continue
            walks = walk_answers(policy)
            assert len(walks) >= len(policy.rules)
            overlay_facts: list[dict[str, Any]] = [
                {},
                {"professional_group": "DOCTOR", "exclusion_under_consideration": "YES"},
            ]
            for facts, extra in itertools.product(walks, overlay_facts):
                merged = {**facts, **{k: v for k, v in extra.items() if k in policy.facts}}
                # Each policy alone: a chained policy's chained facts are walked like any other input.
                decision = evaluator.evaluate(policy.name, merged, version=policy.version, alone=True)
                assert_agrees(policy, merged, decision)
            walked += 1
        assert walked >= 5, "the shipped policies' walks are finite"
    finally:
        evaluator.close()


def test_every_scenario_of_every_freshly_compiled_policy_passes() -> None:
    """Compiled in the test: each case of each policy's scenario file gets exactly its expected decision."""
    evaluator = Evaluator.from_directory(POLICIES)
    try:
        for policy in evaluator.registry.all():
            cases_path = cases_file(policy.path)
            cases = load_cases(cases_path.read_bytes(), policy, str(cases_path))
            evaluate = functools.partial(evaluator.evaluate, policy.name, version=policy.version)
            report = run_cases(evaluator.compiled(policy), cases, evaluate)
            assert [(r.name, r.failures) for r in report.cases if not r.passed] == [], policy.key
            assert report.cases, policy.key
    finally:
        evaluator.close()


# --- what the compiler emits, exactly -------------------------------------------------------------
# The agreement tests above pin what the compiled rules decide; these pin their form (the contract
# with durable_rules): every engine rule, its action and every terminal of two small policies.

CASE = {"type": "case"}


def _rule(*expressions: dict[str, Any]) -> dict[str, Any]:
    return {"all": [{"m": {"$and": [CASE, *expressions]}}]}


def _either(first: dict[str, Any], *rest: dict[str, Any]) -> dict[str, Any]:
    return {"$or": [first, *rest]}


def _both(*expressions: dict[str, Any]) -> dict[str, Any]:
    return {"$and": list(expressions)}


def _ex(fact: str) -> dict[str, Any]:
    return {"$ex": {fact: 1}}


def _nex(fact: str) -> dict[str, Any]:
    return {"$nex": {fact: 1}}


def _shapes() -> dict[str, Any]:
    """The minimal policy with one of each kind of condition, overlay and outcome the compiler handles."""
    document = minimal_policy(name="shapes")
    document["rules"] = [
        {"id": "r1", "title": "Intent or high", "question": "Intent or severe?",
         "when": "intent_to_harm is YES or severity is HIGH", "then": "pathway ACT (intent)", "else": "go to r2"},
        {"id": "r2", "title": "Stage", "question": "Open and on duty?",
         "when": "stage in [OPEN] and on_duty is not false", "then": "pathway ACT", "else": "pathway LEARN"},
    ]
    document["advice"] = [
        {"id": "a1", "code": "SPLIT", "text": "Split.", "when": "pathway is ACT and years > 3"},
        {"id": "a2", "code": "ALWAYS", "text": "Always.", "when": "always"},
        {"id": "a3", "code": "FACTS", "text": "Facts.", "when": "note is answered or years <= 1"},
        {"id": "a4", "code": "MORE", "text": "More.", "when": "status is NEEDS_INFORMATION"},
        {"id": "a5", "code": "NOT_DIRECTED", "text": "Not directed.", "when": "individual_directed is false"},
        {"id": "a6", "code": "DECIDED", "text": "Decided.", "when": "status is DECIDED"},
    ]
    document["checks"] = [
        {"id": "c2", "text": "Not these.", "when": "severity not in [LOW] and stage is not UNKNOWN"},
    ]
    return document


def test_each_kind_of_condition_and_overlay_compiles_to_exactly_these_engine_rules() -> None:
    """`or` made exclusive, unanswered stops, `in`/`is not`, an outcome-and-fact advice split in two, fact overlays."""
    policy = build_policy(_shapes())
    compiled = compile_policy(policy)

    assert compiled.policy is policy
    assert compiled.ruleset == f"shapes@1.2.3#{policy.digest[:16]}"
    intent_or_high = _either(
        {"intent_to_harm": "YES"},
        _both(_either(_nex("intent_to_harm"), _both(_ex("intent_to_harm"), {"$neq": {"intent_to_harm": "YES"}})),
              {"severity": "HIGH"}),
    )
    neither: list[dict[str, Any]] = [{"$neq": {"intent_to_harm": "YES"}}, {"$neq": {"severity": "HIGH"}}]
    few_years = _either(_nex("years"), _both(_ex("years"), {"$lte": {"years": 3.0}}))
    open_on_duty: list[dict[str, Any]] = [{"stage": "OPEN"}, {"$neq": {"on_duty": False}}]
    assert compiled.rules == {
        "path-0": _rule(_either(_nex("intent_to_harm"), _both(_ex("intent_to_harm"), _nex("severity")))),
        "path-1.0": _rule(_ex("intent_to_harm"), _ex("severity"), intent_or_high, few_years),
        "path-1.1": _rule(_ex("intent_to_harm"), _ex("severity"), intent_or_high, {"$gt": {"years": 3.0}}),
        "path-2": _rule(*neither, _either(_nex("stage"), _both(_ex("stage"), _nex("on_duty")))),
        "path-3.0": _rule(*neither, *open_on_duty, few_years),
        "path-3.1": _rule(*neither, *open_on_duty, {"$gt": {"years": 3.0}}),
        "path-4": _rule(
            *neither, _ex("stage"), _ex("on_duty"),
            _either({"$neq": {"stage": "OPEN"}},
                    _both(_either(_nex("stage"), _both(_ex("stage"), {"stage": "OPEN"})), {"on_duty": False})),
        ),
        "overlay-a3": _rule(_either(_ex("note"), _both(_nex("note"), {"$lte": {"years": 1.0}}))),
        "overlay-c2": _rule({"$neq": {"severity": "LOW"}}, {"$neq": {"stage": "UNKNOWN"}}),
    }
    assert list(compiled.rules) == ["path-0", "path-1.0", "path-1.1", "path-2", "path-3.0", "path-3.1", "path-4",
                                    "overlay-a3", "overlay-c2"]
    assert compiled.actions == {
        "path-0": Action("terminal", terminal=0),
        "path-1.0": Action("terminal", terminal=1),
        "path-1.1": Action("terminal", terminal=1, overlays=("a1",)),
        "path-2": Action("terminal", terminal=2),
        "path-3.0": Action("terminal", terminal=3),
        "path-3.1": Action("terminal", terminal=3, overlays=("a1",)),
        "path-4": Action("terminal", terminal=4),
        "overlay-a3": Action("overlay", overlays=("a3",)),
        "overlay-c2": Action("overlay", overlays=("c2",)),
    }
    r1_no = Step("r1", held=False)
    assert compiled.terminals == (  # the outcome is known per path: advice on it alone is bound there
        Terminal(0, (), None, unanswered_rule="r1", always_on=("a2", "a4", "a5")),
        Terminal(1, (Step("r1", held=True),), Target(pathway="ACT", sub_reason="intent"), always_on=("a2", "a6")),
        Terminal(2, (r1_no,), None, unanswered_rule="r2", always_on=("a2", "a4", "a5")),
        Terminal(3, (r1_no, Step("r2", held=True)), Target(pathway="ACT"), always_on=("a2", "a6")),
        Terminal(4, (r1_no, Step("r2", held=False)), Target(pathway="LEARN"), always_on=("a2", "a5", "a6")),
    )
    assert compiled.set_facts == {}


def test_set_facts_and_always_steps_compile_to_exactly_these_engine_rules() -> None:
    """A set fact becomes one true/false field per code; `always` steps hold on every path and never stop the walk."""
    compiled = compile_policy(build_policy(set_and_always_policy()))

    assert compiled.rules == {
        "path-0": _rule(_nex("parties")),
        "path-1": _rule({"parties__PATIENT": False}),
        "path-2": _rule({"parties__PATIENT": True}),
        "overlay-a1": _rule({"parties__FAMILY": False}, {"parties__PATIENT": True}),
        "overlay-c1": _rule({"parties__STAFF": True}, {"parties__FAMILY": False}),
    }
    assert compiled.actions == {
        "path-0": Action("terminal", terminal=0),
        "path-1": Action("terminal", terminal=1),
        "path-2": Action("terminal", terminal=2),
        "overlay-a1": Action("overlay", overlays=("a1",)),
        "overlay-c1": Action("overlay", overlays=("c1",)),
    }
    r0 = Step("r0", held=True)
    assert compiled.terminals == (
        Terminal(0, (r0,), None, unanswered_rule="r1", always_on=("a2",)),
        Terminal(1, (r0, Step("r1", held=True)), Target(pathway="LEARN", sub_reason="no_patient"), always_on=("a2",)),
        Terminal(2, (r0, Step("r1", held=False), Step("r2", held=True)), Target(pathway="ACT", sub_reason="patient"),
                 always_on=("a2",)),
    )
    assert compiled.set_facts == {"parties": ("PATIENT", "FAMILY", "STAFF")}


def _line(text: str, needle: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), start=1) if needle in line)


def _alternating(depth: int) -> str:
    """``((a0 or a1) and a2) or a3 ...``: its exclusive-alternative pattern grows about 3x every two levels."""
    text = "a0 is YES"
    for i in range(1, depth + 1):
        text = f"({text}) {'or' if i % 2 else 'and'} a{i % 4} is YES"
    return text


def _with_fact_overlay(section: str, when: str) -> str:
    """The minimal policy with four more facts and one advice rule or check, ``x9``, reading facts only."""
    document = minimal_policy()
    document["facts"] += [{"name": f"a{i}", "type": "answer", "question": f"A{i}?"} for i in range(4)]
    entry = {"id": "x9", "text": "Hostile.", "when": when}
    document[section].append({**entry, "code": "X9"} if section == "advice" else entry)
    return policy_text(document)


@pytest.mark.parametrize("section", ["advice", "checks"])
def test_a_fact_overlay_too_large_for_the_engine_is_refused_naming_it(section: str) -> None:
    """An advice rule or check on facts alone gets a rule of its own: its limits are checked, the refusal names it."""
    groups = _with_fact_overlay(section, " or ".join(f"years >= {i}" for i in range(10)))
    with pytest.raises(PolicyFileError, match="and/or groups") as too_many:
        compile_policy(load_bytes(groups.encode(), "overlay.yaml"))
    assert (too_many.value.path, too_many.value.rule_id, too_many.value.line) == (
        "overlay.yaml", "x9", _line(groups, "id: x9")
    )
    assert too_many.value.message == (
        f"a path through this rule combines 101 and/or groups in one engine rule (durable_rules takes at most "
        f"{MAX_GROUPS}): write alternatives of one fact as 'in [..]', or split the rule"
    )

    nested = _with_fact_overlay(section, _alternating(30))
    with pytest.raises(PolicyFileError, match="too complex to compile") as too_complex:
        compile_policy(load_bytes(nested.encode(), "overlay.yaml"))
    assert (too_complex.value.rule_id, too_complex.value.line) == ("x9", _line(nested, "id: x9"))
    assert too_complex.value.message == "the condition is too complex to compile: simplify its nested and/or"


def _answers(count: int) -> list[dict[str, str]]:
    return [{"name": f"a{i}", "type": "answer", "question": f"A{i}?"} for i in range(count)]


def test_a_rule_that_never_holds_sends_every_case_to_its_else() -> None:
    """`not always` has no `then` path; its `else` still leads on (the walk skips the missing branch, not the rest)."""
    document = minimal_policy()
    document["rules"][0].update(when="not always", question="Never?")
    policy = build_policy(document)
    evaluator = Evaluator(PolicyRegistry([policy]))
    try:
        decision = evaluator.evaluate(policy.name, {"years": 5})
        assert decision.pathway is not None
        assert (decision.pathway.code, decision.status.value) == ("ACT", "DECIDED")
        assert evaluator.evaluate(policy.name, {"years": 1}).pathway.code == "LEARN"  # type: ignore[union-attr]
    finally:
        evaluator.close()
    assert [t.steps for t in compile_policy(policy).terminals][1:] == [
        (Step("r1", held=False), Step("r2", held=True)), (Step("r1", held=False), Step("r2", held=False)),
    ]


def test_the_stop_on_unanswered_facts_counts_towards_the_engines_groups_at_its_rule() -> None:
    """A rule reading 11 facts, after a rule with groups of its own: its 'unanswered' alternative is the one refused."""
    document = minimal_policy()
    document["facts"] += _answers(11)
    document["rules"] = [
        {"id": "r1", "title": "Both", "question": "Both?", "when": "intent_to_harm is YES and severity is HIGH",
         "then": "pathway ACT", "else": "go to r2"},
        {"id": "r2", "title": "All", "question": "All?", "when": " and ".join(f"a{i} is YES" for i in range(11)),
         "then": "pathway ACT", "else": "pathway LEARN"},
    ]
    document["advice"], document["checks"] = [], []
    with pytest.raises(PolicyFileError) as caught:
        compile_policy(build_policy(document))
    assert caught.value.rule_id == "r2"
    assert caught.value.message.startswith("a path through this rule combines 16 and/or groups")


def test_an_outcome_and_fact_advice_on_an_unanswered_stop_counts_its_groups_there() -> None:
    """Advice on NEEDS_INFORMATION and facts splits the stop's engine rule; its groups count there, naming it."""
    document = minimal_policy()
    document["facts"] += _answers(8)
    document["rules"] = [
        {"id": "r1", "title": "All", "question": "All?", "when": " and ".join(f"a{i} is YES" for i in range(8)),
         "then": "pathway ACT", "else": "pathway LEARN"},
    ]
    document["advice"] = [{"id": "a9", "code": "MORE", "text": "More.",
                           "when": "status is NEEDS_INFORMATION and (years >= 0 or years >= 1 or years >= 2)"}]
    document["checks"] = []
    with pytest.raises(PolicyFileError) as caught:
        compile_policy(build_policy(document))
    assert caught.value.rule_id == "a9"
    assert caught.value.message.startswith("a path through this rule combines 18 and/or groups")


def _all_yes(prefix: str, count: int) -> str:
    return " and ".join(f"{prefix}{i} is YES" for i in range(count))


def test_groups_add_up_along_a_path_and_the_rule_that_crosses_the_limit_is_named() -> None:
    """Two rules whose `else` takes 9 groups each: fine alone, 19 together on one path, refused at the second."""
    document = minimal_policy()
    document["facts"] += _answers(3) + [{"name": f"b{i}", "type": "answer", "question": f"B{i}?"} for i in range(3)]
    document["rules"] = [
        {"id": "r1", "title": "A", "question": "A?", "when": _all_yes("a", 3), "then": "pathway LEARN",
         "else": "go to r2"},
        {"id": "r2", "title": "B", "question": "B?", "when": _all_yes("b", 3), "then": "pathway LEARN",
         "else": "go to r3"},
        {"id": "r3", "title": "C", "when": "on_duty is true", "then": "pathway ACT", "else": "pathway LEARN"},
    ]
    document["advice"], document["checks"] = [], []
    with pytest.raises(PolicyFileError) as caught:
        compile_policy(build_policy(document))
    assert caught.value.rule_id == "r2"  # where it crossed, not r3 where that path ends
    assert caught.value.message.startswith("a path through this rule combines 19 and/or groups")
    document["rules"][0]["when"] = "intent_to_harm is YES"  # r2's 9 alone fit
    assert len(compile_policy(build_policy(document)).rules) == 7


def test_an_outcome_and_fact_advice_counts_the_groups_of_the_path_it_splits() -> None:
    """A path of 9 groups, advice on its pathway and a 3-way `or`: 16 groups in one variant, refused at the advice."""
    document = minimal_policy()
    document["facts"] += _answers(3)
    document["rules"] = [
        {"id": "r1", "title": "A", "question": "A?", "when": _all_yes("a", 3), "then": "pathway LEARN",
         "else": "pathway ACT"},
    ]
    document["advice"] = [{"id": "a9", "code": "MORE", "text": "More.",
                           "when": "pathway is ACT and (years >= 0 or years >= 1 or years >= 2)"}]
    document["checks"] = []
    with pytest.raises(PolicyFileError) as caught:
        compile_policy(build_policy(document))
    assert caught.value.rule_id == "a9"
    assert caught.value.message.startswith("a path through this rule combines 16 and/or groups")


@pytest.mark.parametrize(
    "depth",
    [pytest.param(30, id="its pattern too complex"), pytest.param(10, id="only its complement too complex")],
)
def test_an_outcome_and_fact_advice_too_complex_to_split_on_is_refused_naming_it(depth: int) -> None:
    """A path split on advice needs the advice's fact part and its complement: either too complex names the advice."""
    text = _with_fact_overlay("advice", f"pathway is ACT and ({_alternating(depth)})")
    with pytest.raises(PolicyFileError, match="too complex to compile") as caught:
        compile_policy(load_bytes(text.encode(), "split.yaml"))
    assert (caught.value.rule_id, caught.value.line) == ("x9", _line(text, "id: x9"))


# --- the cost bound: one budget per condition -------------------------------------------------------


def test_the_pattern_budget_counts_each_step_of_the_largest_unanswered_alternative() -> None:
    """64 facts (a condition's most terms) unanswered: 2 steps, then 2 + 2i for alternative i, 4,160 of the 5,000."""
    budget = compiler._Budget()
    pattern(cond.AnyOf(tuple(cond.Answered(f"f{i}", negated=True) for i in range(64))), budget)
    assert compiler.MAX_PATTERN_STEPS - budget.left == 2 + sum(2 + 2 * i for i in range(1, 64)) == 4160


def test_a_pattern_may_spend_exactly_its_budget_and_not_one_step_more() -> None:
    """The 4,160-step pattern builds on a budget of 4,160; on 4,159 it is refused, saying what the limit is."""
    largest = cond.AnyOf(tuple(cond.Answered(f"f{i}", negated=True) for i in range(64)))
    exact = compiler._Budget(4160)
    pattern(largest, exact)
    assert exact.left == 0
    with pytest.raises(compiler.PatternTooLargeError) as refused:
        pattern(largest, compiler._Budget(4159))
    assert str(refused.value) == f"the condition needs more than {compiler.MAX_PATTERN_STEPS} steps to compile"


def test_every_pattern_and_complement_call_of_one_condition_spends_the_same_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nested and/or (complements of groups inside alternatives): each call, at any depth, spends one shared step."""
    calls = 0
    real_pattern, real_complement = compiler.pattern, compiler.complement

    def counted_pattern(condition: cond.Condition, budget: Any = None) -> Any:
        nonlocal calls
        calls += 1
        return real_pattern(condition, budget)

    def counted_complement(condition: cond.Condition, budget: Any = None) -> Any:
        nonlocal calls
        calls += 1
        return real_complement(condition, budget)

    monkeypatch.setattr(compiler, "pattern", counted_pattern)
    monkeypatch.setattr(compiler, "complement", counted_complement)
    condition = cond.to_nnf(cond.parse(
        "(a0 is YES and (a1 is YES or a2 is NO)) or (a3 is YES or a0 is NO) or (a1 is YES and a2 is YES)"
    ))
    budget = compiler._Budget()
    compiler.pattern(condition, budget)
    assert calls > 20
    assert compiler.MAX_PATTERN_STEPS - budget.left == calls


def test_complement_refuses_a_condition_not_in_negation_normal_form() -> None:
    """`not` must have been pushed down first: complement() says so rather than negating wrongly."""
    with pytest.raises(TypeError, match=r"^complement\(\) needs a condition in negation normal form$"):
        complement(cond.Not(cond.Answered("x")))
