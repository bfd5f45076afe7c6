"""One incident, several actions: the request, the merged facts, and the incident-level advice.

The guide considers one action (or failure to act) at a time (note N7), so an
incident is evaluated action by action, each exactly as ``Evaluate`` would on
the incident's shared facts overridden by the action's own
(:func:`merged_facts`). What the guide adds about the incident as a whole is
note N10: individual territory is a single person, not a cohort. So when the
decisions point at several people, :func:`incident_advice` says so and
recommends that the response look at the system first. It is worked out from
the decisions durable_rules made, never instead of them, with two small tests
that read what the policy itself declares:

* ``COHORT_INDIVIDUAL_DIRECTED`` -- two or more actions reached pathways the
  policy flags ``individual_directed``;
* ``COHORT_SUBSTITUTION`` -- actions of two or more people reached the
  substitution test (a question rule reading :data:`SUBSTITUTION_FACT`) and
  answered YES: peers would have acted the same.

Nothing here logs facts: they are clinical and HR data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fairpath.decisions import Decision, RuleKind, RuleResult, Subject
from fairpath.errors import FieldViolation, InvalidFactsError, InvalidRequestError

#: The substitution test's fact (domain §2.3, question 4a; Reason's R5): "would peers act the same?".
SUBSTITUTION_FACT = "peers_would_act_same"
#: The answer that passes it.
YES = "YES"

#: Fewest actions (or people) that make a cohort rather than a single person (note N10).
COHORT = 2

#: Between an incident's request id and an action's index in the request id that action's decision records.
ACTION_ID_SEPARATOR = "#"

#: The code of the cohort signal (both of its rules).
COHORT_SIGNAL = "SYSTEM_FIRST_COHORT_SIGNAL"
COHORT_INDIVIDUAL_DIRECTED = "COHORT_INDIVIDUAL_DIRECTED"
COHORT_SUBSTITUTION = "COHORT_SUBSTITUTION"
COHORT_TEXT = (
    "A pattern across this incident, not one person's action alone: individual territory is when a "
    "single person may need support or intervention, not a cohort. Look at the system first (the team, "
    "the process, the conditions behind more than one action) before any response directed at an "
    "individual; action singling out any one person is unlikely to be appropriate until that is done."
)


@dataclass(frozen=True)
class IncidentAction:
    """One action of the incident as requested.

    Attributes:
        staff_ref: Pseudonymous reference of the staff member (required: the advice counts people).
        action_ref: Pseudonymous reference of the action.
        facts: This action's own facts, each overriding a shared fact of the same name.
        equality_group: Pseudonymous equality-monitoring group, stored apart, never evaluated.

    """

    staff_ref: str
    action_ref: str = ""
    facts: Mapping[str, object] | None = None
    equality_group: str = ""

    def subject(self, incident_ref: str) -> Subject:
        """Return the subject of this action's decision."""
        return Subject(incident_ref, self.staff_ref, self.action_ref)


@dataclass(frozen=True)
class IncidentAdvice:
    """Advice about the incident as a whole.

    Attributes:
        code: What is advised (:data:`COHORT_SIGNAL`).
        text: The advice in words.
        rule_id: The test that produced it.
        reason: Why, in words: which actions, which pathways or answers.
        action_indexes: The actions (indexes into the request's) that led to it.

    """

    code: str
    text: str
    rule_id: str
    reason: str
    action_indexes: tuple[int, ...]


@dataclass(frozen=True)
class IncidentResult:
    """One decision per action, in the request's order, and the advice about the incident."""

    incident_ref: str
    decisions: tuple[Decision, ...]
    advice: tuple[IncidentAdvice, ...]
    request_id: str = ""
    dry_run: bool = False


def check_request(incident_ref: str, actions: Sequence[IncidentAction], action_incident_refs: Sequence[str]) -> None:
    """Refuse an incident request missing what the incident's decisions and advice need.

    Args:
        incident_ref: The request's incident reference.
        actions: The request's actions.
        action_incident_refs: Each action's own ``subject.incident_ref`` as sent ("" when not given).

    Raises:
        InvalidRequestError: No incident reference, no action, an action without a staff reference,
            or an action naming another incident.

    """
    violations: list[FieldViolation] = []
    if not incident_ref:
        violations.append(FieldViolation("incident_ref", "required: it links the incident's decisions"))
    if not actions:
        violations.append(FieldViolation("actions", "at least one action is required"))
    for index, (action, own_ref) in enumerate(zip(actions, action_incident_refs, strict=True)):
        if not action.staff_ref:
            violations.append(
                FieldViolation(f"actions[{index}].subject.staff_ref", "required: the incident's advice counts people")
            )
        if own_ref and own_ref != incident_ref:
            violations.append(
                FieldViolation(f"actions[{index}].subject.incident_ref", "must be empty or the request's incident_ref")
            )
    if violations:
        raise InvalidRequestError(violations)


def merged_facts(shared: Mapping[str, object], own: Mapping[str, object] | None) -> dict[str, object]:
    """Return the facts one action is evaluated on: the shared facts, each overridden by the action's own."""
    return {**shared, **(own or {})}


def action_request_id(request_id: str, index: int) -> str:
    """Return the request id recorded with action ``index``'s decision ("" without a request id).

    Ids are unique per caller in the trail, so each decision gets its own, derived from the incident's:
    ``<request id>#<index>``. The index follows the last ``#``, so two incidents never derive the same id;
    an ``Evaluate`` id may not contain ``#`` (:data:`ACTION_ID_SEPARATOR`, refused by
    :mod:`fairpath.api.field_limits`), so none can be an action's; and an incident's id is at most
    ``INCIDENT_REQUEST_ID`` characters there, so the derived one fits the request-id maximum.
    """
    return f"{request_id}{ACTION_ID_SEPARATOR}{index}" if request_id else ""


def action_violations(index: int, own: Mapping[str, object] | None, error: InvalidFactsError) -> list[FieldViolation]:
    """Re-address ``error``'s violations for action ``index``: its own facts, or the shared ones.

    The evaluator names a fact ``facts.NAME``; a fact the action sent becomes ``actions[i].facts.NAME``,
    one only shared stays ``facts.NAME`` (so a bad shared fact is named once, not once per action).
    """
    found = []
    for violation in error.violations:
        name = violation.field.removeprefix("facts.")
        from_action = violation.field == "facts" or (own is not None and name in own)
        field = f"actions[{index}].{violation.field}" if from_action else violation.field
        found.append(FieldViolation(field, violation.description))
    return found


def incident_advice(
    decisions: Sequence[Decision], facts: Sequence[Mapping[str, object]]
) -> tuple[IncidentAdvice, ...]:
    """Return the advice about the incident whose actions got ``decisions`` on ``facts`` (same order).

    Only what the decisions record is read: each pathway's ``individual_directed`` flag (the policy's),
    and whether the walk reached a question reading :data:`SUBSTITUTION_FACT`; the answer comes from the
    facts the action was evaluated on (a recorded trace may mask it).
    """
    advice = []
    directed = {i: d.pathway.code for i, d in enumerate(decisions) if d.pathway and d.pathway.individual_directed}
    if len(directed) >= COHORT:
        pathways = ", ".join(f"actions[{i}] {code}" for i, code in directed.items())
        advice.append(
            IncidentAdvice(
                COHORT_SIGNAL, COHORT_TEXT, COHORT_INDIVIDUAL_DIRECTED,
                f"{len(directed)} actions reached individual-directed pathways ({pathways})", tuple(directed),
            )
        )
    substituted = [i for i, d in enumerate(decisions) if _passes_substitution(d, facts[i])]
    people = {decisions[i].subject.staff_ref for i in substituted}
    if len(people) >= COHORT:
        advice.append(
            IncidentAdvice(
                COHORT_SIGNAL, COHORT_TEXT, COHORT_SUBSTITUTION,
                f"actions of {len(people)} people passed the substitution test ({SUBSTITUTION_FACT} is YES: "
                f"peers would have acted the same): "
                + ", ".join(f"actions[{i}]" for i in substituted),
                tuple(substituted),
            )
        )
    return tuple(advice)


def _passes_substitution(decision: Decision, facts: Mapping[str, object]) -> bool:
    """Whether the walk reached the substitution question and its answer was YES."""
    if facts.get(SUBSTITUTION_FACT) != YES:
        return False
    return any(
        entry.kind is RuleKind.QUESTION
        and entry.result in (RuleResult.FIRED, RuleResult.NOT_FIRED)
        and SUBSTITUTION_FACT in entry.facts_seen
        for entry in decision.trace
    )
