"""The domain result of one evaluation: a decision with its full trace.

Built by :class:`fairpath.serving.evaluator.Evaluator` from what durable_rules reported;
translated to protobuf by :mod:`fairpath.api.decision_convert`. Plain frozen values.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from fairpath.policy.conditions import Value


class Status(enum.Enum):
    """Whether the walk reached a pathway."""

    DECIDED = "DECIDED"
    NEEDS_INFORMATION = "NEEDS_INFORMATION"


class RuleResult(enum.Enum):
    """What happened to one rule."""

    FIRED = "FIRED"
    NOT_FIRED = "NOT_FIRED"
    NOT_REACHED = "NOT_REACHED"
    UNANSWERED = "UNANSWERED"


class RuleKind(enum.Enum):
    """Which part of the policy a rule belongs to."""

    QUESTION = "QUESTION"
    ADVICE = "ADVICE"
    CHECK = "CHECK"


@dataclass(frozen=True)
class Subject:
    """Pseudonymous ids of the incident, staff member and action evaluated."""

    incident_ref: str = ""
    staff_ref: str = ""
    action_ref: str = ""


@dataclass(frozen=True)
class PolicyRef:
    """The exact policy file that answered."""

    name: str
    version: str
    digest: str


@dataclass(frozen=True)
class PathwayResult:
    """The recommended pathway, with the branch that led to it."""

    code: str
    title: str
    recommendation: str
    individual_directed: bool
    sub_reason: str = ""
    category: str = ""


@dataclass(frozen=True)
class MissingFact:
    """An unanswered fact the walk needs, and the question that asks for it."""

    fact: str
    question: str
    rule_id: str


@dataclass(frozen=True)
class AdviceItem:
    """One advice overlay on the result."""

    code: str
    text: str
    rule_id: str


@dataclass(frozen=True)
class Warning:
    """A contradictory-looking combination of answers (evaluation goes on)."""

    code: str
    text: str
    facts: tuple[str, ...]


@dataclass(frozen=True)
class TraceEntry:
    """One rule of the policy and what happened to it."""

    rule_id: str
    title: str
    kind: RuleKind
    condition: str
    facts_seen: Mapping[str, Value]
    result: RuleResult
    reason: str
    question: str = ""
    leads_to: str = ""


@dataclass(frozen=True)
class Decision:
    """A recommendation with everything needed to explain it."""

    decision_id: str
    policy: PolicyRef
    status: Status
    pathway: PathwayResult | None
    missing_facts: tuple[MissingFact, ...]
    advice: tuple[AdviceItem, ...]
    trace: tuple[TraceEntry, ...]
    warnings: tuple[Warning, ...]
    evaluated_at: datetime
    engine_name: str
    engine_version: str
    subject: Subject = field(default_factory=Subject)
    request_id: str = ""
    # Who asked (empty without authentication) and whether the decision was deliberately not recorded.
    caller: str = ""
    dry_run: bool = False
    # Chained policies: the decisions this one took facts from, and (for a required decision) the
    # decision that required it.
    requires: tuple[RequiredDecision, ...] = ()
    required_by: str = ""

    @property
    def fired(self) -> tuple[str, ...]:
        """Ids of the rules that fired, in evaluation order."""
        return tuple(entry.rule_id for entry in self.trace if entry.result is RuleResult.FIRED)


@dataclass(frozen=True)
class RequiredDecision:
    """A decision a chained policy took facts from (``requires:`` in its file).

    Attributes:
        policy: The required policy's name, as the file names it.
        version: The version the file requires: ``current`` or a pinned one.
        facts: ``(fact, what of the decision)`` pairs: which facts were taken from it.
        decision_id: The required decision's id.
        decision: The required decision in full when at hand (the reply to an evaluation); None in a
            decision read back from the trail, where it is its own record (look it up by id).

    """

    policy: str
    version: str
    facts: tuple[tuple[str, str], ...]
    decision_id: str
    decision: Decision | None = None


def chain_of(decision: Decision) -> list[Decision]:
    """``decision`` and every decision it required, transitively: required ones first, as they are recorded."""
    found: list[Decision] = []
    for link in decision.requires:
        if link.decision is not None:
            found += chain_of(link.decision)
    return [*found, decision]


def nest(decisions: list[Decision]) -> list[Decision]:
    """Put each required decision of ``decisions`` back inside the decision that required it.

    The inverse of :func:`chain_of` over recorded decisions (read back, a required decision is its
    own record, linked by id): returns the decisions no other one in the list required, in order,
    each with its ``requires`` filled in from the list where the linked record is in it.
    """
    by_id = {decision.decision_id: decision for decision in decisions}

    def filled(decision: Decision) -> Decision:
        if not decision.requires:
            return decision
        links = tuple(
            dataclasses.replace(link, decision=filled(by_id[link.decision_id]))
            if link.decision_id in by_id else link
            for link in decision.requires
        )
        return dataclasses.replace(decision, requires=links)

    return [filled(decision) for decision in decisions if decision.required_by not in by_id]


def stamped(decision: Decision, **changes: object) -> Decision:
    """``decision`` with ``changes`` (e.g. ``caller``, ``dry_run``) made to it and to every decision it required."""
    links = tuple(
        dataclasses.replace(link, decision=stamped(link.decision, **changes)) if link.decision is not None else link
        for link in decision.requires
    )
    return dataclasses.replace(decision, requires=links, **changes)  # type: ignore[arg-type]
