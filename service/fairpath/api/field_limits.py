"""The longest value each string field of each request may carry, in one table.

Every string field of every ``fairpath.v1`` request has a maximum here, in
characters. :func:`fairpath.api.limits.check_limits` checks a request
against it before the handler runs, so nothing of a refused request is
evaluated, recorded or logged, and a record can never hold a field too large
to be returned. A refusal is ``INVALID_ARGUMENT`` (reason ``INVALID_REQUEST``)
with one ``BadRequest`` violation per field, named by its path
(``subject.incident_ref``, ``filter.policy``).

The maxima are generous for their content (names and codes the policy loader
allows, pseudonymous references, UUIDs) and small beside the largest message
(``--max-message-bytes``, 4 MiB). Facts are bounded separately
(:mod:`fairpath.api.limits`, :mod:`fairpath.policy.facts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from fairpath.errors import FieldViolation
from fairpath.policy.loader import MAX_POLICY_BYTES, MAX_TESTS_BYTES
from fairpath.serving.incidents import ACTION_ID_SEPARATOR
from fairpath.serving.state import REQUIRED_ID_SEPARATOR

#: A policy name (the loader allows 63 characters).
POLICY_NAME = 64
#: A policy version (semver ``MAJOR.MINOR.PATCH``).
VERSION = 64
#: A pseudonymous subject reference: incident, staff member, action.
REF = 128
#: A pseudonymous equality-monitoring group code.
EQUALITY_GROUP = 64
#: A request id (``request_id`` or the ``x-request-id`` header); it must also be printable ASCII.
REQUEST_ID = 128
#: A decision id (fairpath issues 36-character UUIDs).
DECISION_ID = 64
#: A pathway code or rule id in a filter (the loader allows 63 and 32 characters).
CODE = 64
#: A ``ListDecisions`` page token (fairpath issues ~90-character ones).
PAGE_TOKEN = 256
#: A statistics period name (``all``, ``year``, ``quarter``, ``month``).
PERIOD = 16
#: What people did, and who decided (``RecordOutcome``).
ACTION = 200
REVIEWER = 200
#: Why (``RecordOutcome``).
REASON = 4000
#: The path a draft is reported under (``ValidatePolicy``; repeated in every problem).
POLICY_PATH = 256
#: Draft policy text and its cases (``ValidatePolicy``): as many characters as a file may hold bytes. Text
#: with fewer characters but more UTF-8 bytes is an ordinary answer, the loader's ``load`` problem.
POLICY_TEXT = MAX_POLICY_BYTES
TESTS_TEXT = MAX_TESTS_BYTES
#: Most actions in one ``EvaluateIncident`` call: an incident's people and their actions, not a batch job.
INCIDENT_ACTIONS = 50
#: An ``EvaluateIncident`` request id (field or header): each action records ``<id>#<index>``
#: (:func:`fairpath.serving.incidents.action_request_id`), which must still fit in :data:`REQUEST_ID`.
INCIDENT_REQUEST_ID = REQUEST_ID - len(f"{ACTION_ID_SEPARATOR}{INCIDENT_ACTIONS - 1}")
#: A signed checkpoint (one JSON line) and a PEM public key (``VerifyChain``).
CHECKPOINT = 2048
PUBLIC_KEY = 4096

_FILTER = {
    "policy": POLICY_NAME,
    "version": VERSION,
    "pathway": CODE,
    "rule_fired": CODE,
    "incident_ref": REF,
    "staff_ref": REF,
    "action_ref": REF,
}

#: Message full name -> string field -> most characters. Nested fairpath messages have entries of their own.
FIELD_LIMITS: Mapping[str, Mapping[str, int]] = {
    "fairpath.v1.EvaluateRequest": {"policy": POLICY_NAME, "version": VERSION, "request_id": REQUEST_ID},
    "fairpath.v1.EvaluateIncidentRequest": {
        "incident_ref": REF, "policy": POLICY_NAME, "version": VERSION, "request_id": INCIDENT_REQUEST_ID,
    },
    "fairpath.v1.Subject": {
        "incident_ref": REF, "staff_ref": REF, "action_ref": REF, "equality_group": EQUALITY_GROUP,
    },
    "fairpath.v1.GetPolicyRequest": {"name": POLICY_NAME, "version": VERSION},
    "fairpath.v1.ValidatePolicyRequest": {
        "policy_text": POLICY_TEXT, "tests_text": TESTS_TEXT, "path": POLICY_PATH,
    },
    "fairpath.v1.DecisionFilter": _FILTER,
    "fairpath.v1.GetDecisionRequest": {"decision_id": DECISION_ID},
    "fairpath.v1.ListDecisionsRequest": {"page_token": PAGE_TOKEN},
    "fairpath.v1.RecordOutcomeRequest": {
        "decision_id": DECISION_ID, "action_taken": ACTION, "reviewer": REVIEWER, "reason": REASON,
    },
    "fairpath.v1.ReplayDecisionsRequest": {
        "policy": POLICY_NAME, "version": VERSION, "period": PERIOD, "reference_group": EQUALITY_GROUP,
    },
    "fairpath.v1.OutcomeStatsRequest": {
        "policy": POLICY_NAME, "version": VERSION, "period": PERIOD, "reference_group": EQUALITY_GROUP,
    },
    "fairpath.v1.VerifyChainRequest": {"checkpoints": CHECKPOINT, "public_key": PUBLIC_KEY},
}

#: Message full name -> repeated string or fairpath message field -> most items.
ITEM_LIMITS: Mapping[str, Mapping[str, int]] = {
    "fairpath.v1.EvaluateIncidentRequest": {"actions": INCIDENT_ACTIONS},
    # A year of hourly checkpoints is ~8,800 lines of ~250 characters: the message limit binds first.
    "fairpath.v1.VerifyChainRequest": {"checkpoints": 10_000},
}

#: The characters fairpath derives request ids with, and what for: an incident's actions record
#: ``<id>#<index>`` and a chained policy's required decisions ``<id>><policy>``.
DERIVED_ID_SEPARATORS: Mapping[str, str] = {
    ACTION_ID_SEPARATOR: "the ids of EvaluateIncident's actions (<request id>#<action index>)",
    REQUIRED_ID_SEPARATOR: "the ids of the decisions a chained policy requires (<request id>><policy>)",
}
#: Request ids, checked by :func:`request_id_problem` (they are logged and echoed in the trailers), each
#: with the characters it may not contain. An ``Evaluate`` id may contain neither separator, so no
#: ``Evaluate`` can meet (be refused for, or replay) a derived decision. An incident's ids need not
#: be held to that: every id derived from one ends in ``#<index>`` or ``#<index>><policy>``, which
#: no other incident's or evaluation's can.
REQUEST_ID_FIELDS: Mapping[tuple[str, str], str] = {
    ("fairpath.v1.EvaluateRequest", "request_id"): ACTION_ID_SEPARATOR + REQUIRED_ID_SEPARATOR,
    ("fairpath.v1.EvaluateIncidentRequest", "request_id"): "",
}

# A string field someone adds without an entry still has bounds (tests/unit/test_field_limits.py
# fails until the tables name it).
_UNLISTED = 1024
_UNLISTED_ITEMS = 100


def too_long(length: int, limit: int) -> str:
    """Return the violation description of a value of ``length`` characters over ``limit``."""
    return f"must be at most {limit} characters, got {length}"


def request_id_problem(value: str, limit: int = REQUEST_ID, reserved: str = "") -> str:
    """Return what is wrong with a request id ("" when nothing is): too long, not printable ASCII, or reserved.

    The id is echoed in the ``x-request-id`` trailer, and gRPC cannot send other characters there: the
    caller would get ``INTERNAL`` for a decision already recorded.

    Args:
        value: The id.
        limit: Most characters (:data:`INCIDENT_REQUEST_ID` for an incident's).
        reserved: Characters the id may not contain (the separators of
            :data:`DERIVED_ID_SEPARATORS` for an ``Evaluate`` id).

    """
    if len(value) > limit:
        return too_long(len(value), limit)
    if not (value.isascii() and value.isprintable()):
        return "must be printable ASCII characters"
    for separator in reserved:
        if separator in value:
            return f"must not contain {separator!r}: it is reserved for {DERIVED_ID_SEPARATORS[separator]}"
    return ""


def header_request_id_problem(value: str, request: object) -> str:
    """Return what is wrong with an ``x-request-id`` header sent with ``request`` ("" when nothing is).

    The header stands for the request's ``request_id`` field, so it is held to that field's rules
    (an incident's shorter maximum, an ``Evaluate`` id's reserved separators); other calls take any id.
    """
    name = request.DESCRIPTOR.full_name if isinstance(request, Message) else ""
    reserved = REQUEST_ID_FIELDS.get((name, "request_id"), "")
    return request_id_problem(value, FIELD_LIMITS.get(name, {}).get("request_id", REQUEST_ID), reserved)


def field_violations(message: Message, path: str = "") -> list[FieldViolation]:
    """Return one violation per string field of ``message`` (nested fairpath messages too) over its maximum.

    Args:
        message: A request.
        path: Prefix of the field names reported, for nested messages (``"subject."``).

    """
    found: list[FieldViolation] = []
    for name, kind, limit, items in _plan(cast(Descriptor, message.DESCRIPTOR)):  # the stubs also allow upb's
        value = getattr(message, name)
        if kind == _TEXT:  # the common case first: Evaluate runs this on every call
            if len(value) > limit:
                found.append(FieldViolation(path + name, too_long(len(value), limit)))
        elif kind == _REQUEST_ID:
            reserved = REQUEST_ID_FIELDS[message.DESCRIPTOR.full_name, name]
            if value and (problem := request_id_problem(value, limit, reserved)):
                found.append(FieldViolation(path + name, problem))
        elif kind == _MESSAGE:
            if message.HasField(name):
                found.extend(field_violations(value, f"{path}{name}."))
        elif kind == _MESSAGES:
            if len(value) > items:
                found.append(FieldViolation(path + name, f"must have at most {items} items, got {len(value)}"))
            for index, item in enumerate(value):
                found.extend(field_violations(item, f"{path}{name}[{index}]."))
        else:  # _TEXTS
            if len(value) > items:
                found.append(FieldViolation(path + name, f"must have at most {items} items, got {len(value)}"))
            found.extend(
                FieldViolation(f"{path}{name}[{index}]", too_long(len(item), limit))
                for index, item in enumerate(value)
                if len(item) > limit
            )
    return found


# What a plan says to do with a field.
_TEXT, _REQUEST_ID, _TEXTS, _MESSAGE, _MESSAGES = range(5)
_Plan = list[tuple[str, int, int, int]]  # field name, kind, most characters, most items
_PLANS: dict[str, _Plan] = {}


def _plan(descriptor: Descriptor) -> _Plan:
    """Return the fields of ``descriptor`` to check: strings with their limits, fairpath messages to descend."""
    plan = _PLANS.get(descriptor.full_name)
    if plan is None:
        limits = FIELD_LIMITS.get(descriptor.full_name, {})
        items = ITEM_LIMITS.get(descriptor.full_name, {})
        plan = []
        for field in descriptor.fields:
            if field.type == FieldDescriptor.TYPE_STRING:
                if field.is_repeated:
                    kind = _TEXTS
                elif (descriptor.full_name, field.name) in REQUEST_ID_FIELDS:
                    kind = _REQUEST_ID
                else:
                    kind = _TEXT
            elif (
                field.type == FieldDescriptor.TYPE_MESSAGE
                and field.message_type is not None
                # Struct (facts) and Timestamp are checked elsewhere or hold no text.
                and field.message_type.full_name.startswith("fairpath.")
            ):
                kind = _MESSAGES if field.is_repeated else _MESSAGE
            else:
                continue
            plan.append((field.name, kind, limits.get(field.name, _UNLISTED), items.get(field.name, _UNLISTED_ITEMS)))
        _PLANS[descriptor.full_name] = plan
    return plan
