"""``PolicyService.ValidatePolicy`` on a real server: lint and test results with positions; nothing loaded."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import yaml
from fairpath.policy.loader import MAX_POLICY_BYTES
from fairpath.serving.evaluator import Evaluator
from fairpath.v1 import (
    evaluation_service_pb2,
    evaluation_service_pb2_grpc,
    policy_service_pb2,
    policy_service_pb2_grpc,
)
from fairpath_client import FairpathClient, ServiceBusyError

from tests.conftest import GUIDE, POLICIES
from tests.support.cases import cases_text, minimal_cases
from tests.support.policy_builder import minimal_policy, policy_text
from tests.support.servers import serving

GUIDE_TEXT = (POLICIES / GUIDE / "1.0.0.yaml").read_text(encoding="utf-8")
GUIDE_TESTS = (POLICIES / GUIDE / "1.0.0.tests.yaml").read_text(encoding="utf-8")
PATH = "policies/mini-policy/1.2.3.yaml"


def validate(channel: grpc.Channel, policy: str, tests: str = "", path: str = PATH,
             ) -> policy_service_pb2.ValidatePolicyResponse:
    """Call ValidatePolicy."""
    request = policy_service_pb2.ValidatePolicyRequest(policy_text=policy, tests_text=tests, path=path)
    return policy_service_pb2_grpc.PolicyServiceStub(channel).ValidatePolicy(request, timeout=30)


def line_in(text: str, needle: str) -> int:
    """Return the 1-based line of ``text`` holding ``needle``."""
    return next(number for number, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_guide_with_its_cases_is_valid(channel: grpc.Channel) -> None:
    """The published guide and its cases: ok, summarised, every case passed and everything exercised."""
    response = validate(channel, GUIDE_TEXT, GUIDE_TESTS, path=f"policies/{GUIDE}/1.0.0.yaml")
    assert response.ok
    summary = response.summary
    assert (summary.name, summary.version, summary.current) == (GUIDE, "1.0.0", False)
    assert len(response.summary.digest) == 64
    assert list(response.problems) == []
    assert response.tests.failed == 0
    assert response.tests.passed == len(response.tests.cases) > 0
    assert response.tests.coverage
    assert all(item.hits > 0 for item in response.tests.coverage)


def test_broken_yaml_is_an_answer_with_its_line_not_an_rpc_error(channel: grpc.Channel) -> None:
    """Text that is not YAML: ok false, one ``load`` error at the path and line given, no summary."""
    response = validate(channel, "policy: mini-policy\nversion: [1.2.3\n")
    assert not response.ok
    [problem] = response.problems
    assert (problem.path, problem.line, problem.severity, problem.check) == (PATH, 3, "error", "load")
    assert problem.message.startswith("not valid YAML")
    assert not response.HasField("summary")


def test_a_loader_error_names_the_rule_and_line(channel: grpc.Channel) -> None:
    """A condition on an undeclared fact is reported at its rule's line."""
    document = minimal_policy()
    document["rules"][1]["when"] = "seniority >= 2"
    text = policy_text(document)
    [problem] = validate(channel, text).problems
    assert (problem.rule_id, problem.check) == ("r2", "undeclared-fact")
    assert problem.line == line_in(text, "id: r2")


def test_a_failing_case_makes_it_invalid(channel: grpc.Channel) -> None:
    """A wrong expectation: ok false, the case's failures in the report and a ``tests`` problem."""
    cases = minimal_cases()
    cases["cases"][0]["expect"]["pathway"] = "LEARN"
    response = validate(channel, policy_text(minimal_policy()), cases_text(cases))
    assert not response.ok
    assert (response.tests.passed, response.tests.failed) == (4, 1)
    [failed] = [case for case in response.tests.cases if not case.passed]
    assert failed.name == "intent leads to ACT"
    assert list(failed.failures) == ["pathway: expected 'LEARN', got 'ACT'"]
    [problem] = [p for p in response.problems if p.check == "tests"]
    assert (problem.path, problem.severity) == ("policies/mini-policy/1.2.3.tests.yaml", "error")


def test_lint_findings_carry_rule_line_and_check(channel: grpc.Channel) -> None:
    """A dead branch is an error at its rule's line; warnings (unused facts) come with their lines too."""
    document = minimal_policy()
    # Only intent_to_harm = NO reaches r2, so its condition always holds there.
    document["rules"][1].update(when="years >= 2 or intent_to_harm is NO", question="Experienced?")
    text = policy_text(document)
    response = validate(channel, text, cases_text(minimal_cases()))
    assert not response.ok
    dead = [p for p in response.problems if p.check == "dead-branch"]
    assert [(p.rule_id, p.line, p.severity) for p in dead] == [("r2", line_in(text, "id: r2"), "error")]
    unused = {p.message.split("'")[1]: p.line for p in response.problems if p.check == "unused-fact"}
    assert unused["stage"] == line_in(text, "name: stage")


def test_passing_cases_without_errors_are_valid_despite_warnings(channel: grpc.Channel) -> None:
    """Warnings (unused facts, an unlisted code) do not make a draft invalid."""
    response = validate(channel, policy_text(minimal_policy()), cases_text(minimal_cases()))
    assert response.ok
    assert {p.severity for p in response.problems} == {"warning"}
    assert response.tests.passed == 5


def test_no_cases_means_not_valid(channel: grpc.Channel) -> None:
    """Without cases a draft cannot be valid: a ``tests`` error says why (as the reload gate's); no report."""
    response = validate(channel, policy_text(minimal_policy()))
    assert not response.ok
    assert any(p.check == "tests" and p.severity == "error" and "no test cases given" in p.message
               for p in response.problems)
    assert not response.HasField("tests")


def test_nothing_is_loaded_into_the_server(channel: grpc.Channel) -> None:
    """A validated draft is not served afterwards."""
    name = "validated-only"
    response = validate(channel, policy_text(minimal_policy(name=name)), cases_text(minimal_cases(name=name)))
    assert response.ok
    listed = policy_service_pb2_grpc.PolicyServiceStub(channel).ListPolicies(
        policy_service_pb2.ListPoliciesRequest(), timeout=5
    )
    assert name not in {summary.name for summary in listed.policies}


def _hostile(terms: int) -> str:
    """The minimal policy with rule r2's condition an `or` of ``terms`` comparisons (the issue's hostile text)."""
    document = minimal_policy()
    document["rules"][1].update(when=" or ".join(f"years >= {i}" for i in range(terms)), question="Experienced?")
    return policy_text(document)


def test_a_hostile_or_of_two_thousand_terms_is_refused_at_its_rule_and_line(channel: grpc.Channel) -> None:
    """2,000 `or` terms (~60 KB): ok false, one ``load`` error at r2's line saying the condition is too large."""
    text = _hostile(2000)
    response = validate(channel, text, cases_text(minimal_cases()))
    assert not response.ok
    [problem] = response.problems
    assert (problem.path, problem.rule_id, problem.line, problem.check) == (PATH, "r2", line_in(text, "id: r2"), "load")
    assert "at most 64 comparisons" in problem.message


def test_a_policy_text_past_the_byte_limit_is_refused_naming_its_path(channel: grpc.Channel) -> None:
    """Under the API's character limit but over 256 KiB of UTF-8: refused unparsed, a ``load`` error at the path."""
    text = policy_text(minimal_policy()) + "#" + "é" * (MAX_POLICY_BYTES // 2) + "\n"
    assert len(text) < MAX_POLICY_BYTES < len(text.encode())
    [problem] = validate(channel, text, cases_text(minimal_cases())).problems
    assert (problem.path, problem.check, problem.line) == (PATH, "load", 0)
    assert problem.message == "larger than 256 KiB, the most a file may hold"


def test_a_too_many_groups_draft_is_a_compile_problem_at_its_rule(channel: grpc.Channel) -> None:
    """10 `or` terms fit the term limit but not durable_rules: a ``compile`` error naming r2 and its line."""
    text = _hostile(10)
    [problem] = validate(channel, text, cases_text(minimal_cases())).problems
    assert (problem.rule_id, problem.line, problem.check) == ("r2", line_in(text, "id: r2"), "compile")
    assert "and/or groups" in problem.message


def test_evaluations_carry_on_while_hostile_drafts_are_validated(channel: grpc.Channel) -> None:
    """Drafts validated on one thread while Evaluate runs on another: the hostile ones are refused.

    Every evaluation answers correctly, at least one of them while a validation was under way.
    """
    evaluation = evaluation_service_pb2_grpc.EvaluationServiceStub(channel)
    request = evaluation_service_pb2.EvaluateRequest(policy=GUIDE, dry_run=True)
    request.facts.update({"is_patient_safety_incident": "NO"})
    expected = evaluation.Evaluate(request, timeout=10).decision.pathway.code
    answers: list[policy_service_pb2.ValidatePolicyResponse] = []

    def validations() -> None:
        answers.append(validate(channel, GUIDE_TEXT, GUIDE_TESTS, path=f"policies/{GUIDE}/1.0.0.yaml"))
        answers.extend(validate(channel, _hostile(terms)) for terms in (300, 1000, 2000, 10))

    worker = threading.Thread(target=validations)
    worker.start()
    during = 0
    while worker.is_alive():  # the guide's validation alone takes the best part of a second
        assert evaluation.Evaluate(request, timeout=10).decision.pathway.code == expected
        during += 1
    worker.join()
    assert during > 0
    guide, *hostile = answers
    assert guide.ok
    assert [(p.rule_id, p.check) for answer in hostile for p in answer.problems] == [("r2", "load")] * 3 + [
        ("r2", "compile")
    ]
    assert not any(answer.ok for answer in hostile)


def _slow_cases(copies: int) -> str:
    """The guide's cases ``copies`` times over, renamed apart: valid, and a validation that takes seconds."""
    document = yaml.load(GUIDE_TESTS, Loader=yaml.CSafeLoader)  # libyaml: a second faster than cases_text
    cases = [dict(case, name=f"#{copy} {case['name']}") for copy in range(copies) for case in document["cases"]]
    return yaml.dump(dict(document, cases=cases), Dumper=yaml.CSafeDumper, sort_keys=False, width=1000)


def test_a_validation_arriving_while_another_runs_is_refused_at_once_and_evaluate_keeps_answering(
    evaluator: Evaluator,
) -> None:
    """Six ValidatePolicy calls at once on a 4-thread server: one runs, five are refused, Evaluate never stalls.

    Each refused call is RESOURCE_EXHAUSTED with reason VALIDATION_BUSY (the client's
    ``ServiceBusyError``) and ends before the running validation answers: it never waited
    for a turn. Every Evaluate made meanwhile has a 2 s deadline, shorter than the
    validation (the guide's cases 10 times over), and answers: calls waiting for a turn
    would hold all four handler threads and leave Evaluate none.
    """
    calls = 6
    tests_text = _slow_cases(10)
    answered = threading.Event()  # set once the validation that ran has answered
    start = threading.Barrier(calls)

    def validate_once(client: FairpathClient) -> tuple[str, object, bool]:
        start.wait()
        try:
            report = client.validate_policy(GUIDE_TEXT, tests_text, path=f"policies/{GUIDE}/1.0.0.yaml")
        except ServiceBusyError as error:
            return "refused", f"{error.code} {error.reason}", not answered.is_set()
        answered.set()
        return "answered", report.ok, True

    with serving(evaluator, threads=4) as running:
        target = f"127.0.0.1:{running.port}"
        with FairpathClient(target, timeout=60) as authoring, FairpathClient(target, timeout=2) as evaluating:
            def evaluate() -> str:
                decision = evaluating.evaluate(GUIDE, {"is_patient_safety_incident": "NO"}, dry_run=True)
                assert decision.pathway is not None
                return decision.pathway.code

            expected = evaluate()
            during = 0
            with ThreadPoolExecutor(calls) as pool:
                validations = [pool.submit(validate_once, authoring) for _ in range(calls)]
                while not all(validation.done() for validation in validations):
                    assert evaluate() == expected  # DeadlineExceededError here: Evaluate had no thread
                    during += 0 if answered.is_set() else 1
                    answered.wait(0.1)  # paced, to leave the validation's child the CPU
            outcomes = sorted(validation.result() for validation in validations)
    assert during > 0  # some evaluations ended while the validation still ran
    refused = ("refused", "RESOURCE_EXHAUSTED VALIDATION_BUSY", True)  # True: before the running one answered
    assert outcomes == [("answered", True, True)] + [refused] * (calls - 1)
