"""FairpathClient against an in-memory channel: what it sends, what it returns, what it raises."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from fairpath.v1 import decision_pb2, evaluation_service_pb2, policy_service_pb2
from fairpath_client import (
    FairpathClient,
    FieldViolation,
    InvalidFactsError,
    PolicyNotFoundError,
    ServiceUnavailableError,
    Subject,
)
from google.protobuf import json_format
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2

EVALUATE = "/fairpath.v1.EvaluationService/Evaluate"
LIST_POLICIES = "/fairpath.v1.PolicyService/ListPolicies"
GET_POLICY = "/fairpath.v1.PolicyService/GetPolicy"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"


class FakeRpcError(grpc.RpcError):
    """A finished call with a status and no rich details."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__()
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> Any:  # the stubs' _Metadatum is not constructible
        return ()


class FakeChannel:
    """Just enough of grpc.Channel for generated stubs: unary-unary methods answered from a table."""

    def __init__(self, answers: dict[str, Message | Exception]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []
        self.closed = False

    def unary_unary(self, method: str, *_args: Any, **_kwargs: Any) -> Callable[..., Message]:
        def call(request: Any, **kwargs: Any) -> Message:
            self.calls.append((method, request, kwargs))
            answer = self.answers[method]
            if isinstance(answer, Exception):
                raise answer
            return answer

        return call

    def unary_stream(self, method: str, *_args: Any, **_kwargs: Any) -> Callable[..., Any]:
        def call(*_a: Any, **_k: Any) -> Any:
            raise NotImplementedError(method)

        return call

    def close(self) -> None:
        self.closed = True


def decided() -> evaluation_service_pb2.EvaluateResponse:
    return evaluation_service_pb2.EvaluateResponse(
        decision=decision_pb2.Decision(
            decision_id="dec-1",
            status=decision_pb2.DECIDED,
            pathway=decision_pb2.Pathway(code="JCG_A", title="Deliberate harm"),
        )
    )


def client_for(channel: FakeChannel, timeout: float = 2.5) -> FairpathClient:
    return FairpathClient(channel=channel, timeout=timeout)  # type: ignore[arg-type]


def test_evaluate_sends_facts_subject_request_id_and_deadline() -> None:
    """evaluate() fills the request, sends x-request-id metadata and the client's timeout."""
    channel = FakeChannel({EVALUATE: decided()})

    decision = client_for(channel).evaluate(
        "nhs-just-culture-guide",
        {"intent": "NO", "hours": 13, "agency_staff": True, "unsure": None},
        version="2.0.0",
        subject=Subject(incident_ref="INC-1", staff_ref="S-7"),
        request_id="req-1",
    )

    [(method, request, kwargs)] = channel.calls
    assert method == EVALUATE
    assert request.policy == "nhs-just-culture-guide"
    assert request.version == "2.0.0"
    assert json_format.MessageToDict(request.facts) == {
        "intent": "NO",
        "hours": 13.0,
        "agency_staff": True,
        "unsure": None,
    }
    assert request.subject == decision_pb2.Subject(incident_ref="INC-1", staff_ref="S-7")
    assert request.request_id == "req-1"
    assert kwargs == {"timeout": 2.5, "metadata": (("x-request-id", "req-1"),)}
    assert decision.status == "DECIDED"
    assert decision.pathway is not None
    assert decision.pathway.code == "JCG_A"


def test_evaluate_without_optional_arguments_sends_defaults() -> None:
    """No version, subject or request id: empty fields, no subject, no metadata."""
    channel = FakeChannel({EVALUATE: decided()})

    client_for(channel).evaluate("p", {})

    [(_, request, kwargs)] = channel.calls
    assert request.version == ""
    assert not request.HasField("subject")
    assert request.request_id == ""
    assert kwargs == {"timeout": 2.5, "metadata": None}


def test_subject_may_be_a_plain_mapping() -> None:
    """A mapping of the three refs is accepted as the subject."""
    channel = FakeChannel({EVALUATE: decided()})

    client_for(channel).evaluate("p", {}, subject={"action_ref": "A-3"})

    assert channel.calls[0][1].subject.action_ref == "A-3"


def test_unencodable_facts_are_rejected_before_sending() -> None:
    """Values a Struct cannot hold (a date) and non-string names raise InvalidFactsError locally."""
    channel = FakeChannel({EVALUATE: decided()})
    facts: dict[Any, object] = {"seen_on": datetime.date(2026, 1, 2), 7: "YES", "ok": "NO"}

    with pytest.raises(InvalidFactsError) as caught:
        client_for(channel).evaluate("p", facts, request_id="r")

    assert [v.field for v in caught.value.violations] == ["facts.seen_on", "facts.7"]
    assert caught.value.code == "INVALID_ARGUMENT"
    assert caught.value.request_id == "r"
    assert channel.calls == []


def test_rpc_errors_become_typed_errors_with_the_sent_request_id() -> None:
    """A failing RPC raises the client's exception, carrying the request id the caller sent."""
    channel = FakeChannel({EVALUATE: FakeRpcError(grpc.StatusCode.NOT_FOUND, "policy 'p' is not loaded")})

    with pytest.raises(PolicyNotFoundError) as caught:
        client_for(channel).evaluate("p", {}, request_id="req-5")

    assert caught.value.request_id == "req-5"
    assert caught.value.message == "policy 'p' is not loaded"
    assert not isinstance(caught.value, grpc.RpcError)


def test_list_and_get_policies_convert_responses() -> None:
    """list_policies() and get_policy() return models and pass the deadline."""
    summary = decision_pb2.PolicySummary(name="p", version="1.0.0", current=True)
    channel = FakeChannel(
        {
            LIST_POLICIES: policy_service_pb2.ListPoliciesResponse(policies=[summary]),
            GET_POLICY: policy_service_pb2.GetPolicyResponse(
                policy=decision_pb2.PolicyDetail(summary=summary, description="d")
            ),
        }
    )
    client = client_for(channel)

    policies = client.list_policies()
    detail = client.get_policy("p", version="1.0.0")

    assert [(p.name, p.current) for p in policies] == [("p", True)]
    assert detail.description == "d"
    assert channel.calls[1][1] == policy_service_pb2.GetPolicyRequest(name="p", version="1.0.0")
    assert all(kwargs == {"timeout": 2.5} for _, _, kwargs in channel.calls)


def test_get_policy_not_found_raises_policy_not_found() -> None:
    """GetPolicy NOT_FOUND surfaces as PolicyNotFoundError."""
    channel = FakeChannel({GET_POLICY: FakeRpcError(grpc.StatusCode.NOT_FOUND, "no such policy")})

    with pytest.raises(PolicyNotFoundError):
        client_for(channel).get_policy("nope")


def test_health_reports_the_serving_status_name() -> None:
    """health() asks about the whole server ("") and returns the status name."""
    serving = health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
    channel = FakeChannel({HEALTH_CHECK: serving})

    assert client_for(channel).health() == "SERVING"
    assert channel.calls[0][1].service == ""


def test_health_of_unknown_service_is_a_status_not_an_error() -> None:
    """NOT_FOUND from the health service means SERVICE_UNKNOWN, not a missing policy."""
    channel = FakeChannel({HEALTH_CHECK: FakeRpcError(grpc.StatusCode.NOT_FOUND, "unknown service")})

    assert client_for(channel).health("nope") == "SERVICE_UNKNOWN"


def test_health_when_unreachable_raises_service_unavailable() -> None:
    """An UNAVAILABLE health check raises ServiceUnavailableError."""
    channel = FakeChannel({HEALTH_CHECK: FakeRpcError(grpc.StatusCode.UNAVAILABLE, "connection refused")})

    with pytest.raises(ServiceUnavailableError):
        client_for(channel).health()


def test_given_channel_is_left_open_for_its_owner() -> None:
    """close() and the context manager do not close a channel the caller passed in."""
    channel = FakeChannel({})

    with client_for(channel):
        pass

    assert channel.closed is False


def test_own_channel_is_closed_and_close_is_idempotent() -> None:
    """A client that opened its channel closes it, and closing twice is harmless."""
    client = FairpathClient("127.0.0.1:1", timeout=0.1)

    client.close()
    client.close()

    with pytest.raises(ValueError, match="closed channel"):
        client.list_policies()


def test_timeout_must_be_positive() -> None:
    """A zero or negative timeout is refused at construction."""
    with pytest.raises(ValueError, match="timeout"):
        FairpathClient(timeout=0)


def test_field_violation_equality_is_by_value() -> None:
    """FieldViolation is a value: equal fields compare equal (what tests and callers rely on)."""
    assert FieldViolation("facts.a", "bad") == FieldViolation("facts.a", "bad")
