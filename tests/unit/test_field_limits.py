"""The one table of string-field maxima: complete for every request of every service, and applied by path."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fairpath.api import field_limits
from fairpath.api.field_limits import FIELD_LIMITS, ITEM_LIMITS, field_violations
from fairpath.v1 import (
    decision_service_pb2,
    evaluation_service_pb2,
    policy_service_pb2,
)
from google.protobuf.descriptor import Descriptor, FieldDescriptor

_SERVICES = [
    service
    for module in (evaluation_service_pb2, decision_service_pb2, policy_service_pb2)
    for service in module.DESCRIPTOR.services_by_name.values()
]


def _messages(descriptor: Descriptor, seen: set[str]) -> Iterator[Descriptor]:
    """Yield ``descriptor`` and every fairpath message nested in it, once each."""
    if descriptor.full_name in seen or not descriptor.full_name.startswith("fairpath."):
        return
    seen.add(descriptor.full_name)
    yield descriptor
    for field in descriptor.fields:
        if field.message_type is not None:
            yield from _messages(field.message_type, seen)


def _request_messages() -> list[Descriptor]:
    seen: set[str] = set()
    return [
        found for service in _SERVICES for method in service.methods for found in _messages(method.input_type, seen)
    ]


def test_every_string_field_of_every_request_has_a_maximum() -> None:
    """A string field added to any request without an entry in the table fails here, naming it."""
    missing = [
        f"{message.full_name}.{field.name}"
        for message in _request_messages()
        for field in message.fields
        if field.type == FieldDescriptor.TYPE_STRING and field.name not in FIELD_LIMITS.get(message.full_name, {})
    ]
    unbounded_lists = [
        f"{message.full_name}.{field.name}"
        for message in _request_messages()
        for field in message.fields
        if _is_list(field) and field.name not in ITEM_LIMITS.get(message.full_name, {})
    ]
    assert missing == []
    assert unbounded_lists == []


def _is_list(field: FieldDescriptor) -> bool:
    """A repeated string, or a repeated fairpath message (Struct and map entries are bounded elsewhere)."""
    message = field.message_type
    return field.is_repeated and (
        field.type == FieldDescriptor.TYPE_STRING or (message is not None and message.full_name.startswith("fairpath."))
    )


def test_the_tables_name_only_real_fields() -> None:
    """No stale entries: the tables bound strings (lengths) and repeated fields (items) that requests have."""
    requests = {message.full_name: message for message in _request_messages()}
    for name, fields in FIELD_LIMITS.items():
        for field in fields:
            assert requests[name].fields_by_name[field].type == FieldDescriptor.TYPE_STRING, (name, field)
    for name, fields in ITEM_LIMITS.items():
        for field in fields:
            assert _is_list(requests[name].fields_by_name[field]), (name, field)


def test_the_rpcs_with_strings_are_the_ones_expected() -> None:
    """The table covers Evaluate, the trail and policy RPCs (a guard against walking nothing at all)."""
    covered = {message.full_name for message in _request_messages()} & set(FIELD_LIMITS)
    assert {
        "fairpath.v1.EvaluateRequest",
        "fairpath.v1.Subject",
        "fairpath.v1.DecisionFilter",
        "fairpath.v1.RecordOutcomeRequest",
        "fairpath.v1.ReplayDecisionsRequest",
        "fairpath.v1.OutcomeStatsRequest",
        "fairpath.v1.GetPolicyRequest",
        "fairpath.v1.ValidatePolicyRequest",
    } <= covered


def test_values_at_their_maximum_pass_and_one_more_character_is_named_by_path() -> None:
    """Nested fields are reported by dotted path; a value exactly at its maximum is fine."""
    request = evaluation_service_pb2.EvaluateRequest(policy="p" * field_limits.POLICY_NAME)
    request.subject.incident_ref = "i" * field_limits.REF
    assert field_violations(request) == []
    request.subject.incident_ref += "i"
    request.version = "v" * (field_limits.VERSION + 1)
    found = {violation.field: violation.description for violation in field_violations(request)}
    assert found == {
        "version": f"must be at most {field_limits.VERSION} characters, got {field_limits.VERSION + 1}",
        "subject.incident_ref": f"must be at most {field_limits.REF} characters, got {field_limits.REF + 1}",
    }


def test_a_filter_inside_a_replay_request_is_checked() -> None:
    """The same DecisionFilter limits hold wherever the filter is carried."""
    request = decision_service_pb2.ReplayDecisionsRequest(version="1.0.0", period="x" * 17)
    request.filter.staff_ref = "s" * 4_000_000
    assert sorted(violation.field for violation in field_violations(request)) == ["filter.staff_ref", "period"]


@pytest.mark.parametrize(
    ("request_id", "problem"),
    [
        ("r" * 128, ""),
        ("r" * 129, "must be at most 128 characters, got 129"),
        ("line\nbreak", "must be printable ASCII characters"),
        ("caf\u00e9", "must be printable ASCII characters"),
    ],
)
def test_a_request_id_must_be_short_and_printable(request_id: str, problem: str) -> None:
    """Request ids are logged and echoed in trailers: too long or not printable ASCII is a violation."""
    assert field_limits.request_id_problem(request_id) == problem
    request = evaluation_service_pb2.EvaluateRequest(policy="p", request_id=request_id)
    expected = [("request_id", problem)] if problem else []
    assert [(v.field, v.description) for v in field_violations(request)] == expected
