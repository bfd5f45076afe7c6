"""``PolicyService.ValidatePolicy`` on a real server: lint and test results with positions; nothing loaded."""

from __future__ import annotations

import grpc
from fairpath.v1 import policy_service_pb2, policy_service_pb2_grpc

from tests.conftest import GUIDE, POLICIES
from tests.support.cases import cases_text, minimal_cases
from tests.support.policy_builder import minimal_policy, policy_text

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
    """Without cases a draft cannot be valid: a ``tests`` warning says why, and there is no report."""
    response = validate(channel, policy_text(minimal_policy()))
    assert not response.ok
    assert any(p.check == "tests" and "no test cases given" in p.message for p in response.problems)
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
