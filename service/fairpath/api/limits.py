"""Per-call limits that gRPC's own options do not cover.

gRPC already enforces two limits, configured in :func:`fairpath.api.server.build_grpc_server`:
the largest message (``RESOURCE_EXHAUSTED`` beyond ``--max-message-bytes``) and the
number of RPCs in progress (``RESOURCE_EXHAUSTED`` beyond ``--max-concurrent-rpcs``,
instead of an unbounded queue). The server's interceptor (:mod:`fairpath.api.interceptors`)
adds four more, with :func:`guard_decoding` and :func:`check_limits`:

* **Undecodable requests** -- protobuf refuses messages nested past its depth limit
  (100 levels; a ``Struct`` spends three per level of JSON, so facts nested ~33 deep).
  gRPC would report that as ``INTERNAL: Exception deserializing request!``, which
  reads as our bug; here it becomes ``INVALID_ARGUMENT`` (``MALFORMED_REQUEST``).
* **Oversized fields** -- a string field longer than its maximum in
  :mod:`fairpath.api.field_limits`, or a request id (field or ``x-request-id``
  header) too long, not printable or (for ``Evaluate``) holding the ``#`` that
  incident actions' ids are made with, is refused as ``INVALID_ARGUMENT``
  (``INVALID_REQUEST``, one violation per field) before anything is evaluated,
  recorded or logged; a request id is never silently replaced.
* **Absurd facts** -- more facts than the evaluator accepts, a name longer than
  any fact's, a text longer than a string fact may be, a list longer than
  :data:`MAX_FACT_ITEMS` or a value nested deeper than a fact can be, are
  refused as ``INVALID_ARGUMENT`` before the evaluator walks them.
* **Expired deadlines** -- a call that waited in the queue until its deadline
  passed is answered ``DEADLINE_EXCEEDED`` without being evaluated, so no
  decision is made (or recorded) that nobody will receive.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import struct_pb2
from google.protobuf.message import DecodeError, Message

from fairpath.api.call_state import REQUEST_ID_HEADER, Handler
from fairpath.api.field_limits import field_violations, header_request_id_problem
from fairpath.echo import prefix
from fairpath.errors import (
    DeadlineExpiredError,
    FieldViolation,
    InvalidFactsError,
    InvalidRequestError,
    MalformedRequestError,
)
from fairpath.policy.facts import MAX_FACT_NAME, MAX_FACTS, MAX_STRING

#: Deepest nesting of a fact value: a scalar is 0, a list of scalars 1. Set facts are lists; the rest
#: are scalars, so 2 leaves room for the evaluator to name a wrongly nested value instead of us.
MAX_FACT_DEPTH = 2
#: Most items in a list fact value (a set fact's codes) or object; no policy declares a set this large.
MAX_FACT_ITEMS = 256

#: Below this many seconds left, the answer cannot arrive in time: do not start the work.
MIN_SECONDS_LEFT = 0.001


class _Undecodable:
    """Stands in for a request whose bytes did not decode, so :func:`check_limits` can refuse it."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def guard_decoding(handler: Handler) -> Handler:
    """Return ``handler`` with a deserializer that hands decode failures to :func:`check_limits` instead of grpc."""
    decode = handler.request_deserializer
    # Streamed requests would hand the marker to the servicer's loop; fairpath has none, so leave them.
    if decode is None or handler.request_streaming:
        return handler

    def guarded(data: bytes) -> Any:
        try:
            return decode(data)
        except (DecodeError, RecursionError) as error:
            return _Undecodable(error)

    serializers = {"request_deserializer": guarded, "response_serializer": handler.response_serializer}
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(handler.unary_unary, **serializers)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(handler.unary_stream, **serializers)
    return handler


def check_limits(request: Any, context: grpc.ServicerContext, request_id_header: str = "") -> None:
    """Refuse ``request`` before its handler runs if it breaks a limit above (``request_id_header``: the header's id).

    Raises:
        MalformedRequestError: The request did not decode.
        DeadlineExpiredError: Its deadline has passed (or nearly).
        InvalidRequestError: A field, or the ``x-request-id`` header, is too long or malformed.
        InvalidFactsError: The facts are absurd whatever the policy.

    """
    if isinstance(request, _Undecodable):
        raise MalformedRequestError(f"the request cannot be decoded: {request.error}")
    if context.time_remaining() < MIN_SECONDS_LEFT:
        raise DeadlineExpiredError("the deadline passed before the call was started")
    violations = field_violations(request) if isinstance(request, Message) else []
    # The client sends an id that fits a header both ways: the same id is named once, as the field.
    repeated = request_id_header == getattr(request, "request_id", None)
    if request_id_header and not repeated and (problem := header_request_id_problem(request_id_header, request)):
        # Refused, not replaced by a fresh id: a retry with the same id would otherwise record a new decision.
        violations.insert(0, FieldViolation(REQUEST_ID_HEADER, problem))
    if violations:
        raise InvalidRequestError(violations)
    if isinstance(request, Message):
        _check_facts(request)
        # EvaluateIncident: each action's own facts too, named by the action's index.
        for index, action in enumerate(getattr(request, "actions", ())):
            _check_facts(action, f"actions[{index}].")


def _check_facts(request: Message, path: str = "") -> None:
    field = request.DESCRIPTOR.fields_by_name.get("facts")
    if field is None or field.message_type is not struct_pb2.Struct.DESCRIPTOR:
        return
    facts: struct_pb2.Struct = getattr(request, "facts")  # noqa: B009 - the field is found by name
    if len(facts.fields) > MAX_FACTS:
        # The evaluator checks this too, but only after converting every value; refuse before that.
        message = f"at most {MAX_FACTS} facts, got {len(facts.fields)}"
        raise InvalidFactsError([FieldViolation(f"{path}facts", message)])
    violations = []
    for name, value in facts.fields.items():
        # The common case, tested inline (every Evaluate has a dozen or more short text facts).
        if value.HasField("string_value") and len(value.string_value) <= MAX_STRING and len(name) <= MAX_FACT_NAME:
            continue
        if problem := _fact_problem(name, value):
            violations.append(FieldViolation(f"{path}facts.{prefix(name, MAX_FACT_NAME)}", problem))
    if violations:
        # Sorted: a protobuf map's order is arbitrary, and only the first few are shown (fairpath.echo).
        raise InvalidFactsError(sorted(violations, key=lambda violation: violation.field))


def _fact_problem(name: str, value: struct_pb2.Value) -> str:
    """Return what makes fact ``name`` absurd whatever the policy ("" for nothing), without walking it whole."""
    if len(name) > MAX_FACT_NAME:
        return f"a fact name is at most {MAX_FACT_NAME} characters, got {len(name)}"
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        length = len(value.string_value)
        return f"text must be at most {MAX_STRING} characters, got {length}" if length > MAX_STRING else ""
    if kind == "list_value" and len(value.list_value.values) > MAX_FACT_ITEMS:
        return f"a list must have at most {MAX_FACT_ITEMS} items, got {len(value.list_value.values)}"
    if kind == "struct_value" and len(value.struct_value.fields) > MAX_FACT_ITEMS:
        return f"an object must have at most {MAX_FACT_ITEMS} items, got {len(value.struct_value.fields)}"
    if _too_deep(value):
        return f"nested deeper than {MAX_FACT_DEPTH} levels"
    return ""


def _too_deep(value: struct_pb2.Value) -> bool:
    return _depth(value, MAX_FACT_DEPTH + 1) > MAX_FACT_DEPTH


def _depth(value: struct_pb2.Value, limit: int) -> int:
    """Nesting depth of ``value`` (a scalar is 0), counting no further than ``limit``."""
    if limit <= 0:
        return 0
    kind = value.WhichOneof("kind")
    if kind == "list_value":
        children = list(value.list_value.values)
    elif kind == "struct_value":
        children = list(value.struct_value.fields.values())
    else:
        return 0
    return 1 + max((_depth(child, limit - 1) for child in children), default=0)
