"""Domain ↔ protobuf translations of the gRPC layer, on real decisions of the guide policy."""

from __future__ import annotations

from datetime import UTC

from fairpath.api import decision_convert, policy_convert
from fairpath.serving.evaluator import Evaluator
from fairpath.v1 import decision_pb2
from fairpath.wire import decision_to_proto, value_map
from google.protobuf import struct_pb2

GUIDE = "nhs-just-culture-guide"


def test_fact_values_keep_their_json_type() -> None:
    """Booleans stay booleans (not 1.0), numbers become numbers, everything else strings."""
    values = value_map({"flag": True, "hours": 13.0, "answer": "YES"})
    assert values == {
        "flag": struct_pb2.Value(bool_value=True),
        "hours": struct_pb2.Value(number_value=13.0),
        "answer": struct_pb2.Value(string_value="YES"),
    }


def test_request_facts_become_a_plain_dict() -> None:
    """A Struct of facts becomes the JSON-like dict the evaluator validates."""
    facts = struct_pb2.Struct()
    facts.update({"intent_to_harm": "NO", "hours": 3, "unknown": None})
    assert decision_convert.facts_from_proto(facts) == {"intent_to_harm": "NO", "hours": 3.0, "unknown": None}


def test_a_decided_decision_carries_everything(evaluator: Evaluator) -> None:
    """Pathway, policy ref, trace, advice, timestamp and ids survive the translation."""
    decision = evaluator.evaluate(GUIDE, {"is_patient_safety_incident": "NO"}, request_id="r-1")
    message = decision_to_proto(decision)
    assert message.status == decision_pb2.DECIDED
    assert decision.pathway is not None
    assert message.pathway.code == decision.pathway.code
    assert (message.policy.name, message.policy.digest) == (GUIDE, decision.policy.digest)
    assert [entry.rule_id for entry in message.trace] == [entry.rule_id for entry in decision.trace]
    assert [item.code for item in message.advice] == [item.code for item in decision.advice]
    assert message.evaluated_at.ToDatetime(tzinfo=UTC) == decision.evaluated_at
    assert (message.decision_id, message.request_id) == (decision.decision_id, "r-1")
    assert message.engine.name == decision.engine_name


def test_a_decision_needing_information_has_no_pathway(evaluator: Evaluator) -> None:
    """NEEDS_INFORMATION leaves the pathway unset and names the missing fact."""
    message = decision_to_proto(evaluator.evaluate(GUIDE, {}))
    assert message.status == decision_pb2.NEEDS_INFORMATION
    assert not message.HasField("pathway")
    assert message.missing_facts[0].fact == "is_patient_safety_incident"


def test_policy_detail_lists_walk_rules_then_checks(evaluator: Evaluator) -> None:
    """GetPolicy's detail has every fact, pathway and advice rule, and walk rules before checks."""
    policy = evaluator.registry.get(GUIDE)
    detail = policy_convert.policy_detail(policy, current=True)
    assert detail.summary.current
    assert [fact.name for fact in detail.facts] == list(policy.facts)
    assert len(detail.pathways) == len(policy.pathways)
    assert len(detail.advice) == len(policy.advice)
    kinds = [rule.kind for rule in detail.rules]
    assert kinds == [decision_pb2.QUESTION] * len(policy.rules) + [decision_pb2.CHECK] * len(policy.checks)
