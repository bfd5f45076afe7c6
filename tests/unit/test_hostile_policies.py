"""Policy files written to hurt the service are refused quickly and cleanly, never hang or crash it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from fairpath.authoring.lint import lint_text
from fairpath.engine import compiler
from fairpath.engine.compiler import (
    MAX_GROUPS,
    MAX_RULES,
    MAX_SPLIT,
    Action,
    CompiledPolicy,
    PatternTooLargeError,
    compile_policy,
    groups,
    pattern,
)
from fairpath.engine.durable import DurableEngine
from fairpath.errors import EngineError, InvalidFactsError, PolicyFileError
from fairpath.policy.conditions import MAX_DEPTH, MAX_TERMS, ConditionSyntaxError, Member, parse, to_nnf
from fairpath.policy.loader import MAX_POLICY_BYTES, MAX_POLICY_RULES, load_bytes, load_file
from fairpath.policy.registry import PolicyRegistry, policy_files
from fairpath.serving.evaluator import Evaluator

from tests.conftest import POLICIES
from tests.support.policy_builder import minimal_policy, policy_text


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


# --- cost bounds: what a hostile file can make the loader and compiler do -----------------------


def _rule_condition(when: str, **extra: Any) -> bytes:
    """The minimal policy with rule r2's condition replaced (and a question, since it may read several facts)."""
    document = minimal_policy()
    document["facts"] += [{"name": f"a{i}", "type": "answer", "question": f"A{i}?"} for i in range(16)]
    document["rules"][1].update(when=when, question="Several things?", **extra)
    return policy_text(document).encode()


def test_a_condition_may_hold_exactly_the_most_terms_and_no_more() -> None:
    """MAX_TERMS comparisons parse; one more is a syntax error at the column of the extra one."""
    fits = " or ".join(["x is YES"] * MAX_TERMS)
    assert len(parse(fits).items) == MAX_TERMS  # type: ignore[union-attr]
    with pytest.raises(ConditionSyntaxError, match=f"at most {MAX_TERMS} comparisons") as caught:
        parse(fits + " or y is YES")
    assert caught.value.column == len(fits) + len(" or ") + 1


def test_listed_values_count_as_terms() -> None:
    """A list of values counts one term per value: MAX_TERMS values parse, one more is refused at it."""
    values = [f"V{i}" for i in range(MAX_TERMS)]
    assert parse(f"x in [{', '.join(values)}]") == Member("x", tuple(values))
    text = f"x in [{', '.join(values)}, EXTRA]"
    with pytest.raises(ConditionSyntaxError, match="at most") as caught:
        parse(text)
    assert caught.value.column == text.index("EXTRA") + 1
    with pytest.raises(ConditionSyntaxError, match="at most"):
        parse(f"x has any [{', '.join(values)}, EXTRA]")
    with pytest.raises(ConditionSyntaxError, match="at most"):
        parse(" or ".join(["always"] * (MAX_TERMS + 1)))


@pytest.mark.parametrize("terms", [300, 2000])
def test_hundreds_of_or_terms_in_a_file_are_refused_at_the_rule_and_line(terms: int) -> None:
    """The issue's hostile texts (300 and 2,000 `or` terms) are refused by the loader, naming file, rule and line."""
    text = _rule_condition(" or ".join(f"years >= {i}" for i in range(terms)))
    with pytest.raises(PolicyFileError, match=f"at most {MAX_TERMS} comparisons") as caught:
        load_bytes(text, "hostile.yaml")
    error = caught.value
    assert (error.path, error.rule_id, error.line) == ("hostile.yaml", "r2", _line(text, "id: r2"))


def test_a_refused_long_condition_is_quoted_cut_short() -> None:
    """The error quotes the first 120 characters of a long condition, not all of it (it goes to logs and GetStatus)."""
    text = _rule_condition(" or ".join(f"years >= {i}" for i in range(300)))
    with pytest.raises(PolicyFileError) as caught:
        load_bytes(text, "hostile.yaml")
    quoted = caught.value.message.split(": a condition")[0]
    assert quoted.endswith("…'")
    assert len(quoted) < 160


def test_nesting_is_counted_per_branch_not_accumulated_over_siblings() -> None:
    """40 sibling groups and then exactly MAX_DEPTH levels parse; MAX_DEPTH + 1 levels after them do not."""
    siblings = " and ".join(["(x is YES)"] * 40)
    deepest = "(" * MAX_DEPTH + "x is YES" + ")" * MAX_DEPTH
    parse(f"{siblings} and {deepest}")
    parse(f"{siblings} and " + "not " * MAX_DEPTH + "x is YES")
    with pytest.raises(ConditionSyntaxError, match=f"nest at most {MAX_DEPTH}"):
        parse(f"{siblings} and ({deepest})")
    with pytest.raises(ConditionSyntaxError, match=f"nest at most {MAX_DEPTH}"):
        parse(f"{siblings} and " + "not " * (MAX_DEPTH + 1) + "x is YES")


def _answered(count: int) -> bytes:
    """A one-rule policy whose `else` path needs ``count`` + 1 and/or groups (one per fact, one for the rule)."""
    document = minimal_policy()
    document["facts"] += [{"name": f"a{i}", "type": "answer", "question": f"A{i}?"} for i in range(count)]
    document["rules"] = [{"id": "r1", "title": "All answered", "question": "All answered?",
                          "when": " and ".join(f"a{i} is answered" for i in range(count)),
                          "then": "pathway ACT", "else": "pathway LEARN"}]
    document["advice"], document["checks"] = [], []
    return policy_text(document).encode()


def _most_groups(compiled: CompiledPolicy) -> int:
    return max(groups(rule["all"]) for rule in compiled.rules.values())


def test_a_path_with_exactly_the_engines_most_groups_compiles_and_registers() -> None:
    """MAX_GROUPS and/or groups in one engine rule: compiled, and the real durable_rules takes it."""
    compiled = compile_policy(load_bytes(_answered(MAX_GROUPS - 1), "groups.yaml"))
    assert _most_groups(compiled) == MAX_GROUPS
    engine = DurableEngine(sessions=2)
    engine.register(compiled)
    engine.release(compiled)


def test_one_group_more_than_the_engine_takes_is_refused_at_the_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """MAX_GROUPS + 1 groups: refused by the compiler at the rule's line; durable_rules itself refuses it too (113)."""
    text = _answered(MAX_GROUPS)
    with pytest.raises(PolicyFileError, match=f"at most {MAX_GROUPS}") as caught:
        compile_policy(load_bytes(text, "groups.yaml"))
    assert (caught.value.rule_id, caught.value.line) == ("r1", _line(text, "id: r1"))
    # The limit is durable_rules' own: with the compiler's check moved one further, the engine refuses.
    monkeypatch.setattr(compiler, "MAX_GROUPS", MAX_GROUPS + 1)
    compiled = compile_policy(load_bytes(text, "groups.yaml"))
    assert _most_groups(compiled) == MAX_GROUPS + 1
    with pytest.raises(EngineError, match="error code: 113"):
        DurableEngine(sessions=2).register(compiled)


def test_ten_alternatives_on_a_number_are_refused_at_the_rule_not_by_the_engine() -> None:
    """A 10-term `or` (within the term limit) needs far more groups than durable takes: a compile error at r2."""
    text = _rule_condition(" or ".join(f"years >= {i}" for i in range(10)))
    with pytest.raises(PolicyFileError, match="and/or groups") as caught:
        compile_policy(load_bytes(text, "many-or.yaml"))
    assert (caught.value.rule_id, caught.value.line) == ("r2", _line(text, "id: r2"))


def test_lint_reports_a_compile_limit_at_the_rule_and_line() -> None:
    """`fairpath policy lint` carries the compiler's rule and line into its ``compile`` problem."""
    text = _rule_condition(" or ".join(f"years >= {i}" for i in range(10)))
    [problem] = [p for p in lint_text(text, "many-or.yaml").problems if p.check == "compile"]
    assert (problem.path, problem.rule_id, problem.line) == ("many-or.yaml", "r2", _line(text, "id: r2"))


def _alternating(depth: int) -> str:
    """``((a0 or a1) and a2) or a3 ...``: its exclusive-alternative pattern grows about 3x every two levels."""
    text = "a0 is YES"
    for i in range(1, depth + 1):
        text = f"({text}) {'or' if i % 2 else 'and'} a{i % 4} is YES"
    return text


def test_an_exponentially_growing_pattern_is_refused_while_it_is_built() -> None:
    """30 alternating levels (31 terms: within the limits) would be ~10^8 nodes: pattern() stops at its budget."""
    condition = to_nnf(parse(_alternating(30)))
    with pytest.raises(PatternTooLargeError):
        pattern(condition)
    text = _rule_condition(_alternating(30))
    with pytest.raises(PolicyFileError, match="too complex to compile") as caught:
        compile_policy(load_bytes(text, "nested.yaml"))
    assert (caught.value.rule_id, caught.value.line) == ("r2", _line(text, "id: r2"))


def test_the_shipped_policies_compile_well_inside_every_limit() -> None:
    """Every shipped version compiles with room to spare: two groups below the engine's 15, half the rule limit."""
    for path in policy_files(POLICIES):  # the policies, not their scenario or accepted-findings files
        compiled = compile_policy(load_bytes(path.read_bytes(), str(path)))
        assert _most_groups(compiled) <= MAX_GROUPS - 2, path
        assert len(compiled.rules) <= MAX_RULES // 2, path


def _forked_chain(links: int, first: str) -> bytes:
    """``first`` sends both answers on to a chain of ``links`` rules on one number, each exiting on `then`.

    Paths: 2 * (links + 2), plus one more when ``first`` reads a fact (the walk can stop there).
    """
    document = minimal_policy()
    document["rules"] = [
        {"id": "r0", "title": "Start", "question": "Start?", "when": first, "then": "go to c0", "else": "go to c0"},
        *({"id": f"c{i}", "title": f"C{i}", "when": f"years >= {i}", "then": "pathway ACT",
           "else": f"go to c{i + 1}" if i + 1 < links else "pathway LEARN"} for i in range(links)),
    ]
    document["advice"], document["checks"] = [], []
    return policy_text(document).encode()


def _with_checks(text: bytes, count: int) -> bytes:
    """``text`` with ``count`` checks on facts alone (each compiles to one engine rule of its own)."""
    document = yaml.safe_load(text)
    document["checks"] = [{"id": f"k{i}", "text": "Check.", "when": f"years >= {i + 100}"} for i in range(count)]
    return policy_text(document).encode()


def test_a_walk_of_exactly_the_most_paths_compiles_and_one_more_is_refused_where_it_happens() -> None:
    """400 paths (2 * (198 + 2)) compile; 401 are refused while walking, naming the rule at which it overflowed."""
    assert len(compile_policy(load_bytes(_forked_chain(198, "intent_to_harm is answered"))).rules) == MAX_RULES
    text = _forked_chain(198, "intent_to_harm is YES")
    with pytest.raises(PolicyFileError, match=f"more paths than the engine takes \\(at most {MAX_RULES}") as caught:
        compile_policy(load_bytes(text, "paths.yaml"))
    assert caught.value.rule_id.startswith("c")
    assert caught.value.line == _line(text, f"id: {caught.value.rule_id}")


def test_a_path_split_by_advice_counts_all_its_variants_against_the_most_rules() -> None:
    """396 paths, the last two split in two by advice on LEARN: 400 engine rules, the last path at the limit exactly."""
    document = yaml.safe_load(_forked_chain(197, "intent_to_harm is answered"))
    document["advice"] = [
        {"id": "a1", "code": "ON_DUTY", "text": "On duty.", "when": "pathway is LEARN and on_duty is true"}
    ]
    compiled = compile_policy(load_bytes(policy_text(document).encode()))
    assert len(compiled.rules) == MAX_RULES
    last = len(compiled.terminals) - 1
    assert list(compiled.rules)[-2:] == [f"path-{last}.0", f"path-{last}.1"]


def test_rules_of_their_own_count_towards_the_most_engine_rules() -> None:
    """398 paths and 2 fact-only checks make 400 engine rules and compile; a third check makes 401, refused.

    The refusal is about the whole policy: it names the file, and no rule or line.
    """
    paths = _forked_chain(197, "intent_to_harm is answered")
    assert len(compile_policy(load_bytes(_with_checks(paths, 2))).rules) == MAX_RULES
    with pytest.raises(PolicyFileError, match=f"compiles to {MAX_RULES + 1} engine rules") as caught:
        compile_policy(load_bytes(_with_checks(paths, 3), "rules.yaml"))
    assert (caught.value.path, caught.value.rule_id, caught.value.line) == ("rules.yaml", "", None)
    assert str(caught.value).startswith("rules.yaml: the policy compiles to")


def _split(count: int) -> bytes:
    """The minimal policy with ``count`` advice rules that read the outcome and a fact."""
    document = minimal_policy()
    document["advice"] = [{"id": f"a{i}", "code": f"ADVICE_{i}", "text": "Advice.",
                           "when": "pathway is ACT and on_duty is true"} for i in range(count)]
    return policy_text(document).encode()


def test_at_most_max_split_outcome_and_fact_advice_per_path() -> None:
    """MAX_SPLIT such advice rules split a path into 2**MAX_SPLIT engine rules; one more is refused at the rule."""
    compiled = compile_policy(load_bytes(_split(MAX_SPLIT)))
    variants = [name for name in compiled.rules if name.startswith("path-") and "." in name]
    assert len(variants) == 2 * 2**MAX_SPLIT  # the two paths that reach ACT
    text = _split(MAX_SPLIT + 1)
    with pytest.raises(PolicyFileError, match=f"{MAX_SPLIT + 1} advice rules read both") as caught:
        compile_policy(load_bytes(text, "split.yaml"))
    assert (caught.value.rule_id, caught.value.line) == ("r1", _line(text, "id: r1"))


def _padded(size: int) -> bytes:
    """A valid policy padded with a YAML comment to exactly ``size`` bytes."""
    text = policy_text(minimal_policy()).encode()
    return text + b"#" + b"x" * (size - len(text) - 2) + b"\n"


def test_a_policy_of_exactly_the_most_bytes_loads_and_one_more_is_refused() -> None:
    """MAX_POLICY_BYTES load; one byte more is refused before parsing, naming the file."""
    assert load_bytes(_padded(MAX_POLICY_BYTES), "big.yaml").name == "mini-policy"
    with pytest.raises(PolicyFileError, match="larger than 256 KiB") as caught:
        load_bytes(_padded(MAX_POLICY_BYTES + 1), "big.yaml")
    assert caught.value.path == "big.yaml"


def test_load_file_reads_no_further_than_the_limit(tmp_path: Path) -> None:
    """A huge file is refused having read at most the limit (a sparse 1 GiB file costs nothing to make)."""
    path = tmp_path / "huge.yaml"
    with path.open("wb") as file:
        file.truncate(2**30)
    with pytest.raises(PolicyFileError, match="larger than") as caught:
        load_file(path)
    assert caught.value.path == str(path)


@pytest.mark.timeout(30)
def test_a_fifo_named_like_a_policy_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    """A named pipe is not a regular file: refused at once (reading it would block the reload forever)."""
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    with pytest.raises(PolicyFileError, match="not a regular file"):
        load_file(path)


def test_at_most_max_policy_rules_rules_advice_and_checks_together() -> None:
    """MAX_POLICY_RULES entries load; one more is refused before any of them is parsed."""
    document = minimal_policy()
    document["checks"] = [{"id": f"k{i}", "text": "Check.", "when": "years >= 1"}
                          for i in range(MAX_POLICY_RULES - 3)]  # 2 rules + 1 advice + the rest
    assert len(load_bytes(policy_text(document).encode()).checks) == MAX_POLICY_RULES - 3
    document["checks"].append({"id": "one-more", "text": "Check.", "when": "years >= 1"})
    with pytest.raises(PolicyFileError, match=f"{MAX_POLICY_RULES + 1} rules, advice and checks"):
        load_bytes(policy_text(document).encode())


def _line(text: bytes, needle: str) -> int:
    """The 1-based line of ``text`` holding ``needle``."""
    return next(number for number, line in enumerate(text.decode().splitlines(), 1) if needle in line)
