"""Translations of what an evaluation request carries, ``fairpath.v1`` → domain (facts, subject).

Pure functions, no gRPC. A decision's own wire form is :mod:`fairpath.wire`'s; policies are
:mod:`fairpath.api.policy_convert`'s.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2

from fairpath import decisions
from fairpath.v1 import decision_pb2 as pb

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
