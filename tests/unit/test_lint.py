"""``fairpath policy lint``: each check on a policy broken in exactly that way, and the real policies.

Broken policies start from :func:`minimal_policy`, change one thing and are
written to ``tmp_path``; every finding is checked for its check code, severity,
rule id and line (found independently by searching the written text).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from fairpath.authoring.lint import LintReport, lint_file, lint_text
from fairpath.cli import main
from fairpath.errors import EngineError
from fairpath.policy.loader import load_bytes
from fairpath.policy.registry import PolicyRegistry, policy_files
from fairpath.policy.vocabulary import ADVICE_CODES_FILE, load_advice_codes
from fairpath.problems import Problem
from fairpath.serving.evaluator import Evaluator

from tests.conftest import GUIDE, POLICIES
from tests.support.policy_builder import line_of, minimal_policy, policy_text, write_policy

REAL = policy_files(POLICIES)


#: The advice codes shipped beside the policies.
KNOWN_CODES = load_advice_codes(POLICIES / ADVICE_CODES_FILE)


def lint_document(tmp_path: Path, document: dict[str, Any]) -> tuple[Path, LintReport]:
    """Write ``document`` beside a copy of the shipped advice codes and lint the file."""
    (tmp_path / ADVICE_CODES_FILE).write_bytes((POLICIES / ADVICE_CODES_FILE).read_bytes())
    path = write_policy(tmp_path / "policy.yaml", document)
    return path, lint_file(path)


def found(report: LintReport, check: str) -> list[Problem]:
    """Return the problems of one check."""
    return [problem for problem in report.problems if problem.check == check]


def rules(*entries: tuple[str, str, str, str]) -> list[dict[str, str]]:
    """Build walk rules from (id, when, then, else)."""
    return [{"id": i, "title": i, "question": f"{i}?", "when": when, "then": then, "else": otherwise}
            for i, when, then, otherwise in entries]


# --- the real policies ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", REAL, ids=lambda p: str(p.relative_to(POLICIES)))
def test_real_policies_have_no_lint_errors(path: Path) -> None:
    """Every policy under policies/ loads, and lint finds no error in it (warnings may remain)."""
    report = lint_file(path)
    assert report.policy is not None
    assert [str(p) for p in report.errors] == []


def test_guide_lints_clean_and_says_what_it_enumerated() -> None:
    """The guide 1.0.0 has no finding at all, and the note counts every combination of its 14 walk facts."""
    report = lint_file(POLICIES / GUIDE / "1.0.0.yaml")
    assert report.problems == ()
    assert report.notes == (
        "walk: 29 classes of answers cover all 4,782,969 combinations of the 14 facts the walk reads; "
        "the engine agreed with the walk on every one",
    )


def test_minimal_policy_only_warns_about_unused_facts_and_its_code() -> None:
    """The minimal policy's only findings are its three unread facts and its unlisted advice code."""
    report = lint_text(policy_text(minimal_policy()), "mini.yaml", known_codes=KNOWN_CODES)
    assert sorted((p.check, p.severity) for p in report.problems) == [
        ("unknown-code", "warning"), ("unused-fact", "warning"), ("unused-fact", "warning"),
        ("unused-fact", "warning"),
    ]


# --- load errors ---------------------------------------------------------------------------------


def test_invalid_yaml_is_a_load_error_with_its_line(tmp_path: Path) -> None:
    """A file that is not YAML is one error, check ``load``, at the line the parser stopped."""
    path = tmp_path / "policy.yaml"
    path.write_text("policy: mini-policy\nversion: [1.0.0\n", encoding="utf-8")
    report = lint_file(path)
    assert report.policy is None
    assert [(p.check, p.severity, p.line) for p in report.problems] == [("load", "error", 3)]


def test_undeclared_fact_is_reported_with_rule_and_line(tmp_path: Path) -> None:
    """A condition on an undeclared fact is an ``undeclared-fact`` error naming the rule and its line."""
    document = minimal_policy()
    document["rules"][1]["when"] = "seniority >= 2"
    path, report = lint_document(tmp_path, document)
    [problem] = report.problems
    assert (problem.check, problem.severity, problem.rule_id) == ("undeclared-fact", "error", "r2")
    assert problem.line == line_of(path, "id: r2")
    assert "'seniority' is not declared" in problem.message


def test_unreadable_file_is_a_load_error(tmp_path: Path) -> None:
    """A path that cannot be read is reported, not raised."""
    report = lint_file(tmp_path / "missing.yaml")
    assert [(p.check, p.severity) for p in report.problems] == [("load", "error")]


# --- static checks -------------------------------------------------------------------------------


def test_unused_fact_points_at_its_declaration(tmp_path: Path) -> None:
    """A declared fact nothing reads is an ``unused-fact`` warning at the line of its entry."""
    path, report = lint_document(tmp_path, minimal_policy())
    lines = {p.message.split("'")[1]: p.line for p in found(report, "unused-fact")}
    assert lines == {name: line_of(path, f"name: {name}") for name in ("stage", "on_duty", "note")}
    assert {p.severity for p in found(report, "unused-fact")} == {"warning"}


def test_unknown_advice_code_is_a_warning_and_known_codes_are_not(tmp_path: Path) -> None:
    """An advice code outside the domain reference's list is flagged; one on the list is not."""
    document = minimal_policy()
    document["advice"].append({"id": "a2", "code": "PROVISIONAL", "text": "t", "when": "pathway is LEARN"})
    path, report = lint_document(tmp_path, document)
    [problem] = found(report, "unknown-code")
    assert (problem.rule_id, problem.line, problem.severity) == ("a1", line_of(path, "id: a1"), "warning")
    assert "PROVISIONAL" in KNOWN_CODES


def test_advice_codes_are_domain_data_beside_the_policies(tmp_path: Path) -> None:
    """The known advice codes are domain data in advice-codes.yaml beside the policies.

    Without the file lint says it did not check them; a broken one is reported; the policy scan
    never takes it for a policy.
    """
    document = minimal_policy()
    path = write_policy(tmp_path / "drafts" / "policy.yaml", document)
    unchecked = lint_file(path)
    assert found(unchecked, "unknown-code") == []
    assert any(f"no {ADVICE_CODES_FILE}" in note for note in unchecked.notes)

    (tmp_path / ADVICE_CODES_FILE).write_text("advice_codes: [lower_case]\n", encoding="utf-8")
    [broken] = found(lint_file(path), "advice-codes")
    assert broken.path.endswith(ADVICE_CODES_FILE)
    assert broken.severity == "error"

    (tmp_path / ADVICE_CODES_FILE).write_text("advice_codes: [EDUCATION_ADVICE]\n", encoding="utf-8")
    document["advice"][0]["code"] = "EDUCATION_ADVICE"
    write_policy(path, document)
    assert found(lint_file(path), "unknown-code") == []
    assert (POLICIES / ADVICE_CODES_FILE) not in policy_files(POLICIES)


def test_pathway_no_rule_leads_to_is_unreachable(tmp_path: Path) -> None:
    """A pathway no rule targets is an ``unreachable-pathway`` warning at its entry's line."""
    document = minimal_policy()
    document["pathways"].append(
        {"code": "SPARE", "title": "Spare", "recommendation": "r", "individual_directed": False}
    )
    path, report = lint_document(tmp_path, document)
    [problem] = found(report, "unreachable-pathway")
    assert problem.line == line_of(path, "code: SPARE")
    assert problem.message == "pathway SPARE is never reached: no rule leads to it"


# --- checks by enumeration -----------------------------------------------------------------------


def test_dead_branch_and_the_rule_and_pathway_behind_it(tmp_path: Path) -> None:
    """A condition that cannot hold on the answers reaching it kills its branch, and what lies behind it."""
    document = minimal_policy()
    document["pathways"].append(
        {"code": "SPARE", "title": "Spare", "recommendation": "r", "individual_directed": False}
    )
    document["rules"] = rules(
        ("r1", "intent_to_harm is YES", "go to r2", "pathway LEARN"),
        ("r2", "intent_to_harm is NO", "go to r3", "pathway ACT"),  # reached only when intent is YES
        ("r3", "years >= 2", "pathway SPARE", "pathway ACT"),
    )
    path, report = lint_document(tmp_path, document)
    [dead] = found(report, "dead-branch")
    assert (dead.rule_id, dead.line, dead.severity) == ("r2", line_of(path, "id: r2"), "error")
    assert dead.message.startswith("'then: rule r3' is never taken")
    [unreachable] = found(report, "unreachable-rule")
    assert (unreachable.rule_id, unreachable.line) == ("r3", line_of(path, "id: r3"))
    [pathway] = found(report, "unreachable-pathway")
    assert pathway.message == "pathway SPARE is never reached: only dead branches lead to it"


def test_else_of_always_is_not_a_dead_branch(tmp_path: Path) -> None:
    """``always`` has an else only because the format asks for one: it is not reported."""
    document = minimal_policy()
    document["rules"].insert(0, {"id": "r0", "title": "Start", "question": "Start?", "when": "always",
                                 "then": "go to r1", "else": "go to r1"})
    _, report = lint_document(tmp_path, document)
    assert found(report, "dead-branch") == []


def test_answer_leads_nowhere_when_then_and_else_agree(tmp_path: Path) -> None:
    """A question whose branches lead to one place stops the walk for an answer that changes nothing."""
    document = minimal_policy()
    document["rules"][1]["then"] = "pathway LEARN"
    path, report = lint_document(tmp_path, document)
    [problem] = found(report, "answer-leads-nowhere")
    assert (problem.rule_id, problem.line, problem.severity) == ("r2", line_of(path, "id: r2"), "warning")
    assert "'then' and 'else' both lead to pathway LEARN" in problem.message
    assert "while years is unanswered" in problem.message


def test_answer_leads_nowhere_when_earlier_answers_decide_the_rule(tmp_path: Path) -> None:
    """A fact whose answer never matters given the answers that reach the rule is flagged, by name."""
    document = minimal_policy()
    document["rules"] = rules(
        ("r1", "intent_to_harm is YES", "go to r2", "pathway LEARN"),
        ("r2", "intent_to_harm is YES or on_duty is true", "pathway ACT", "pathway LEARN"),
    )
    _, report = lint_document(tmp_path, document)
    [problem] = found(report, "answer-leads-nowhere")
    assert problem.rule_id == "r2"
    assert "no answer to on_duty changes where it leads" in problem.message
    assert found(report, "dead-branch")[0].rule_id == "r2"  # and its else can never be taken


def test_a_fact_asked_earlier_and_read_again_is_not_flagged(tmp_path: Path) -> None:
    """Re-reading a fact already answered is not asking it: only the rule that stops for it is judged."""
    document = minimal_policy()
    document["rules"] = rules(
        ("r1", "severity is HIGH", "go to r2", "go to r2"),
        ("r2", "severity is HIGH and years >= 2", "pathway ACT", "pathway LEARN"),
    )
    _, report = lint_document(tmp_path, document)
    assert [p.rule_id for p in found(report, "answer-leads-nowhere")] == ["r1"]


def test_overlapping_advice_with_one_code_names_both_and_an_example(tmp_path: Path) -> None:
    """Two advice rules with one code that can hold together are flagged on the second, with answers."""
    document = minimal_policy()
    document["advice"].append({"id": "a2", "code": "HR_ADVICE", "text": "t", "when": "intent_to_harm is YES"})
    path, report = lint_document(tmp_path, document)
    [problem] = found(report, "overlapping-conditions")
    assert (problem.rule_id, problem.line, problem.severity) == ("a2", line_of(path, "id: a2"), "warning")
    assert "advice a1 and a2 both give HR_ADVICE" in problem.message
    assert "intent_to_harm = YES" in problem.message


def test_exclusive_advice_with_one_code_is_not_overlapping(tmp_path: Path) -> None:
    """Advice rules sharing a code but never holding together are fine."""
    document = minimal_policy()
    document["advice"].append({"id": "a2", "code": "HR_ADVICE", "text": "t", "when": "pathway is LEARN"})
    _, report = lint_document(tmp_path, document)
    assert found(report, "overlapping-conditions") == []


def test_identical_checks_are_overlapping(tmp_path: Path) -> None:
    """A check that holds for exactly the same answers as another, however written, is flagged."""
    document = minimal_policy()
    document["checks"].append(
        {"id": "c2", "text": "t", "when": "not (severity is not HIGH or intent_to_harm is not NO)"}
    )
    path, report = lint_document(tmp_path, document)
    [problem] = found(report, "overlapping-conditions")
    assert (problem.rule_id, problem.line) == ("c2", line_of(path, "id: c2"))
    assert problem.message == "check c2 holds for exactly the same answers as check c1"


def test_advice_that_can_never_fire(tmp_path: Path) -> None:
    """Advice whose condition contradicts every path to its pathway can never be given."""
    document = minimal_policy()
    document["advice"].append(
        {"id": "a2", "code": "PROVISIONAL", "text": "t", "when": "pathway is LEARN and intent_to_harm is YES"}
    )
    path, report = lint_document(tmp_path, document)
    [problem] = found(report, "never-fires")
    assert (problem.rule_id, problem.line, problem.severity) == ("a2", line_of(path, "id: a2"), "warning")
    assert problem.message.startswith("advice PROVISIONAL can never be given")


def test_enumeration_above_the_bound_is_refused_and_said(tmp_path: Path) -> None:
    """Above the bound nothing is enumerated, and a ``gap`` warning says what was not checked."""
    path = write_policy(tmp_path / "policy.yaml", minimal_policy())
    report = lint_file(path, limit=2)
    [problem] = found(report, "gap")
    assert problem.severity == "warning"
    assert problem.message.startswith("not enumerated: the walk has more than 2 classes of answers")


def test_engine_disagreeing_with_the_walk_is_a_gap(tmp_path: Path) -> None:
    """If the engine's outcome for a class of answers differs from the walk's, that is a ``gap`` error."""
    document = minimal_policy()
    text = policy_text(document)
    document["rules"][1]["then"], document["rules"][1]["else"] = "pathway LEARN", "pathway ACT"
    swapped = load_bytes(policy_text(document).encode(), path="swapped.yaml")  # same name@version
    evaluator = Evaluator(PolicyRegistry([swapped]))
    try:
        report = lint_text(text, "mini.yaml", evaluator=evaluator)
    finally:
        evaluator.close()
    gaps = found(report, "gap")
    assert gaps
    assert {p.severity for p in gaps} == {"error"}
    assert {p.rule_id for p in gaps} == {"r2"}
    assert "the engine reached LEARN, but the walk leads to ACT" in " ".join(p.message for p in gaps)


class _NoOutcome:
    """Stands in for an evaluator whose engine matches no compiled path."""

    def evaluate(self, *_: object, **__: object) -> None:
        raise EngineError("no compiled path matched; the walk is not exhaustive")

    def close(self) -> None:
        """Nothing to release."""


def test_answers_reaching_no_outcome_are_a_gap() -> None:
    """A class of answers for which the engine reaches neither a pathway nor NEEDS_INFORMATION is an error."""
    report = lint_text(policy_text(minimal_policy()), "mini.yaml", evaluator=cast(Evaluator, _NoOutcome()))
    gaps = found(report, "gap")
    assert len(gaps) == 6  # one per class of answers of the walk
    assert all("the engine reached no outcome" in p.message for p in gaps)
    assert {p.severity for p in gaps} == {"error"}


# --- the command ---------------------------------------------------------------------------------


def test_lint_command_passes_on_the_real_policies(capsys: pytest.CaptureFixture[str]) -> None:
    """``fairpath policy lint policies`` exits 0 and ends with the totals."""
    assert main(["policy", "lint", str(POLICIES)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"{len(REAL)} file(s): 0 errors, ")


def test_lint_command_fails_on_an_error_and_prints_compiler_style_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An error makes it exit 1; findings read ``path:line: severity: rule R: message [check]``."""
    document = minimal_policy()
    document["rules"] = rules(
        ("r1", "intent_to_harm is YES", "go to r2", "pathway LEARN"),
        ("r2", "intent_to_harm is NO", "pathway LEARN", "pathway ACT"),
    )
    path, _ = lint_document(tmp_path, document)
    assert main(["policy", "lint", str(path)]) == 1
    out = capsys.readouterr().out
    line = line_of(path, "id: r2")
    assert f"{path}:{line}: error: rule r2: 'then: pathway LEARN' is never taken" in out
    assert out.rstrip().endswith("1 file(s): 1 error, 5 warnings")  # 4 unused facts, 1 code


def test_lint_command_on_a_missing_path_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A path that does not exist is a usage error."""
    assert main(["policy", "lint", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
