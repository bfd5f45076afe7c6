"""Translations for the decision trail: filters and page tokens in, records out.

Pure functions, no gRPC. Page tokens are opaque to callers: URL-safe base64
of a small JSON object holding the last sequence returned, the order and a
fingerprint of the filter, so a token used with another filter or the other
order is refused rather than silently paging through the wrong records.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import UTC
from typing import Any, cast

from google.protobuf import struct_pb2, timestamp_pb2

from fairpath.audit.records import ChainReport, DecisionFilter, OutcomeRecord, StoredDecision
from fairpath.decisions import Status
from fairpath.errors import FieldViolation, InvalidRequestError
from fairpath.v1 import decision_pb2, decision_service_pb2
from fairpath.wire import DecisionWire, decision_to_proto

#: Records per ListDecisions page when the request does not say.
DEFAULT_PAGE_SIZE = 50
#: Largest page; larger requests are served this many (AIP-158 coerces rather than refuses).
MAX_PAGE_SIZE = 500
_TOKEN_VERSION = 1
_STATUSES = {decision_pb2.DECIDED: Status.DECIDED, decision_pb2.NEEDS_INFORMATION: Status.NEEDS_INFORMATION}
# Whether each order lists newest first; unspecified is oldest first, as before the order could be chosen.
_NEWEST_FIRST: dict[int, bool] = {
    decision_service_pb2.DECISION_ORDER_UNSPECIFIED: False,
    decision_service_pb2.DECISION_ORDER_OLDEST_FIRST: False,
    decision_service_pb2.DECISION_ORDER_NEWEST_FIRST: True,
}
# How a token names its order; tokens issued before orders existed have none and are oldest first.
_TOKEN_ORDERS = {False: "oldest", True: "newest"}


def filter_from_proto(message: decision_service_pb2.DecisionFilter) -> DecisionFilter:
    """Return the domain filter of a request.

    Raises:
        InvalidRequestError: An unknown status, or a time range that ends before it starts.

    """
    status = None
    if message.status != decision_pb2.DECISION_STATUS_UNSPECIFIED:
        if message.status not in _STATUSES:
            raise _invalid("filter.status", f"unknown decision status {message.status}")
        status = _STATUSES[message.status]
    from_time = message.from_time.ToDatetime(tzinfo=UTC) if message.HasField("from_time") else None
    to_time = message.to_time.ToDatetime(tzinfo=UTC) if message.HasField("to_time") else None
    if from_time and to_time and to_time < from_time:
        raise _invalid("filter.to_time", "must not be before filter.from_time")
    return DecisionFilter(
        from_time=from_time, to_time=to_time, policy=message.policy, version=message.version, status=status,
        pathway=message.pathway, rule_fired=message.rule_fired, incident_ref=message.incident_ref,
        staff_ref=message.staff_ref, action_ref=message.action_ref,
    )


def page_size(requested: int) -> int:
    """Return the page size to serve for a request's ``page_size``.

    Raises:
        InvalidRequestError: A negative size.

    """
    if requested < 0:
        raise _invalid("page_size", "must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def newest_first(order: int) -> bool:
    """Return whether a request's ``order`` lists the newest decisions first.

    Raises:
        InvalidRequestError: An order this service does not know.

    """
    if order not in _NEWEST_FIRST:
        raise _invalid("order", f"unknown order {order}")
    return _NEWEST_FIRST[order]


def page_token(
    after_sequence: int, message: decision_service_pb2.DecisionFilter, *, newest_first: bool = False
) -> str:
    """Return the token of the page following ``after_sequence`` in this order, for this filter."""
    payload = {
        "v": _TOKEN_VERSION, "after": after_sequence, "order": _TOKEN_ORDERS[newest_first],
        "filter": _fingerprint(message),
    }
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def after_sequence(token: str, message: decision_service_pb2.DecisionFilter, *, newest_first: bool = False) -> int:
    """Return the sequence a page token continues from in its order (0 for no token).

    Raises:
        InvalidRequestError: The token is malformed, or was issued for another filter or the other order.

    """
    if not token:
        return 0
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after = payload["after"]
        order = payload.get("order", _TOKEN_ORDERS[False])
        valid = (
            payload["v"] == _TOKEN_VERSION and isinstance(after, int) and after >= 0
            and order in _TOKEN_ORDERS.values()
        )
    except (binascii.Error, ValueError, TypeError, KeyError, AttributeError):
        valid = False
    if not valid:
        raise _invalid("page_token", "is not a page token this service issued")
    if payload.get("filter") != _fingerprint(message):
        raise _invalid("page_token", "was issued for a different filter; send the same filter as before")
    if order != _TOKEN_ORDERS[newest_first]:
        raise _invalid("page_token", f"was issued for listing {order} first; send the same order as before")
    return int(after)


def record_to_proto(stored: StoredDecision, encoder: DecisionWire | None = None) -> decision_service_pb2.DecisionRecord:
    """Return the wire form of a recorded decision, outcomes included.

    Args:
        stored: The record.
        encoder: Encodes its decision, remembering trace entries met before (read back, an entry
            recurring across records is one object); a fresh one if None.

    """
    facts = struct_pb2.Struct()
    facts.update(cast(dict[str, Any], dict(stored.facts)))  # JSON values, as stored
    return decision_service_pb2.DecisionRecord(
        decision=decision_to_proto(stored.decision, encoder),
        facts=facts,
        masked_facts=stored.masked_facts,
        sequence=stored.sequence,
        hash=stored.hash,
        previous_hash=stored.previous_hash,
        duration_ms=stored.duration_ms,
        outcomes=[outcome_to_proto(outcome) for outcome in stored.outcomes],
    )


def outcome_to_proto(outcome: OutcomeRecord) -> decision_service_pb2.OutcomeRecord:
    """Return the wire form of an outcome record."""
    recorded_at = timestamp_pb2.Timestamp()
    recorded_at.FromDatetime(outcome.recorded_at)
    return decision_service_pb2.OutcomeRecord(
        decision_id=outcome.decision_id,
        action_taken=outcome.action_taken,
        reviewer=outcome.reviewer,
        reason=outcome.reason,
        recorded_at=recorded_at,
        departs_from_recommendation=outcome.departs_from_recommendation,
        sequence=outcome.sequence,
    )


def report_to_proto(report: ChainReport) -> decision_service_pb2.VerifyChainResponse:
    """Return the wire form of a chain verification."""
    return decision_service_pb2.VerifyChainResponse(
        intact=report.intact,
        records_checked=report.records_checked,
        first_broken_sequence=report.first_broken_sequence,
        problem=report.problem,
    )


def _fingerprint(message: decision_service_pb2.DecisionFilter) -> str:
    return hashlib.sha256(message.SerializeToString(deterministic=True)).hexdigest()[:16]


def _invalid(field: str, description: str) -> InvalidRequestError:
    return InvalidRequestError([FieldViolation(field, description)])
