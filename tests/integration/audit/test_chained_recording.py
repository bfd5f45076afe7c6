"""Chained policies through a real server and client, recorded on SQLite and on PostgreSQL.

``pre-formal-check`` 2.0.0 requires the current ``nhs-just-culture-guide``: one Evaluate evaluates the
guide first on the same facts, feeds its pathway in, and returns both walks; both decisions are recorded
in one transaction, each naming the other, and the hash chain covers the links.
"""

from __future__ import annotations

import pytest
from fairpath.audit import DecisionFilter, DecisionStore
from fairpath.v1.decision_pb2 import Decision
from fairpath_client import (
    FairpathClient,
    FairpathClientError,
    IncidentAction,
    InvalidFactsError,
    InvalidRequestError,
    render_decision,
    render_record,
)

from tests.integration.audit.conftest import GUIDE, Raw, drop_append_only_triggers

PFC = "pre-formal-check"
VERSION = "2.0.0"  # pinned: which pre-formal-check version is current depends on the date
#: The guide's answers reaching pathway B (substance abuse), with pre-formal-check's own exclusion answer.
FACTS = {
    "is_patient_safety_incident": "YES", "safeguarding_concern": "NO", "individual_concern_raised": "YES",
    "intent_to_harm": "NO", "substance_abuse_indicated": "YES", "professional_group": "REGISTERED_NURSE",
    "exclusion_under_consideration": "NO", "investigation_stage": "IN_PROGRESS",
}
SUBJECT = {"incident_ref": "INC-CHAIN", "staff_ref": "S-1", "action_ref": "A-1"}


def test_a_chained_evaluation_returns_both_walks_and_records_both_decisions_linked(
    target: str, store: DecisionStore
) -> None:
    """The reply nests the guide's decision, walk and all; the trail holds both, linked both ways, and verifies."""
    with FairpathClient(target, timeout=10) as client:
        decision = client.evaluate(PFC, FACTS, version=VERSION, subject=SUBJECT, request_id="chain-1")
        (required,) = decision.required
        guide = required.decision
        assert guide is not None
        assert decision.pathway is not None
        assert decision.pathway.code == "TRIAGE_HEALTH_AND_WELLBEING_PATHWAY"
        assert (required.policy, required.version, required.facts) == (
            GUIDE, "current", {"just_culture_guide_pathway": "pathway"})
        assert guide.policy.name == GUIDE
        assert guide.pathway is not None
        assert guide.pathway.code == "JCG_B_SUBSTANCE_ABUSE"
        assert [e.rule_id for e in guide.trace if e.result == "FIRED" and e.kind == "QUESTION"] == ["G1", "G2", "2a"]
        assert [e.rule_id for e in decision.trace if e.result == "FIRED" and e.kind == "QUESTION"] == ["P0", "P2"]
        assert (required.decision_id, guide.required_by) == (guide.decision_id, decision.decision_id)
        assert (guide.request_id, decision.request_id) == ("chain-1>nhs-just-culture-guide", "chain-1")

        # Read back: each record names the other; the required decision is its own record.
        top = client.get_decision(decision.decision_id)
        below = client.get_decision(guide.decision_id)
    assert [link.decision_id for link in top.decision.required] == [guide.decision_id]
    assert top.decision.required[0].decision is None
    assert below.decision.required_by == decision.decision_id
    # The chained fact is recorded as the walk read it, masked (it is sensitive); the guide's record holds
    # only the facts the guide declares.
    assert top.facts["just_culture_guide_pathway"] == "***"
    assert "just_culture_guide_pathway" not in below.facts
    assert "intent_to_harm" not in top.facts
    recorded = store.list_decisions(DecisionFilter(incident_ref="INC-CHAIN"), limit=10)
    assert [(r.sequence, r.decision.policy.name) for r in recorded] == [(1, GUIDE), (2, PFC)]
    assert store.verify_chain().intact
    # What `fairpath evaluate` and `fairpath decisions show` print: both walks, and the links.
    head = f"Required {GUIDE}@current: decision {guide.decision_id} (took just_culture_guide_pathway = its pathway)"
    printed = render_decision(decision)
    assert head in printed
    assert "    G1  Is this a patient safety incident" in printed  # the guide's walk, indented under it
    assert f"(recorded on its own: fairpath decisions show {guide.decision_id})" in render_record(top)
    assert f"required by decision {decision.decision_id}" in render_record(below)


def test_a_repeated_chained_request_returns_both_first_decisions_and_records_nothing(
    target: str, store: DecisionStore
) -> None:
    """A retry under the same request id gets the first decisions, still nested; a changed request is refused."""
    with FairpathClient(target, timeout=10) as client:
        first = client.evaluate(PFC, FACTS, version=VERSION, request_id="chain-retry")
        again = client.evaluate(PFC, FACTS, version=VERSION, request_id="chain-retry")
        with pytest.raises(FairpathClientError, match="already used"):
            client.evaluate(PFC, {**FACTS, "substance_abuse_indicated": "NO"}, version=VERSION,
                            request_id="chain-retry")
    assert again.decision_id == first.decision_id
    assert again.required[0].decision is not None
    assert again.required[0].decision.decision_id == first.required[0].decision_id
    assert len(store.list_decisions(DecisionFilter(), limit=10)) == 2


def test_a_failure_recording_the_second_decision_records_neither(
    target: str, store: DecisionStore, raw: Raw, store_url: str
) -> None:
    """The chained decision's insert fails after the guide's was written in the same transaction: nothing remains."""
    if store_url.startswith("sqlite"):
        raw("CREATE TRIGGER fail_pfc BEFORE INSERT ON decisions WHEN NEW.policy = 'pre-formal-check'"
            " BEGIN SELECT RAISE(ABORT, 'injected failure'); END", ())
    else:
        raw("CREATE FUNCTION fail_pfc() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF NEW.policy = 'pre-formal-check' THEN RAISE EXCEPTION 'injected failure'; END IF;"
            " RETURN NEW; END $$", ())
        raw("CREATE TRIGGER fail_pfc BEFORE INSERT ON decisions FOR EACH ROW EXECUTE FUNCTION fail_pfc()", ())
    with FairpathClient(target, timeout=10) as client:
        with pytest.raises(FairpathClientError):
            client.evaluate(PFC, FACTS, version=VERSION, request_id="chain-fail")
        assert raw("SELECT COUNT(*) FROM decisions", []) == [(0,)]
        assert store.chain_head()[0] == 0
        # The guide alone still records: the store goes on, and the chain verifies.
        client.evaluate(GUIDE, FACTS, request_id="guide-after")
    assert [r.sequence for r in store.list_decisions(DecisionFilter(), limit=10)] == [1]
    assert store.verify_chain().intact


def test_an_edited_link_breaks_the_chain(target: str, store: DecisionStore, raw: Raw, store_url: str) -> None:
    """The links are in the hashed record: pointing the required decision at another breaks verify there."""
    with FairpathClient(target, timeout=10) as client:
        decision = client.evaluate(PFC, FACTS, version=VERSION)
    drop_append_only_triggers(raw, store_url)
    (record,) = raw("SELECT record FROM decisions WHERE sequence = 1", [])[0]
    parsed = Decision.FromString(bytes(record))
    assert parsed.required_by == decision.decision_id
    parsed.required_by = "00000000-0000-0000-0000-000000000000"
    raw("UPDATE decisions SET record = ? WHERE sequence = 1", [parsed.SerializeToString()])

    report = store.verify_chain()

    assert not report.intact
    assert report.first_broken_sequence == 1


def test_a_chained_fact_sent_by_the_caller_is_refused_and_nothing_is_recorded(
    target: str, store: DecisionStore
) -> None:
    """The guide's pathway is taken from the guide's decision: sending it is INVALID_ARGUMENT naming the fact."""
    with FairpathClient(target, timeout=10) as client, pytest.raises(InvalidFactsError) as raised:
        client.evaluate(PFC, {**FACTS, "just_culture_guide_pathway": "JCG_A_DELIBERATE_HARM", "intent_to_harm": "no"},
                        version=VERSION)
    fields = {v.field: v.description for v in raised.value.violations}
    assert fields["facts.just_culture_guide_pathway"] == (
        "taken from the decision of nhs-just-culture-guide@current (its pathway): do not send it")
    assert "facts.intent_to_harm" in fields  # the guide's own refusal comes in the same answer
    assert store.list_decisions(DecisionFilter(), limit=10) == []


def test_a_guide_still_needing_information_asks_its_own_question(target: str, store: DecisionStore) -> None:
    """The chained fact left unanswered stands for the guide's next question, which the caller can answer."""
    with FairpathClient(target, timeout=10) as client:
        decision = client.evaluate(PFC, {"exclusion_under_consideration": "NO"}, version=VERSION)
    assert decision.status == "NEEDS_INFORMATION"
    assert [(m.fact, m.rule_id) for m in decision.missing_facts] == [("is_patient_safety_incident", "G1")]
    assert decision.required[0].decision is not None
    assert decision.required[0].decision.status == "NEEDS_INFORMATION"
    assert len(store.list_decisions(DecisionFilter(), limit=10)) == 2


def test_the_pinned_old_version_still_takes_the_pathway_from_the_caller(target: str) -> None:
    """1.0.0 stays served for callers who pin it: it takes just_culture_guide_pathway as before and requires nothing."""
    with FairpathClient(target, timeout=10) as client:
        decision = client.evaluate(PFC, {"exclusion_under_consideration": "NO",
                                         "just_culture_guide_pathway": "JCG_B_SUBSTANCE_ABUSE"}, version="1.0.0")
    assert decision.pathway is not None
    assert decision.pathway.code == "TRIAGE_HEALTH_AND_WELLBEING_PATHWAY"
    assert decision.required == ()


def test_replay_re_evaluates_chained_decisions_against_chained_and_unchained_candidates(
    target: str, store: DecisionStore
) -> None:
    """Against 2.0.0 the request's facts are rebuilt from both records; against 1.0.0 the recorded pathway serves.

    Neither is skipped, and neither changes: 2.0.0 routes guide exit B as 1.0.0 does.
    """
    with FairpathClient(target, timeout=30) as client:
        client.evaluate(PFC, FACTS, version=VERSION)
        chained = client.replay_decisions(PFC, VERSION)
        pinned_old = client.replay_decisions(PFC, "1.0.0")
    for report in (chained, pinned_old):
        assert (report.replayed, report.skipped, report.changed) == (1, 0, 0), report.skip_reasons
        assert [(t.from_pathway, t.to_pathway) for t in report.transitions] == [
            ("TRIAGE_HEALTH_AND_WELLBEING_PATHWAY", "TRIAGE_HEALTH_AND_WELLBEING_PATHWAY")]


def test_an_incident_on_a_chained_policy_records_every_actions_chain_in_one_transaction(
    target: str, store: DecisionStore
) -> None:
    """Two actions -> four records (each guide decision before its triage), linked; a retry records nothing new."""
    shared = {k: v for k, v in FACTS.items() if k != "substance_abuse_indicated"}
    actions = [
        IncidentAction(staff_ref="S-1", facts={"substance_abuse_indicated": "YES"}),
        IncidentAction(staff_ref="S-2",
                       facts={"substance_abuse_indicated": "NO", "physical_ill_health_indicated": "YES"}),
    ]
    with FairpathClient(target, timeout=10) as client:
        result = client.evaluate_incident(PFC, "INC-CHAINED", shared, actions, version=VERSION, request_id="inc-ch")
        again = client.evaluate_incident(PFC, "INC-CHAINED", shared, actions, version=VERSION, request_id="inc-ch")
    guides = [d.required[0].decision for d in result.decisions]
    assert [g.pathway.code for g in guides if g is not None and g.pathway] == [
        "JCG_B_SUBSTANCE_ABUSE", "JCG_C_HEALTH_ISSUE"]
    recorded = store.list_decisions(DecisionFilter(incident_ref="INC-CHAINED"), limit=10)
    assert [(r.decision.request_id, r.decision.required_by or "-") for r in recorded] == [
        ("inc-ch#0>nhs-just-culture-guide", result.decisions[0].decision_id), ("inc-ch#0", "-"),
        ("inc-ch#1>nhs-just-culture-guide", result.decisions[1].decision_id), ("inc-ch#1", "-"),
    ]
    assert [d.decision_id for d in again.decisions] == [d.decision_id for d in result.decisions]
    assert again.decisions[1].required[0].decision is not None
    assert store.verify_chain().intact


def test_a_dry_run_of_a_chained_policy_records_neither_decision(target: str, store: DecisionStore) -> None:
    """dry_run evaluates the whole chain, marks both decisions as not recorded, and writes nothing."""
    with FairpathClient(target, timeout=10) as client:
        decision = client.evaluate(PFC, FACTS, version=VERSION, dry_run=True)
    guide = decision.required[0].decision
    assert guide is not None
    assert (decision.dry_run, guide.dry_run) == (True, True)
    assert store.list_decisions(DecisionFilter(), limit=10) == []


def test_get_policy_says_what_a_chained_policy_requires_and_which_fact_not_to_send(target: str) -> None:
    """GetPolicy of 2.0.0 lists its requirement and marks the chained fact; 1.0.0 requires nothing."""
    with FairpathClient(target, timeout=10) as client:
        chained = client.get_policy(PFC, VERSION)
        old = client.get_policy(PFC, "1.0.0")
    assert [(r.policy, r.version, r.facts) for r in chained.requires] == [
        (GUIDE, "current", {"just_culture_guide_pathway": "pathway"})]
    taken = {f.name: f.taken_from for f in chained.facts if f.taken_from}
    assert taken == {"just_culture_guide_pathway": "nhs-just-culture-guide@current pathway"}
    assert old.requires == ()
    assert all(not f.taken_from for f in old.facts)


def test_an_evaluate_request_id_can_never_be_a_required_decisions_id(target: str, store: DecisionStore) -> None:
    """`>` is refused in an Evaluate id: no Evaluate collides with (or replays) a required decision's derived id."""
    with FairpathClient(target, timeout=10) as client:
        decision = client.evaluate(PFC, FACTS, version=VERSION, request_id="chain-sep")
        (required,) = decision.required
        assert required.decision is not None
        derived = required.decision.request_id
        assert derived == "chain-sep>nhs-just-culture-guide"
        with pytest.raises(InvalidRequestError) as refused:
            client.evaluate(GUIDE, FACTS, request_id=derived)
    [(field, description)] = [(v.field, v.description) for v in refused.value.violations]
    assert field == "request_id"
    assert description.startswith("must not contain '>'")
    assert "chained policy" in description
    found = store.find_by_request_id(derived)
    assert found is not None
    assert found.decision.decision_id == required.decision_id  # the derived id is the required decision's only
