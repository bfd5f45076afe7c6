"""What ``EvaluateIncident`` takes and returns: an incident's actions, their decisions, the incident's advice."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fairpath.v1 import evaluation_service_pb2

from fairpath_client._models import Decision, _Model


@dataclass(frozen=True, kw_only=True)
class IncidentAction(_Model):
    """One action (or omission) of one staff member in the incident, to evaluate.

    Attributes:
        staff_ref: Pseudonymous staff reference (required: the incident's advice counts people).
        action_ref: Pseudonymous action reference.
        facts: This action's own facts; each overrides a shared fact of the same name.
        equality_group: Pseudonymous equality-monitoring group, stored apart, never evaluated.

    """

    staff_ref: str
    action_ref: str = ""
    facts: Mapping[str, Any] = field(default_factory=dict)
    equality_group: str = ""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> IncidentAction:
        """Build from a mapping with the same keys (an actions file's entry).

        Raises:
            TypeError: An unknown key, or a missing ``staff_ref``.

        """
        return cls(**data)


@dataclass(frozen=True, kw_only=True)
class IncidentAdvice(_Model):
    """Advice about the incident as a whole, worked out from its decisions.

    Attributes:
        code: What is advised, e.g. ``"SYSTEM_FIRST_COHORT_SIGNAL"``.
        text: The advice in words.
        rule_id: The test that produced it (``COHORT_INDIVIDUAL_DIRECTED``, ``COHORT_SUBSTITUTION``).
        reason: Why, in words: which actions, which pathways or answers.
        action_indexes: The actions (indexes into the request's) that led to it.

    """

    code: str
    text: str
    rule_id: str
    reason: str
    action_indexes: tuple[int, ...]

    @classmethod
    def from_proto(cls, message: evaluation_service_pb2.IncidentAdvice) -> IncidentAdvice:
        """Build from a ``fairpath.v1.IncidentAdvice`` message."""
        return cls(
            code=message.code, text=message.text, rule_id=message.rule_id, reason=message.reason,
            action_indexes=tuple(message.action_indexes),
        )


@dataclass(frozen=True, kw_only=True)
class IncidentResult(_Model):
    """The service's answer for one incident.

    Attributes:
        incident_ref: The incident's pseudonymous reference.
        decisions: One per action, in the request's order; each exactly what ``evaluate`` would return.
        advice: Advice about the incident as a whole (empty when none applies).
        request_id: The correlation id of the request (action ``i``'s decision records ``<id>#<i>``).
        dry_run: True when nothing was recorded, as asked.

    """

    incident_ref: str
    decisions: tuple[Decision, ...]
    advice: tuple[IncidentAdvice, ...]
    request_id: str
    dry_run: bool = False

    @classmethod
    def from_proto(cls, message: evaluation_service_pb2.EvaluateIncidentResponse) -> IncidentResult:
        """Build from a ``fairpath.v1.EvaluateIncidentResponse`` message."""
        return cls(
            incident_ref=message.incident_ref,
            decisions=tuple(Decision.from_proto(item) for item in message.decisions),
            advice=tuple(IncidentAdvice.from_proto(item) for item in message.advice),
            request_id=message.request_id,
            dry_run=message.dry_run,
        )
