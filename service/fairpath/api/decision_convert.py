"""Translations between decisions and ``fairpath.v1`` protobuf messages.

Pure functions, no gRPC: domain → proto for a decision and its trace, proto →
domain for what an evaluation request carries (facts, subject). Policies are
:mod:`fairpath.api.policy_convert`'s. Enum mappings are written out rather than
derived from names so renaming a domain member cannot silently change the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from fairpath import decisions
from fairpath.policy.conditions import Value
from fairpath.v1 import decision_pb2 as pb

_STATUS = {
    decisions.Status.DECIDED: pb.DECIDED,
    decisions.Status.NEEDS_INFORMATION: pb.NEEDS_INFORMATION,
}
_RESULT = {
    decisions.RuleResult.FIRED: pb.FIRED,
    decisions.RuleResult.NOT_FIRED: pb.NOT_FIRED,
    decisions.RuleResult.NOT_REACHED: pb.NOT_REACHED,
    decisions.RuleResult.UNANSWERED: pb.UNANSWERED,
}
_KIND = {
    decisions.RuleKind.QUESTION: pb.QUESTION,
    decisions.RuleKind.ADVICE: pb.ADVICE,
    decisions.RuleKind.CHECK: pb.CHECK,
}


# --- requests: proto → domain ------------------------------------------------------


def facts_from_proto(facts: struct_pb2.Struct) -> dict[str, Any]:
    """Return request facts as a JSON-like dict (numbers are floats; the evaluator validates them)."""
    flat: dict[str, Any] = {}
    for name, value in facts.fields.items():
        kind = value.WhichOneof("kind")
        if kind == "string_value":  # the common case, read directly
            flat[name] = value.string_value
        elif kind == "bool_value":
            flat[name] = value.bool_value
        elif kind == "number_value":
            flat[name] = value.number_value
        elif kind == "null_value" or kind is None:
            flat[name] = None
        else:  # lists and objects: keep their shape so validation can name them
            flat[name] = json_format.MessageToDict(value)
    return flat


def subject_from_proto(subject: pb.Subject) -> decisions.Subject:
    """Return the domain subject of a request."""
    return decisions.Subject(
        incident_ref=subject.incident_ref, staff_ref=subject.staff_ref, action_ref=subject.action_ref
    )


# --- decisions: domain → proto -----------------------------------------------------


def decision_to_proto(decision: decisions.Decision) -> pb.Decision:
    """Return the wire form of a decision, trace included."""
    evaluated_at = timestamp_pb2.Timestamp()
    evaluated_at.FromDatetime(decision.evaluated_at)
    message = pb.Decision(
        decision_id=decision.decision_id,
        policy=pb.PolicyRef(
            name=decision.policy.name, version=decision.policy.version, digest=decision.policy.digest
        ),
        status=_STATUS[decision.status],
        missing_facts=[
            pb.MissingFact(fact=m.fact, question=m.question, rule_id=m.rule_id)
            for m in decision.missing_facts
        ],
        advice=[pb.Advice(code=a.code, text=a.text, rule_id=a.rule_id) for a in decision.advice],
        warnings=[pb.Warning(code=w.code, text=w.text, facts=w.facts) for w in decision.warnings],
        evaluated_at=evaluated_at,
        engine=pb.Engine(name=decision.engine_name, version=decision.engine_version),
        subject=pb.Subject(
            incident_ref=decision.subject.incident_ref,
            staff_ref=decision.subject.staff_ref,
            action_ref=decision.subject.action_ref,
        ),
        request_id=decision.request_id,
        dry_run=decision.dry_run,
        caller=decision.caller,
    )
    if decision.pathway is not None:
        p = decision.pathway
        message.pathway.CopyFrom(
            pb.Pathway(
                code=p.code, title=p.title, recommendation=p.recommendation,
                individual_directed=p.individual_directed, sub_reason=p.sub_reason, category=p.category,
            )
        )
    # Protobuf repeated fields may be appended as encoded bytes; parsing them
    # back is several times cheaper than building ~40 entries field by field.
    message.MergeFromString(b"".join(_encoded_trace_entry(entry) for entry in decision.trace))
    # Chained policies: each required decision, in full when at hand, and the link back.
    message.required_by = decision.required_by
    for link in decision.requires:
        required = message.required.add(
            policy=link.policy, version=link.version, facts=dict(link.facts), decision_id=link.decision_id
        )
        if link.decision is not None:
            required.decision.CopyFrom(decision_to_proto(link.decision))
    return message


_TRACE_TAG = bytes([pb.Decision.DESCRIPTOR.fields_by_name["trace"].number << 3 | 2])  # length-delimited
_ENCODED_LIMIT = 50_000
# The explainer hands out the same TraceEntry objects for the same rule outcome and
# values, so their encodings are kept, keyed by identity (the entry is held too, so
# its id cannot be reused while cached).
_encoded: dict[int, tuple[decisions.TraceEntry, bytes]] = {}


def _encoded_trace_entry(entry: decisions.TraceEntry) -> bytes:
    cached = _encoded.get(id(entry))
    if cached is not None and cached[0] is entry:
        return cached[1]
    body = _trace_entry(entry).SerializeToString()
    encoded = _TRACE_TAG + _varint(len(body)) + body
    if len(_encoded) >= _ENCODED_LIMIT:
        _encoded.clear()
    _encoded[id(entry)] = (entry, encoded)
    return encoded


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _trace_entry(entry: decisions.TraceEntry) -> pb.TraceEntry:
    return pb.TraceEntry(
        rule_id=entry.rule_id,
        title=entry.title,
        condition=entry.condition,
        facts_seen=value_map(entry.facts_seen),
        result=_RESULT[entry.result],
        reason=entry.reason,
        kind=_KIND[entry.kind],
        question=entry.question,
        leads_to=entry.leads_to,
    )


def value_map(values: Mapping[str, Value]) -> dict[str, struct_pb2.Value]:
    """Return fact values as ``google.protobuf.Value`` messages, keeping booleans boolean."""
    converted: dict[str, struct_pb2.Value] = {}
    for name, value in values.items():
        # bool before number: bool is an int subclass and would otherwise become 1.0.
        if isinstance(value, bool):
            converted[name] = struct_pb2.Value(bool_value=value)
        elif isinstance(value, int | float):
            converted[name] = struct_pb2.Value(number_value=value)
        elif isinstance(value, tuple):  # a set fact: its codes as a list
            listed = struct_pb2.Value()
            listed.list_value.extend(value)
            converted[name] = listed
        else:
            converted[name] = struct_pb2.Value(string_value=str(value))
    return converted
