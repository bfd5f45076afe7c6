"""``lacks`` and an ``always`` walk step through the whole service: gRPC, the real client, durable_rules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fairpath.api.server import Running
from fairpath.policy.registry import PolicyRegistry
from fairpath.serving.evaluator import Evaluator
from fairpath_client import FairpathClient

from tests.support.policy_builder import build_policy, set_and_always_policy
from tests.support.servers import serving


@pytest.fixture(scope="module", name="client")
def _client() -> Iterator[FairpathClient]:
    """A server on 127.0.0.1 serving only the set-fact policy, and a client connected to it."""
    evaluator = Evaluator(PolicyRegistry([build_policy(set_and_always_policy())]))
    running: Running
    with serving(evaluator) as running, FairpathClient(f"127.0.0.1:{running.port}") as client:
        yield client
    evaluator.close()


def test_a_set_answer_without_the_code_takes_the_lacks_branch_after_an_always_step(client: FairpathClient) -> None:
    """A JSON list without PATIENT: r0 (always) fires, r1 (lacks PATIENT) fires, pathway LEARN (no_patient)."""
    decision = client.evaluate("set-policy", {"parties": ["FAMILY"]}, dry_run=True)

    assert decision.status == "DECIDED"
    assert decision.pathway is not None
    assert (decision.pathway.code, decision.pathway.sub_reason) == ("LEARN", "no_patient")
    assert [(t.rule_id, t.result) for t in decision.trace if t.kind == "QUESTION"] == [
        ("r0", "FIRED"), ("r1", "FIRED"), ("r2", "NOT_REACHED"),
    ]


def test_a_set_answer_with_the_code_walks_on_to_the_closing_always_step(client: FairpathClient) -> None:
    """PATIENT named: r1 does not fire, r2 (always) does, pathway ACT; FAMILY lacking adds the lacks-advice."""
    decision = client.evaluate("set-policy", {"parties": ["PATIENT", "STAFF"]}, dry_run=True)

    assert decision.pathway is not None
    assert (decision.pathway.code, decision.pathway.sub_reason) == ("ACT", "patient")
    assert sorted(a.code for a in decision.advice) == ["FAMILY_LIAISON", "STAFF_SUPPORT_OFFER"]
    assert [w.code for w in decision.warnings] == ["c1"]


def test_an_unanswered_set_stops_the_walk_after_the_always_step(client: FairpathClient) -> None:
    """No answer: the walk passes r0 without asking anything and stops at r1 for ``parties``."""
    decision = client.evaluate("set-policy", {}, dry_run=True)

    assert (decision.status, decision.pathway) == ("NEEDS_INFORMATION", None)
    assert [(m.fact, m.rule_id, m.question) for m in decision.missing_facts] == [
        ("parties", "r1", "Who was affected?"),
    ]
    assert [a.code for a in decision.advice] == ["STAFF_SUPPORT_OFFER"]
