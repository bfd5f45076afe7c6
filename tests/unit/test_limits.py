"""The limits interceptor's checks, driven directly with a stand-in servicer context."""

from __future__ import annotations

from typing import Any, cast

import grpc
import pytest
from fairpath.api import limits
from fairpath.errors import DeadlineExpiredError, InvalidFactsError, InvalidRequestError, MalformedRequestError
from fairpath.policy.facts import MAX_FACT_NAME, MAX_FACTS, MAX_STRING
from fairpath.v1 import evaluation_service_pb2
from google.protobuf import struct_pb2


class _Context:
    """Only what the limits check reads from a ServicerContext."""

    def __init__(self, seconds_left: float = 5.0) -> None:
        self.seconds_left = seconds_left

    def time_remaining(self) -> float:
        return self.seconds_left


def _enter(request: Any, seconds_left: float = 5.0) -> None:
    limits.check_limits(request, cast(grpc.ServicerContext, _Context(seconds_left)))


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


def test_guarded_deserializer_hands_decode_errors_to_the_check() -> None:
    """The guarded deserializer returns a marker instead of raising, so gRPC never reports INTERNAL."""
    handler = grpc.unary_unary_rpc_method_handler(
        lambda request, context: request,
        request_deserializer=struct_pb2.Struct.FromString,
        response_serializer=struct_pb2.Struct.SerializeToString,
    )
    guarded = limits.guard_decoding(handler)
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


def test_oversized_string_fields_are_refused_before_the_facts() -> None:
    """A too-long field is an InvalidRequestError naming it, even when the facts are absurd too."""
    request = _request({f"f{index}": 1 for index in range(MAX_FACTS + 1)})
    request.subject.equality_group = "g" * 65
    with pytest.raises(InvalidRequestError) as error:
        _enter(request)
    assert [v.field for v in error.value.violations] == ["subject.equality_group"]


@pytest.mark.parametrize("header", ["r" * 129, "tab\there"])
def test_a_bad_request_id_header_is_refused_not_replaced(header: str) -> None:
    """An x-request-id too long or unprintable is a violation on the header, whatever the request holds."""
    with pytest.raises(InvalidRequestError) as error:
        limits.check_limits(_request({}), cast(grpc.ServicerContext, _Context()), header)
    assert [v.field for v in error.value.violations] == ["x-request-id"]


def test_a_good_request_id_header_passes() -> None:
    """A 128-character printable id is accepted."""
    limits.check_limits(_request({}), cast(grpc.ServicerContext, _Context()), "r" * 128)  # raises nothing


def test_fact_names_longer_than_any_fact_are_refused_with_a_short_field() -> None:
    """A 3,000-character fact name is refused at the door; the violation's field is a short prefix."""
    with pytest.raises(InvalidFactsError) as error:
        _enter(_request({"n" * 3000: "YES"}))
    [violation] = error.value.violations
    assert violation.field == f"facts.{'n' * MAX_FACT_NAME}…"
    assert violation.description == f"a fact name is at most {MAX_FACT_NAME} characters, got 3000"


def test_long_texts_and_long_lists_are_refused_whatever_the_fact() -> None:
    """Text over MAX_STRING and lists or objects over MAX_FACT_ITEMS are refused before conversion."""
    too_many = [str(index) for index in range(limits.MAX_FACT_ITEMS + 1)]
    with pytest.raises(InvalidFactsError) as error:
        _enter(_request({
            "note": "x" * (MAX_STRING + 1),
            "types": too_many,
            "shape": {str(index): 1 for index in range(limits.MAX_FACT_ITEMS + 1)},
            "fine": "x" * MAX_STRING,
        }))
    assert [(v.field, v.description.split(",")[0]) for v in error.value.violations] == [
        ("facts.note", f"text must be at most {MAX_STRING} characters"),
        ("facts.shape", f"an object must have at most {limits.MAX_FACT_ITEMS} items"),
        ("facts.types", f"a list must have at most {limits.MAX_FACT_ITEMS} items"),
    ]
