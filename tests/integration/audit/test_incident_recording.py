"""An incident's decisions are recorded all or none, on SQLite and on PostgreSQL.

Through a real server and client (``served``), and at the store for a group batched with other requests'
decisions. A database trigger fails the insert of one action's record midway through the transaction,
after the actions before it were inserted: nothing of the incident may remain.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from fairpath.audit import DecisionFilter, DecisionStore, NewDecision
from fairpath.decisions import Subject
from fairpath.errors import RequestIdReusedError
from fairpath.serving.evaluator import Evaluator
from fairpath_client import FairpathClient, FairpathClientError, IncidentAction

from tests.integration.audit.conftest import GUIDE, INCOMPLETE, SUBSTANCE, Raw

#: Shared facts that walk to the guide's question 3c; an action's knowingly_departed finishes it.
SHARED = {
    "is_patient_safety_incident": "YES", "individual_concern_raised": "YES", "safeguarding_concern": "NO",
    "intent_to_harm": "NO", "substance_abuse_indicated": "NO", "physical_ill_health_indicated": "NO",
    "mental_ill_health_indicated": "NO", "protocols_in_place": "YES", "protocols_workable_in_routine_use": "YES",
    "peers_would_act_same": "NO", "missed_training": "NO", "inadequate_supervision": "NO",
    "significant_mitigation": "NO", "professional_group": "REGISTERED_NURSE",
}
FAIL_HERE = "FAIL-HERE"


def _actions(last_action_ref: str) -> list[IncidentAction]:
    return [
        IncidentAction(staff_ref="S-1", action_ref="A-1", facts={"knowingly_departed": "YES"}),
        IncidentAction(staff_ref="S-2", action_ref="A-2", facts={"knowingly_departed": "NO"}),
        IncidentAction(staff_ref="S-3", action_ref=last_action_ref, facts={"substance_abuse_indicated": "YES"}),
    ]


def _fail_inserting(raw: Raw, store_url: str, action_ref: str) -> None:
    """Make the database refuse to insert a decision for ``action_ref``, as a failing disk or constraint would."""
    if store_url.startswith("sqlite"):
        raw(
            "CREATE TRIGGER fail_here BEFORE INSERT ON decisions"
            f" WHEN NEW.action_ref = '{action_ref}' BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
            (),
        )
    else:
        raw(
            "CREATE FUNCTION fail_here() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" IF NEW.action_ref = '{action_ref}' THEN RAISE EXCEPTION 'injected failure'; END IF;"
            " RETURN NEW; END $$",
            (),
        )
        raw("CREATE TRIGGER fail_here BEFORE INSERT ON decisions FOR EACH ROW EXECUTE FUNCTION fail_here()", ())


def test_an_incident_is_recorded_whole_as_consecutive_links_of_the_chain(
    target: str, store: DecisionStore
) -> None:
    """Three actions -> three records, in action order, one after another in the chain, which verifies."""
    with FairpathClient(target, timeout=10) as client:
        result = client.evaluate_incident(GUIDE, "INC-WHOLE", SHARED, _actions("A-3"), request_id="whole")

    recorded = store.list_decisions(DecisionFilter(incident_ref="INC-WHOLE"), limit=10)
    assert [r.decision.decision_id for r in recorded] == [d.decision_id for d in result.decisions]
    assert [r.sequence for r in recorded] == [1, 2, 3]
    assert [r.decision.request_id for r in recorded] == ["whole#0", "whole#1", "whole#2"]
    assert store.verify_chain().intact


def test_a_failure_midway_through_the_transaction_records_nothing_of_the_incident(
    target: str, store: DecisionStore, raw: Raw, store_url: str
) -> None:
    """The third action's insert fails after two were written: the call fails, no record remains, the store goes on."""
    with FairpathClient(target, timeout=10) as client:
        client.evaluate(GUIDE, INCOMPLETE, subject={"incident_ref": "INC-BEFORE"})
        head = store.chain_head()
        _fail_inserting(raw, store_url, FAIL_HERE)

        with pytest.raises(FairpathClientError):
            client.evaluate_incident(GUIDE, "INC-MIDWAY", SHARED, _actions(FAIL_HERE), request_id="midway")

        assert raw("SELECT COUNT(*) FROM decisions WHERE incident_ref = ?", ["INC-MIDWAY"]) == [(0,)]
        assert raw("SELECT COUNT(*) FROM decision_sensitive_facts", []) == [(0,)]
        assert store.chain_head() == head
        # The same request id is free: nothing was recorded under it; and the store still records.
        result = client.evaluate_incident(GUIDE, "INC-MIDWAY", SHARED, _actions("A-3"), request_id="midway")
    assert len(result.decisions) == 3
    assert [r.sequence for r in store.list_decisions(DecisionFilter(), limit=10)] == [1, 2, 3, 4]
    assert store.verify_chain().intact


def test_an_incident_batched_with_other_requests_is_refused_whole_and_alone(
    store: DecisionStore, evaluator: Evaluator
) -> None:
    """One transaction, three groups: the incident's second action reuses a request id, so none of it is recorded.

    The single decisions before and after it in the same transaction are recorded.
    """
    earlier = evaluator.evaluate(GUIDE, INCOMPLETE, request_id="inc#1")
    store.append_decisions([NewDecision(earlier, INCOMPLETE, (), 1)])

    def item(facts: Mapping[str, object], request_id: str, staff_ref: str) -> NewDecision:
        decision = evaluator.evaluate(GUIDE, facts, request_id=request_id, subject=Subject("INC-G", staff_ref, ""))
        return NewDecision(decision, facts, (), 1)

    before = item(SUBSTANCE, "before", "S-0")
    incident = [item(SUBSTANCE, "inc#0", "S-1"), item(SUBSTANCE, "inc#1", "S-2"), item(INCOMPLETE, "inc#2", "S-3")]
    after = item(INCOMPLETE, "after", "S-4")

    results = store.append_groups([[before], incident, [after]])

    assert isinstance(results[1], RequestIdReusedError)
    assert not isinstance(results[0], Exception)
    assert not isinstance(results[2], Exception)
    recorded = store.list_decisions(DecisionFilter(), limit=10)
    assert [r.decision.request_id for r in recorded] == ["inc#1", "before", "after"]
    assert [r.sequence for r in recorded] == [1, 2, 3]
    assert store.verify_chain().intact


def test_a_group_only_part_of_which_was_recorded_before_is_refused(store: DecisionStore, evaluator: Evaluator) -> None:
    """A repeat is a repeat of every item: a group repeating one recorded request and adding another is refused."""
    first = NewDecision(evaluator.evaluate(GUIDE, INCOMPLETE, request_id="part#0"), INCOMPLETE, (), 1)
    store.append_decisions([first])
    new = NewDecision(evaluator.evaluate(GUIDE, SUBSTANCE, request_id="part#1"), SUBSTANCE, (), 1)

    (result,) = store.append_groups([[first, new]])

    assert isinstance(result, RequestIdReusedError)
    assert len(store.list_decisions(DecisionFilter(), limit=10)) == 1


def test_a_refused_group_leaves_no_trace_entries_believed_stored(store: DecisionStore, evaluator: Evaluator) -> None:
    """Entries first seen in a refused group were never written: a later decision using them still writes them."""
    store.append_decisions([NewDecision(evaluator.evaluate(GUIDE, INCOMPLETE, request_id="e#1"), INCOMPLETE, (), 1)])
    refused = [
        NewDecision(evaluator.evaluate(GUIDE, SUBSTANCE, request_id="e#0"), SUBSTANCE, (), 1),
        NewDecision(evaluator.evaluate(GUIDE, SUBSTANCE, request_id="e#1"), SUBSTANCE, (), 1),  # reused id
    ]
    assert isinstance(store.append_groups([refused])[0], RequestIdReusedError)

    later = evaluator.evaluate(GUIDE, SUBSTANCE, request_id="later")
    store.append_decisions([NewDecision(later, SUBSTANCE, (), 1)])

    assert store.get_decision(later.decision_id).decision.trace == later.trace
    assert store.verify_chain().intact
