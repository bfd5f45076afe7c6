"""The values of the decision audit trail: what is appended, what is read back, how it is filtered.

Plain frozen values, no SQL and no protobuf. A decision is appended as a
:class:`NewDecision` (already masked by :mod:`fairpath.serving.masking`) and read
back as a :class:`StoredDecision`; what people finally did is appended as a
:class:`NewOutcome` and read back as an :class:`OutcomeRecord`. Both kinds of
record share one hash chain (:mod:`fairpath.audit.chain`), so each carries its
``sequence``, ``hash`` and ``previous_hash``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from fairpath.decisions import Decision, Status
from fairpath.wire import DecisionWire

#: A fact value as recorded: what the request carried (JSON-like), or ``"***"`` when masked.
FactValue = object


@dataclass(frozen=True)
class DecisionFilter:
    """Which recorded decisions a query selects; every criterion given must hold (AND).

    Attributes:
        from_time: Evaluated at or after this instant (aware datetime); None for no bound.
        to_time: Evaluated strictly before this instant; None for no bound.
        policy: Policy name, exactly.
        version: Policy version, exactly.
        status: Decision status.
        pathway: Pathway code, exactly.
        rule_fired: A rule id whose result was FIRED (question, advice or check rule).
        incident_ref: Subject reference, exactly.
        staff_ref: Subject reference, exactly.
        action_ref: Subject reference, exactly.

    """

    from_time: datetime | None = None
    to_time: datetime | None = None
    policy: str = ""
    version: str = ""
    status: Status | None = None
    pathway: str = ""
    rule_fired: str = ""
    incident_ref: str = ""
    staff_ref: str = ""
    action_ref: str = ""


@dataclass(frozen=True)
class NewDecision:
    """One decision to append, already masked.

    Attributes:
        decision: The decision as recorded (sensitive values in its trace masked).
        facts: The request's facts, sensitive ones replaced by :data:`fairpath.serving.masking.MASK`.
        masked_facts: Names of the facts that were masked, sorted.
        duration_us: How long evaluating took, in microseconds.
        equality_group: The subject's pseudonymous equality-monitoring group; stored in its own
            table, never with the facts.
        sensitive_facts: The true values of the masked facts; stored in their own table, never
            returned by the review API, kept so that replay can re-evaluate.
        requested_version: The policy version the request asked for ("" for the current one):
            part of what makes a repeated request id the same request (:mod:`fairpath.audit.requests`).
        incident_digest: For one action of an ``EvaluateIncident`` call, the digest of the whole
            incident request (:func:`fairpath.audit.requests.incident_digest`), so that a repeated
            incident request id is the same request only when every action is; "" otherwise.
        wire: The deciding version's encoder, so the record is made of the bytes the reply is made
            of (:mod:`fairpath.wire`); the store's own when None.

    """

    decision: Decision
    facts: Mapping[str, FactValue]
    masked_facts: tuple[str, ...]
    duration_us: int
    equality_group: str = ""
    sensitive_facts: Mapping[str, FactValue] = field(default_factory=dict)
    requested_version: str = ""
    incident_digest: str = ""
    wire: DecisionWire | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class NewOutcome:
    """What people finally did after a recommendation, to append as its own record."""

    decision_id: str
    action_taken: str
    reviewer: str
    reason: str = ""


@dataclass(frozen=True)
class OutcomeRecord:
    """An appended outcome.

    Attributes:
        departs_from_recommendation: True when ``action_taken`` differs from the recommended
            pathway code; False when the decision recommended no pathway (NEEDS_INFORMATION):
            there was nothing to depart from.

    """

    sequence: int
    decision_id: str
    action_taken: str
    reviewer: str
    reason: str
    recorded_at: datetime
    departs_from_recommendation: bool
    hash: str
    previous_hash: str


@dataclass(frozen=True)
class StoredDecision:
    """A recorded decision as read back, with the outcomes appended for it so far."""

    sequence: int
    decision: Decision
    facts: Mapping[str, FactValue]
    masked_facts: tuple[str, ...]
    duration_ms: float
    hash: str
    previous_hash: str
    outcomes: tuple[OutcomeRecord, ...] = ()


@dataclass(frozen=True)
class DecisionSummary:
    """The indexed columns of one decision plus its facts, without decoding the trace (for statistics).

    Attributes:
        individual_directed: Whether the recommended pathway is directed at the individual.
        equality_group: The subject's equality-monitoring group ("" when none was given).

    """

    sequence: int
    decision_id: str
    evaluated_at: datetime
    policy: str
    version: str
    status: Status
    pathway: str
    individual_directed: bool
    facts: Mapping[str, FactValue]
    equality_group: str


@dataclass(frozen=True)
class ChainReport:
    """The result of walking the hash chain.

    Attributes:
        intact: True when every link checked out.
        records_checked: Records walked (up to and including the first broken one).
        first_broken_sequence: Sequence of the first record that does not check out; 0 when intact.
        problem: What is wrong with it, in words; "" when intact.

    """

    intact: bool
    records_checked: int
    first_broken_sequence: int = 0
    problem: str = ""
