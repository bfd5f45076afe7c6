"""The served API over a real channel: health, reflection, both services, errors and the access log."""

from __future__ import annotations

import json
import re

import grpc
import pytest
from fairpath.api.interceptors import REQUEST_ID_HEADER
from fairpath.v1 import (
    decision_pb2,
    evaluation_service_pb2,
    evaluation_service_pb2_grpc,
    policy_service_pb2,
    policy_service_pb2_grpc,
)
from google.protobuf import descriptor_pool
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from grpc_status import rpc_status
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

GUIDE = "nhs-just-culture-guide"
EVALUATION = "fairpath.v1.EvaluationService"
POLICIES = "fairpath.v1.PolicyService"
# A complete walk to the first gate's exit; the context facts only feed advice.
OUT_OF_SCOPE = {
    "is_patient_safety_incident": "NO",
    "investigation_stage": "IN_PROGRESS",
    "harm_severity": "LOW",
    "professional_group": "REGISTERED_NURSE",
}


def _request(facts: dict[str, object], **fields: object) -> evaluation_service_pb2.EvaluateRequest:
    request = evaluation_service_pb2.EvaluateRequest(policy=GUIDE, **fields)  # type: ignore[arg-type]
    request.facts.update(facts)
    return request


def _unpacked(error: grpc.RpcError, kind: type) -> list:
    status = rpc_status.from_call(error)
    assert status is not None
    found = []
    for packed in status.details:
        if packed.Is(kind.DESCRIPTOR):
            message = kind()
            packed.Unpack(message)
            found.append(message)
    return found


@pytest.mark.parametrize("service", ["", EVALUATION, POLICIES])
def test_health_is_serving_once_started(channel: grpc.Channel, service: str) -> None:
    """The server and both fairpath services report SERVING after start()."""
    request = health_pb2.HealthCheckRequest(service=service)
    response = health_pb2_grpc.HealthStub(channel).Check(request, timeout=5)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_describes_the_services(channel: grpc.Channel) -> None:
    """Reflection lists fairpath, health and reflection, and resolves a fairpath method like grpcurl would."""
    database = ProtoReflectionDescriptorDatabase(channel)
    assert set(database.get_services()) >= {
        EVALUATION,
        POLICIES,
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    service = descriptor_pool.DescriptorPool(database).FindServiceByName(EVALUATION)
    assert service.methods_by_name["Evaluate"].input_type.full_name == "fairpath.v1.EvaluateRequest"


def test_list_policies_marks_the_current_version(channel: grpc.Channel) -> None:
    """ListPolicies returns the loaded guide, current (1.0.1 since its effective date), with its file digest."""
    response = policy_service_pb2_grpc.PolicyServiceStub(channel).ListPolicies(
        policy_service_pb2.ListPoliciesRequest(), timeout=5
    )
    (guide,) = [p for p in response.policies if p.name == GUIDE and p.version == "1.0.1"]
    (superseded,) = [p for p in response.policies if p.name == GUIDE and p.version == "1.0.0"]
    assert guide.current
    assert not superseded.current
    assert guide.status == "active"
    assert re.fullmatch(r"[0-9a-f]{64}", guide.digest)


def test_get_policy_describes_facts_rules_and_pathways(channel: grpc.Channel) -> None:
    """GetPolicy without a version returns the current version's declarations."""
    detail = (
        policy_service_pb2_grpc.PolicyServiceStub(channel)
        .GetPolicy(policy_service_pb2.GetPolicyRequest(name=GUIDE), timeout=5)
        .policy
    )
    assert (detail.summary.version, detail.summary.current) == ("1.0.1", True)
    facts = {fact.name: fact for fact in detail.facts}
    assert facts["intent_to_harm"].type == decision_pb2.ANSWER
    assert list(facts["intent_to_harm"].allowed_values) == ["YES", "NO", "UNKNOWN"]
    assert detail.rules[0].kind == decision_pb2.QUESTION
    assert detail.rules[0].then_target
    assert "OUT_OF_SCOPE_NOT_PATIENT_SAFETY" in {p.code for p in detail.pathways}
    assert detail.advice


def test_get_policy_of_an_unknown_policy_is_not_found(channel: grpc.Channel) -> None:
    """GetPolicy for an unknown name fails with NOT_FOUND and ErrorInfo POLICY_NOT_FOUND."""
    with pytest.raises(grpc.RpcError) as caught:
        policy_service_pb2_grpc.PolicyServiceStub(channel).GetPolicy(
            policy_service_pb2.GetPolicyRequest(name="no-such-policy"), timeout=5
        )
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    (info,) = _unpacked(caught.value, error_details_pb2.ErrorInfo)
    assert info.reason == "POLICY_NOT_FOUND"


def test_evaluate_returns_the_decision_with_its_trace(channel: grpc.Channel) -> None:
    """Evaluate over the raw stub: pathway, policy ref, trace, timestamp, subject and request id."""
    request = _request(
        OUT_OF_SCOPE, subject=decision_pb2.Subject(incident_ref="INC-1", staff_ref="S-1", action_ref="A-1")
    )
    response, call = evaluation_service_pb2_grpc.EvaluationServiceStub(channel).Evaluate.with_call(
        request, timeout=5, metadata=((REQUEST_ID_HEADER, "it-happy-1"),)
    )
    decision = response.decision
    assert decision.status == decision_pb2.DECIDED
    assert decision.pathway.code == "OUT_OF_SCOPE_NOT_PATIENT_SAFETY"
    assert (decision.policy.name, decision.policy.version) == (GUIDE, "1.0.1")
    assert decision.decision_id
    assert decision.trace
    assert decision.trace[0].facts_seen["is_patient_safety_incident"].string_value == "NO"
    assert decision.evaluated_at.seconds > 0
    assert (decision.subject.incident_ref, decision.subject.staff_ref) == ("INC-1", "S-1")
    assert decision.request_id == "it-happy-1"
    assert (REQUEST_ID_HEADER, "it-happy-1") in tuple(call.trailing_metadata())


def test_the_request_id_field_is_used_without_a_header(channel: grpc.Channel) -> None:
    """A request_id in the message is the request id when no x-request-id header is sent."""
    response, call = evaluation_service_pb2_grpc.EvaluationServiceStub(channel).Evaluate.with_call(
        _request(OUT_OF_SCOPE, request_id="from-the-body"), timeout=5
    )
    assert response.decision.request_id == "from-the-body"
    assert (REQUEST_ID_HEADER, "from-the-body") in tuple(call.trailing_metadata())


@pytest.mark.parametrize(("policy", "version"), [("no-such-policy", ""), (GUIDE, "9.9.9")])
def test_evaluate_against_an_unknown_policy_or_version_is_not_found(
    channel: grpc.Channel, policy: str, version: str
) -> None:
    """An unknown policy name or version fails with NOT_FOUND."""
    request = evaluation_service_pb2.EvaluateRequest(policy=policy, version=version)
    with pytest.raises(grpc.RpcError) as caught:
        evaluation_service_pb2_grpc.EvaluationServiceStub(channel).Evaluate(request, timeout=5)
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


def test_invalid_facts_are_invalid_argument_with_field_violations(channel: grpc.Channel) -> None:
    """Undeclared and mistyped facts fail with INVALID_ARGUMENT and one BadRequest violation each."""
    request = _request({"no_such_fact": "YES", "intent_to_harm": 3})
    with pytest.raises(grpc.RpcError) as caught:
        evaluation_service_pb2_grpc.EvaluationServiceStub(channel).Evaluate(
            request, timeout=5, metadata=((REQUEST_ID_HEADER, "it-bad-1"),)
        )
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    (bad_request,) = _unpacked(caught.value, error_details_pb2.BadRequest)
    assert {v.field for v in bad_request.field_violations} == {"facts.no_such_fact", "facts.intent_to_harm"}
    (info,) = _unpacked(caught.value, error_details_pb2.ErrorInfo)
    assert (info.reason, info.metadata["request_id"]) == ("INVALID_FACTS", "it-bad-1")


def test_one_access_log_line_per_call_with_ids_and_never_facts(channel: grpc.Channel) -> None:
    """Each Evaluate writes one `rpc` line with ids, code and duration, and no fact name or value."""
    stub = evaluation_service_pb2_grpc.EvaluationServiceStub(channel)
    marker = "UNMISTAKABLE-FACT-VALUE"
    with capture_logs(processors=[merge_contextvars]) as logs:
        decision = stub.Evaluate(
            _request(OUT_OF_SCOPE, version="1.0.0"), timeout=5, metadata=((REQUEST_ID_HEADER, "it-log-ok"),)
        ).decision
        with pytest.raises(grpc.RpcError):
            stub.Evaluate(
                _request({"professional_group": marker}),
                timeout=5,
                metadata=((REQUEST_ID_HEADER, "it-log-bad"),),
            )
    lines = {entry["request_id"]: entry for entry in logs if entry["event"] == "rpc"}
    assert set(lines) == {"it-log-ok", "it-log-bad"}
    ok, bad = lines["it-log-ok"], lines["it-log-bad"]
    assert ok["method"] == f"/{EVALUATION}/Evaluate"
    assert (ok["policy"], ok["version"], ok["decision_id"], ok["code"]) == (
        GUIDE, "1.0.0", decision.decision_id, "OK",
    )
    assert isinstance(ok["duration_ms"], float)
    assert (bad["policy"], bad["code"]) == (GUIDE, "INVALID_ARGUMENT")
    everything = json.dumps(logs, default=str)
    for fact, value in [*OUT_OF_SCOPE.items(), ("professional_group", marker)]:
        assert fact not in everything
        assert json.dumps(value) not in everything
