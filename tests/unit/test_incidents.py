"""The incident module's pure parts: merging facts, addressing violations by action, checking the request."""

from __future__ import annotations

import pytest
from fairpath.errors import FieldViolation, InvalidFactsError, InvalidRequestError
from fairpath.serving.incidents import IncidentAction, action_request_id, action_violations, check_request, merged_facts


def test_an_actions_own_facts_override_the_shared_ones() -> None:
    """Shared facts hold for every action unless the action gives its own value (None included: unanswered)."""
    shared = {"harm_severity": "LOW", "knowingly_departed": "YES"}

    assert merged_facts(shared, {"knowingly_departed": None}) == {"harm_severity": "LOW", "knowingly_departed": None}
    assert merged_facts(shared, None) == shared


def test_violations_name_the_action_for_its_own_facts_and_the_shared_field_otherwise() -> None:
    """An action's fact -> actions[i].facts.X; a shared fact stays facts.X; too many facts -> actions[i].facts."""
    error = InvalidFactsError([
        FieldViolation("facts.intent_to_harm", "bad"), FieldViolation("facts.harm_severity", "bad"),
        FieldViolation("facts", "too many"),
    ])

    found = action_violations(2, {"intent_to_harm": "MAYBE"}, error)

    assert [v.field for v in found] == ["actions[2].facts.intent_to_harm", "facts.harm_severity", "actions[2].facts"]


def test_request_ids_are_derived_per_action_only_when_given() -> None:
    """Each action's decision gets the incident's id and its index; no id stays no id."""
    assert [action_request_id("r-9", i) for i in range(2)] == ["r-9#0", "r-9#1"]
    assert action_request_id("", 3) == ""


def test_a_request_without_references_or_naming_another_incident_is_refused_per_field() -> None:
    """Every problem is reported at once, each under the field that has it."""
    with pytest.raises(InvalidRequestError) as refused:
        check_request("", [IncidentAction(staff_ref=""), IncidentAction(staff_ref="S-2")], ["", "INC-OTHER"])

    assert [v.field for v in refused.value.violations] == [
        "incident_ref", "actions[0].subject.staff_ref", "actions[1].subject.incident_ref",
    ]
