"""The domain result of one evaluation: a decision with its full trace.

Built by :class:`fairpath.serving.evaluator.Evaluator` from what durable_rules reported;
translated to protobuf by :mod:`fairpath.api.convert`. Plain frozen values.
"""

from __future__ import annotations

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

    @property
    def fired(self) -> tuple[str, ...]:
        """Ids of the rules that fired, in evaluation order."""
        return tuple(entry.rule_id for entry in self.trace if entry.result is RuleResult.FIRED)
