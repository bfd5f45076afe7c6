"""Running a version's own test cases: the one runner behind every place cases are run.

The reload gate (a version serves only once its own cases pass), ``fairpath policy test``,
``ValidatePolicy`` and the test suite all run cases here, against the compiled version they
already hold, and :func:`case_problems` turns a report into problems the same way for all of them.
The cases file itself (where it lives, its format) is :mod:`fairpath.policy.cases`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from fairpath.decisions import Decision, RuleKind, RuleResult
from fairpath.engine.compiler import CompiledPolicy
from fairpath.engine.protocol import Engine
from fairpath.errors import EngineError, FairpathError, PolicyFileError
from fairpath.policy.cases import CaseResult, CasesReport, CoverageItem
from fairpath.policy.model import Policy
from fairpath.policy.registry import PolicyRegistry
from fairpath.problems import COMPILE, TESTS, Problem
from fairpath.serving.evaluator import Evaluator

#: Failing cases reported one by one; the rest are counted in one more problem.
MAX_CASE_PROBLEMS = 10

#: Evaluates one case's facts against the version under test.
Evaluate = Callable[[Mapping[str, object]], Decision]


def compile_problem(error: PolicyFileError | EngineError, path: str) -> Problem:
    """The problem reported for a version the compiler or the engine refused.

    One form wherever it was compiled (staging, ValidatePolicy, lint, ``policy test``); the
    compiler's limits name the rule and its line.
    """
    if isinstance(error, PolicyFileError):
        return Problem.from_error(error, check=COMPILE, path=path)
    return Problem(path=path, message=str(error), check=COMPILE)


def trial_evaluator(
    policy: Policy, engine: Engine | None = None, *, required: Sequence[Policy] = ()
) -> Evaluator | Problem:
    """A throwaway evaluator serving ``policy`` (close it after use), or why it cannot be built.

    ``required`` are the versions a chained policy requires, served beside it. ``engine`` is
    shared when given (``policy test`` runs many versions on one).
    """
    try:
        return Evaluator(PolicyRegistry([policy, *(other for other in required if other is not policy)]), engine=engine)
    except (PolicyFileError, EngineError) as error:
        return compile_problem(error, policy.path)


def stops_of(compiled: CompiledPolicy) -> frozenset[str]:
    """The rules where a walk of the compiled version can stop unanswered."""
    return frozenset(terminal.unanswered_rule for terminal in compiled.terminals)


def case_problems(report: CasesReport, tests_path: str) -> list[Problem]:
    """What is wrong with a version's cases, as problems.

    Failing cases are errors (at most :data:`MAX_CASE_PROBLEMS` listed, the rest counted);
    rule outcomes, advice, checks and pathways no case exercised are one warning.
    """
    failed = [case for case in report.cases if not case.passed]
    problems = [
        Problem(path=tests_path, check=TESTS, message=f"case {case.name!r}: {'; '.join(case.failures)}")
        for case in failed[:MAX_CASE_PROBLEMS]
    ]
    if len(failed) > MAX_CASE_PROBLEMS:
        more = len(failed) - MAX_CASE_PROBLEMS
        problems.append(Problem(path=tests_path, check=TESTS, message=f"and {more} more failing case(s)"))
    if report.uncovered:
        items = ", ".join(item.item for item in report.uncovered)
        problems.append(Problem(path=tests_path, check=TESTS, severity="warning",
                                message=f"{report.policy}: no case exercises {items}"))
    return problems


def check_case(case: Mapping[str, Any], decision: Decision) -> tuple[str, ...]:
    """The differences between a case's expectation and ``decision`` (empty when it passes)."""
    expect = case["expect"]
    failures = []

    def compare(what: str, got: object, want: object) -> None:
        if got != want:
            failures.append(f"{what}: expected {want!r}, got {got!r}")

    compare("status", decision.status.value, expect.get("status", "DECIDED"))
    compare("pathway", decision.pathway.code if decision.pathway else "", expect.get("pathway") or "")
    compare("sub_reason", decision.pathway.sub_reason if decision.pathway else "", str(expect.get("sub_reason") or ""))
    fired = [t.rule_id for t in decision.trace if t.kind is RuleKind.QUESTION and t.result is RuleResult.FIRED]
    compare("fired", fired, [str(rule) for rule in expect.get("fired") or []])
    compare("missing", [m.fact for m in decision.missing_facts], list(expect.get("missing") or []))
    compare("advice", sorted({a.code for a in decision.advice}), sorted(set(expect.get("advice") or [])))
    compare("warnings", sorted({w.code for w in decision.warnings}), sorted(set(expect.get("warnings") or [])))
    absent = set(expect.get("advice_rules_include") or []) - {a.rule_id for a in decision.advice}
    if absent:
        failures.append(f"advice rules not fired: {sorted(absent)}")
    return tuple(failures)


def coverage_items(policy: Policy, stops: Collection[str]) -> list[tuple[str, str]]:
    """Everything a policy's cases must exercise: (item, kind).

    A rule must be seen unanswered only where the walk can stop there (``stops``, from the
    compiled version): not when every fact it needs was already needed by an earlier step on
    every path.
    """
    items = [
        (f"{rule.id}:{result}", "rule")
        for rule in policy.rules
        for result in ("FIRED", "NOT_FIRED", "UNANSWERED")
        if result != "UNANSWERED" or rule.id in stops
    ]
    items += [(f"{rule.id}:FIRED", "advice") for rule in policy.advice]
    items += [(f"{rule.id}:FIRED", "check") for rule in policy.checks]
    items += [(f"pathway:{code}", "pathway") for code in policy.pathways]
    return items


def run_cases(
    compiled: CompiledPolicy, cases: list[dict[str, Any]], evaluate: Evaluate
) -> CasesReport:
    """Evaluate every case of the compiled version with ``evaluate`` and compare; count coverage."""
    policy = compiled.policy
    items = coverage_items(policy, stops_of(compiled))
    hits = dict.fromkeys((item for item, _ in items), 0)
    results = []
    for case in cases:
        try:
            decision = evaluate(case.get("facts") or {})
        except FairpathError as error:
            results.append(CaseResult(case["name"], False, (f"evaluation failed: {error}",)))
            continue
        failures = check_case(case, decision)
        results.append(CaseResult(case["name"], not failures, failures))
        for entry in decision.trace:
            key = f"{entry.rule_id}:{entry.result.value}"
            if key in hits:
                hits[key] += 1
        if decision.pathway and f"pathway:{decision.pathway.code}" in hits:
            hits[f"pathway:{decision.pathway.code}"] += 1
    coverage = tuple(CoverageItem(item, kind, hits[item]) for item, kind in items)
    return CasesReport(policy.key, tuple(results), coverage)
