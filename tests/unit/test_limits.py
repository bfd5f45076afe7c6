"""The limits interceptor's checks, driven directly with a stand-in servicer context."""

from __future__ import annotations

from typing import Any, cast

import grpc
import pytest
from fairpath.api import limits
from fairpath.errors import DeadlineExpiredError, InvalidFactsError, MalformedRequestError
from fairpath.policy.facts import MAX_FACTS
from fairpath.v1 import evaluation_service_pb2
from google.protobuf import struct_pb2


class _Context:
    """Only what the limits scope reads from a ServicerContext."""

    def __init__(self, seconds_left: float = 5.0) -> None:
        self.seconds_left = seconds_left

    def time_remaining(self) -> float:
        return self.seconds_left


def _enter(request: Any, seconds_left: float = 5.0) -> None:
    with limits._check_limits(request, cast(grpc.ServicerContext, _Context(seconds_left))):
        pass


def _request(facts: dict[str, object]) -> evaluation_service_pb2.EvaluateRequest:
    request = evaluation_service_pb2.EvaluateRequest(policy="p")
    request.facts.update(facts)
    return request


def test_expired_deadline_refuses_before_the_work() -> None:
    """No time left means DeadlineExpiredError before the handler runs."""
    with pytest.raises(DeadlineExpiredError):
        _enter(_request({}), seconds_left=0.0)


def test_time_left_lets_the_call_through() -> None:
    """An ordinary request with time left passes every check."""
    _enter(_request({"harm_severity": "LOW", "types": ["A", "B"]}))


def test_undecodable_marker_is_a_malformed_request() -> None:
    """A request whose bytes did not decode becomes MalformedRequestError naming protobuf's complaint."""
    with pytest.raises(MalformedRequestError, match="MaxDepth"):
        _enter(limits._Undecodable(ValueError("Exceeded upb_DecodeOptions_MaxDepth")))


def test_guarded_deserializer_hands_decode_errors_to_the_scope() -> None:
    """The guarded deserializer returns a marker instead of raising, so gRPC never reports INTERNAL."""
    handler = grpc.unary_unary_rpc_method_handler(
        lambda request, context: request,
        request_deserializer=struct_pb2.Struct.FromString,
        response_serializer=struct_pb2.Struct.SerializeToString,
    )
    guarded = limits._guard_decoding(handler)
    assert guarded.request_deserializer is not None
    assert isinstance(guarded.request_deserializer(b"\xff\xff\xff"), limits._Undecodable)
    assert guarded.request_deserializer(struct_pb2.Struct().SerializeToString()) == struct_pb2.Struct()


def test_too_many_facts_are_refused() -> None:
    """More than MAX_FACTS facts is one violation on 'facts'."""
    with pytest.raises(InvalidFactsError) as error:
        _enter(_request({f"f{index}": 1 for index in range(MAX_FACTS + 1)}))
    assert [v.field for v in error.value.violations] == ["facts"]


def test_facts_nested_past_the_limit_name_each_fact() -> None:
    """Each fact nested deeper than MAX_FACT_DEPTH gets its own violation, sorted by name."""
    deep = {"a": {"b": {"c": 1}}}
    with pytest.raises(InvalidFactsError) as error:
        _enter(_request({"zeta": deep, "alpha": [[["x"]]], "fine": ["x"]}))
    assert [v.field for v in error.value.violations] == ["facts.alpha", "facts.zeta"]


def test_requests_without_facts_are_not_inspected() -> None:
    """Messages without a Struct 'facts' field (and raw bytes) pass the facts checks untouched."""
    _enter(struct_pb2.Struct())
    _enter(b"raw")
