"""``PolicyService.ValidatePolicy``: lint and test draft policy text without loading it into the server.

The text is parsed with the same loader as policy files, linted
(:mod:`fairpath.authoring.lint`) and its cases run
(:mod:`fairpath.authoring.testing`) on a throwaway
:class:`~fairpath.evaluation.Evaluator` with an engine of its own, which is
closed — its ruleset unloaded — before the answer goes back: nothing the
server serves is touched, and memory does not grow with each draft. A draft
that does not parse is an ordinary answer (``ok`` false, with the problem's
path, rule and line), never an RPC error.

Validations take turns: each compiles a ruleset and enumerates the draft's
answers, which holds the GIL for a while, so running them one at a time keeps
evaluations flowing between them. The enumeration is bounded more tightly
than on the command line (:data:`MAX_COMBINATIONS`); a larger draft gets a
``gap`` warning saying the enumeration was not done.
"""

from __future__ import annotations

import threading

from fairpath.api import convert
from fairpath.api.reloads import problem_to_proto
from fairpath.authoring.lint import finding, lint_policy, problem_from_error
from fairpath.authoring.testing import CasesReport, cases_file, load_cases, run_cases
from fairpath.errors import EngineBusyError, EngineError, PolicyFileError
from fairpath.evaluation import Evaluator
from fairpath.policy.loader import load_bytes
from fairpath.policy.model import Policy
from fairpath.policy.registry import PolicyRegistry
from fairpath.problems import COMPILE, TESTS, Problem
from fairpath.v1 import policy_service_pb2 as pb

# Classes of answers lint may enumerate per request (the command line allows 2,000,000).
MAX_COMBINATIONS = 100_000
DEFAULT_PATH = "<policy>"
_MAX_CASE_PROBLEMS = 20
_turns = threading.Lock()


def validate_policy(request: pb.ValidatePolicyRequest, wait_seconds: float = 10.0) -> pb.ValidatePolicyResponse:
    """Lint the request's policy text and run its cases; return the problems and the test report.

    Validations take turns (each builds and drops a durable_rules ruleset); a caller
    that cannot get a turn within ``wait_seconds`` gets EngineBusyError
    (RESOURCE_EXHAUSTED) instead of holding a server thread indefinitely.
    """
    path = request.path or DEFAULT_PATH
    if not _turns.acquire(timeout=max(0.0, wait_seconds)):
        raise EngineBusyError("another policy validation is running; try again shortly")
    try:
        return _validate(request.policy_text, request.tests_text, path)
    finally:
        _turns.release()


def _validate(policy_text: str, tests_text: str, path: str) -> pb.ValidatePolicyResponse:
    try:
        policy = load_bytes(policy_text.encode("utf-8"), path=path)
    except PolicyFileError as error:
        problem = problem_from_error(error, path)
        return pb.ValidatePolicyResponse(ok=False, problems=[problem_to_proto(problem)])
    try:
        evaluator = Evaluator(PolicyRegistry([policy]))
    except (PolicyFileError, EngineError) as error:
        message = error.message if isinstance(error, PolicyFileError) else str(error)
        problem = finding(path, "", None, message, "error", COMPILE)
        return _response(policy, [problem], None)
    try:
        linted = lint_policy(policy, policy_text, evaluator=evaluator, limit=MAX_COMBINATIONS)
        problems = list(linted.problems)
        report = _run_tests(policy, tests_text, evaluator, problems)
    finally:
        evaluator.close()
    return _response(policy, problems, report)


def _run_tests(
    policy: Policy, tests_text: str, evaluator: Evaluator, problems: list[Problem]
) -> CasesReport | None:
    """Run the cases in ``tests_text``, adding what is wrong with them to ``problems``."""
    tests_path = _tests_path(policy.path)
    if not tests_text.strip():
        problems.append(finding(tests_path, "", None, "no test cases given: a version is valid only once its "
                                "cases pass and exercise every rule outcome, advice, check and pathway",
                                "warning", TESTS))
        return None
    try:
        cases = load_cases(tests_text, policy, tests_path)
    except PolicyFileError as error:
        problems.append(finding(error.path or tests_path, "", error.line, error.message, "error", TESTS))
        return None
    report = run_cases(
        policy, cases, lambda facts: evaluator.evaluate(policy.name, facts, version=policy.version)
    )
    failed = [case for case in report.cases if not case.passed]
    problems.extend(
        finding(tests_path, "", None, f"case {case.name!r}: {'; '.join(case.failures)}", "error", TESTS)
        for case in failed[:_MAX_CASE_PROBLEMS]
    )
    if len(failed) > _MAX_CASE_PROBLEMS:
        more = len(failed) - _MAX_CASE_PROBLEMS
        problems.append(finding(tests_path, "", None, f"and {more} more failing case(s)", "error", TESTS))
    if report.uncovered:
        items = ", ".join(item.item for item in report.uncovered)
        problems.append(finding(tests_path, "", None, f"no case exercises {items}", "warning", TESTS))
    return report


def _tests_path(path: str) -> str:
    """Name the tests like the file beside the policy: ``x/1.0.0.yaml`` → ``x/1.0.0.tests.yaml``."""
    if path.endswith(".yaml") and path != DEFAULT_PATH:
        return cases_file(path).as_posix()
    return "<tests>"


def _response(
    policy: Policy, problems: list[Problem], report: CasesReport | None
) -> pb.ValidatePolicyResponse:
    ok = report is not None and report.ok and not any(problem.is_error for problem in problems)
    response = pb.ValidatePolicyResponse(
        ok=ok,
        summary=convert.policy_summary(policy, current=False),
        problems=[problem_to_proto(problem) for problem in problems],
    )
    if report is not None:
        response.tests.CopyFrom(
            pb.TestReport(
                passed=report.passed,
                failed=report.failed,
                cases=[
                    pb.TestCaseResult(name=c.name, passed=c.passed, failures=c.failures) for c in report.cases
                ],
                coverage=[pb.CoverageItem(item=i.item, kind=i.kind, hits=i.hits) for i in report.coverage],
            )
        )
    return response
