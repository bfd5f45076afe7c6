"""Plain, frozen values for the decision trail: recorded decisions, outcomes, filters, chain reports.

Like :mod:`fairpath_client._models`, these mirror ``fairpath.v1`` messages
(``DecisionRecord``, ``OutcomeRecord``, ``DecisionFilter``,
``VerifyChainResponse``) so callers never handle generated classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fairpath.v1 import decision_pb2, decision_service_pb2
from google.protobuf import json_format, timestamp_pb2

from fairpath_client._models import Decision, DecisionStatus, _Model

_STATUS_CODES = {"DECIDED": decision_pb2.DECIDED, "NEEDS_INFORMATION": decision_pb2.NEEDS_INFORMATION}


@dataclass(frozen=True, kw_only=True)
class DecisionFilter(_Model):
    """Which recorded decisions to list or export; every criterion given must hold.

    Attributes:
        from_time: Evaluated at or after this instant (an aware datetime).
        to_time: Evaluated before this instant.
        policy: Policy name.
        version: Policy version.
        status: ``"DECIDED"`` or ``"NEEDS_INFORMATION"``.
        pathway: Pathway code, e.g. ``"JCG_A_DELIBERATE_HARM"``.
        rule_fired: Id of a rule that fired, e.g. ``"2a"``.
        incident_ref: Pseudonymous incident reference.
        staff_ref: Pseudonymous staff reference.
        action_ref: Pseudonymous action reference.

    """

    from_time: datetime | None = None
    to_time: datetime | None = None
    policy: str = ""
    version: str = ""
    status: DecisionStatus | None = None
    pathway: str = ""
    rule_fired: str = ""
    incident_ref: str = ""
    staff_ref: str = ""
    action_ref: str = ""

    def to_proto(self) -> decision_service_pb2.DecisionFilter:
        """Return the ``fairpath.v1.DecisionFilter`` message.

        Raises:
            ValueError: ``status`` is not a status the service filters by.

        """
        if self.status is not None and self.status not in _STATUS_CODES:
            msg = f"status must be DECIDED or NEEDS_INFORMATION, got {self.status!r}"
            raise ValueError(msg)
        message = decision_service_pb2.DecisionFilter(
            policy=self.policy, version=self.version, pathway=self.pathway, rule_fired=self.rule_fired,
            incident_ref=self.incident_ref, staff_ref=self.staff_ref, action_ref=self.action_ref,
            status=_STATUS_CODES[self.status] if self.status else decision_pb2.DECISION_STATUS_UNSPECIFIED,
        )
        if self.from_time is not None:
            message.from_time.CopyFrom(_timestamp(self.from_time))
        if self.to_time is not None:
            message.to_time.CopyFrom(_timestamp(self.to_time))
        return message


@dataclass(frozen=True, kw_only=True)
class OutcomeRecord(_Model):
    """What people finally did after a recommendation, as recorded.

    Attributes:
        departs_from_recommendation: True when ``action_taken`` differs from the
            recommended pathway code (never for a decision that recommended none).
        sequence: Its place in the trail's hash chain.

    """

    decision_id: str
    action_taken: str
    reviewer: str
    reason: str
    recorded_at: datetime
    departs_from_recommendation: bool
    sequence: int

    @classmethod
    def from_proto(cls, message: decision_service_pb2.OutcomeRecord) -> OutcomeRecord:
        """Build from a ``fairpath.v1.OutcomeRecord`` message."""
        return cls(
            decision_id=message.decision_id,
            action_taken=message.action_taken,
            reviewer=message.reviewer,
            reason=message.reason,
            recorded_at=message.recorded_at.ToDatetime(tzinfo=UTC),
            departs_from_recommendation=message.departs_from_recommendation,
            sequence=message.sequence,
        )


@dataclass(frozen=True, kw_only=True)
class DecisionRecord(_Model):
    """A decision as the trail recorded it.

    Attributes:
        decision: The decision, its trace included; values of sensitive facts read ``"***"``.
        facts: The request's facts as JSON values, sensitive ones masked as ``"***"``.
        masked_facts: Names of the masked facts.
        sequence: Its place in the hash chain.
        hash: sha256 of the record and the previous hash, hex.
        previous_hash: The hash of the record before it.
        duration_ms: How long evaluating took.
        outcomes: What people did afterwards, oldest first.

    """

    decision: Decision
    facts: dict[str, Any]
    masked_facts: tuple[str, ...]
    sequence: int
    hash: str
    previous_hash: str
    duration_ms: float
    outcomes: tuple[OutcomeRecord, ...]

    @classmethod
    def from_proto(cls, message: decision_service_pb2.DecisionRecord) -> DecisionRecord:
        """Build from a ``fairpath.v1.DecisionRecord`` message."""
        return cls(
            decision=Decision.from_proto(message.decision),
            facts=json_format.MessageToDict(message.facts),
            masked_facts=tuple(message.masked_facts),
            sequence=message.sequence,
            hash=message.hash,
            previous_hash=message.previous_hash,
            duration_ms=message.duration_ms,
            outcomes=tuple(OutcomeRecord.from_proto(item) for item in message.outcomes),
        )


@dataclass(frozen=True, kw_only=True)
class DecisionPage(_Model):
    """One page of :meth:`FairpathClient.list_decisions`; ``next_page_token`` is "" on the last page."""

    records: tuple[DecisionRecord, ...]
    next_page_token: str


@dataclass(frozen=True, kw_only=True)
class ChainReport(_Model):
    """The result of checking the trail's hash chain.

    Attributes:
        intact: True when every record links to the one before and matches its hash.
        records_checked: Records walked.
        first_broken_sequence: The first record that does not check out (0 when intact); for a
            checkpoint the trail no longer contains, the checkpoint's sequence.
        problem: What is wrong with it ("" when intact).
        checkpoints_verified: Signed checkpoints the trail was shown to contain and extend.

    """

    intact: bool
    records_checked: int
    first_broken_sequence: int
    problem: str
    checkpoints_verified: int = 0

    @classmethod
    def from_proto(cls, message: decision_service_pb2.VerifyChainResponse) -> ChainReport:
        """Build from a ``fairpath.v1.VerifyChainResponse`` message."""
        return cls(
            intact=message.intact,
            records_checked=message.records_checked,
            first_broken_sequence=message.first_broken_sequence,
            problem=message.problem,
            checkpoints_verified=message.checkpoints_verified,
        )


@dataclass(frozen=True, kw_only=True)
class SignedCheckpoint(_Model):
    """The chain head at one moment, signed by the service's checkpoint key.

    Attributes:
        line: The checkpoint as one line of JSON: store it exactly as it is, away from the
            service's database, and hand it back to :meth:`FairpathClient.verify_chain`.
        sequence: The last record it covers.
        head_hash: That record's hash.
        signed_at: When the service signed it.
        key_id: Which key signed it.

    """

    line: str
    sequence: int
    head_hash: str
    signed_at: datetime
    key_id: str

    @classmethod
    def from_proto(cls, message: decision_service_pb2.CreateCheckpointResponse) -> SignedCheckpoint:
        """Build from a ``fairpath.v1.CreateCheckpointResponse`` message."""
        return cls(
            line=message.checkpoint,
            sequence=message.sequence,
            head_hash=message.head_hash,
            signed_at=message.signed_at.ToDatetime(tzinfo=UTC),
            key_id=message.key_id,
        )


def _timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    if moment.tzinfo is None:
        msg = f"filter times must be timezone-aware, got {moment.isoformat()}"
        raise ValueError(msg)
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp
