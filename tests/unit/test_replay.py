"""Replay of a seeded trail between guide 1.0.0 and the 1.1.0 draft, on SQLite and PostgreSQL.

The trail is seeded through the real recording path (DecisionRecorder: real
evaluation, masking, the store's side tables), so replay has to restore the
masked sensitive facts to evaluate at all. 1.1.0 differs from 1.0.0 only in
the foresight test: a "No" at 3a or 3c goes on to the substitution test (4a)
instead of ending at D.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fairpath.audit import DecisionFilter, DecisionStore, open_store
from fairpath.audit.replay import NO_PATHWAY, Replayer, ReplayReport, ReplayRequest, restore
from fairpath.decisions import Subject
from fairpath.errors import DeadlineExpiredError, InvalidRequestError, PolicyNotFoundError
from fairpath.recording import DecisionRecorder
from fairpath.serving.evaluator import Evaluator
from fairpath.serving.masking import MASK

from tests.conftest import GUIDE
from tests.support.store_urls import store_url

MARX = "marx-just-culture"
A, B, D = "JCG_A_DELIBERATE_HARM", "JCG_B_SUBSTANCE_ABUSE", "JCG_D_NOT_SINGLE_OUT_FORESIGHT"
E, F, G = "JCG_E_NOT_SINGLE_OUT_SUBSTITUTION", "JCG_F_MITIGATION", "JCG_G_MANAGEMENT_ACTION"
NI = NO_PATHWAY
QUESTION_RULES = {"G1", "G2", "G3", "1a", "2a", "2b", "2c", "3a", "3b", "3c", "4a", "4b", "4c", "5a"}

CONTEXT = {
    "investigation_stage": "IN_PROGRESS", "harm_severity": "LOW", "professional_group": "REGISTERED_NURSE",
}
TO_Q2 = {
    "is_patient_safety_incident": "YES", "individual_concern_raised": "YES", "safeguarding_concern": "NO",
    "intent_to_harm": "NO",
}
HEALTHY = {
    "substance_abuse_indicated": "NO", "physical_ill_health_indicated": "NO",
    "mental_ill_health_indicated": "NO",
}
NO_SUBSTITUTION = {"peers_would_act_same": "NO", "missed_training": "NO", "inadequate_supervision": "NO"}
PROTOCOL_3C_NO = {
    "protocols_in_place": "YES", "protocols_workable_in_routine_use": "YES", "knowingly_departed": "NO",
}
PROTOCOL_3C_YES = {**PROTOCOL_3C_NO, "knowingly_departed": "YES"}


def facts(*parts: dict[str, str]) -> dict[str, str]:
    """Merge the walk's answers with the usual context (IN_PROGRESS, LOW harm, a registered nurse)."""
    merged = dict(CONTEXT)
    for part in parts:
        merged.update(part)
    return merged


@dataclass(frozen=True)
class Case:
    """Some identical decisions to record: under 1.0.0 they reach ``before``, under 1.1.0 ``after``."""

    name: str
    facts: dict[str, str]
    count: int
    before: str
    after: str
    equality_group: str = ""


PROTOCOL_3A_NO = {"protocols_in_place": "NO"}
PROTOCOL_3B_NO = {"protocols_in_place": "YES", "protocols_workable_in_routine_use": "NO"}
PEERS_YES = {"peers_would_act_same": "YES"}
MITIGATION = {"significant_mitigation": "YES"}
NO_MITIGATION = {"significant_mitigation": "NO"}

CASES = (
    Case("3a No, peers Yes", facts(TO_Q2, HEALTHY, PROTOCOL_3A_NO, PEERS_YES), 12, D, E, "G1"),
    Case("3a No, substitution all No, no mitigation",
         facts(TO_Q2, HEALTHY, PROTOCOL_3A_NO, NO_SUBSTITUTION, NO_MITIGATION), 10, D, G, "G2"),
    Case("3b No", facts(TO_Q2, HEALTHY, PROTOCOL_3B_NO), 10, D, D, "G2"),
    Case("3c No, substitution all No, mitigation",
         facts(TO_Q2, HEALTHY, PROTOCOL_3C_NO, NO_SUBSTITUTION, MITIGATION), 1, D, F),
    Case("3c No, substitution all No, no mitigation",
         facts(TO_Q2, HEALTHY, PROTOCOL_3C_NO, NO_SUBSTITUTION, NO_MITIGATION), 2, D, G),
    Case("3a No, 4a unanswered", facts(TO_Q2, HEALTHY, PROTOCOL_3A_NO), 1, D, NI),
    Case("substance abuse (sensitive)", facts(TO_Q2, {"substance_abuse_indicated": "YES"}), 2, B, B),
    Case("intent to harm (sensitive)", facts(TO_Q2, {"intent_to_harm": "YES"}), 1, A, A),
    Case("3c Yes, peers Yes", facts(TO_Q2, HEALTHY, PROTOCOL_3C_YES, PEERS_YES), 1, E, E),
    Case("3c Yes, substitution all No, no mitigation",
         facts(TO_Q2, HEALTHY, PROTOCOL_3C_YES, NO_SUBSTITUTION, NO_MITIGATION), 1, G, G),
    Case("intent unanswered", facts({k: v for k, v in TO_Q2.items() if k != "intent_to_harm"}), 1, NI, NI),
)
GUIDE_DECISIONS = sum(case.count for case in CASES)  # 42
MARX_FACTS = {"is_patient_safety_incident": "NO", "investigation_stage": "IN_PROGRESS"}


@dataclass(frozen=True)
class Trail:
    """A seeded store, and which case each recorded decision came from."""

    store: DecisionStore
    evaluator: Evaluator
    case_of: dict[str, Case]
    marx_ids: tuple[str, ...]

    def replay(self, version: str, policy: str = GUIDE, **options: Any) -> ReplayReport:
        """Replay (options as :class:`ReplayRequest`; ``query`` defaults to everything)."""
        query = options.pop("query", DecisionFilter())
        return Replayer(self.evaluator, self.store).replay(
            ReplayRequest(query=query, version=version, policy=policy, **options)
        )

    def ids_of(self, name: str) -> list[str]:
        """Return the recorded decision ids of one case."""
        return [decision_id for decision_id, case in self.case_of.items() if case.name == name]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def trail(
    request: pytest.FixtureRequest, evaluator: Evaluator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Trail]:
    """Record every case (and two decisions of another policy) under 1.0.0 through the real recorder."""
    directory: Path = tmp_path_factory.mktemp("replay")
    with store_url(request.param, directory) as url:
        store = open_store(url)
        try:
            recorder = DecisionRecorder(evaluator, store)
            case_of: dict[str, Case] = {}
            for number, case in enumerate(CASES):
                for copy in range(case.count):
                    decision = recorder.evaluate(
                        GUIDE, case.facts, version="1.0.0", equality_group=case.equality_group,
                        subject=Subject(incident_ref=f"inc-{number}", staff_ref=f"staff-{number}-{copy}"),
                    )
                    assert decision.pathway is not None or case.before == NI, case.name
                    case_of[decision.decision_id] = case
            marx = tuple(recorder.evaluate(MARX, MARX_FACTS).decision_id for _ in range(2))
            yield Trail(store, evaluator, case_of, marx)
        finally:
            store.close()


def expected_transitions() -> dict[tuple[str, str], int]:
    """Sum the cases' counts per (1.0.0 pathway, 1.1.0 pathway)."""
    found: dict[tuple[str, str], int] = {}
    for case in CASES:
        found[(case.before, case.after)] = found.get((case.before, case.after), 0) + case.count
    return found


def test_replay_against_the_draft_reports_the_expected_transitions(trail: Trail) -> None:
    """3a/3c "No" cases leave D for E, F, G or a question at 4a; 3b "No" and everything else stays put."""
    report = trail.replay("1.1.0")
    transitions = {(t.from_pathway, t.to_pathway): t.count for t in report.transitions}
    assert transitions == {
        (A, A): 1, (B, B): 2, (D, D): 10, (D, E): 12, (D, F): 1, (D, G): 12, (D, NI): 1,
        (E, E): 1, (G, G): 1, (NI, NI): 1,
    }
    assert transitions == expected_transitions()
    assert (report.replayed, report.changed, report.skipped) == (GUIDE_DECISIONS, 26, 0)


def test_changed_decisions_say_what_changed(trail: Trail) -> None:
    """Each changed decision names its pathways, advice gained or lost, and what the candidate still needs."""
    report = trail.replay("1.1.0")
    assert len(report.changed_decisions) == report.changed == 26
    by_case: dict[str, set[tuple[Any, ...]]] = {}
    for changed in report.changed_decisions:
        case = trail.case_of[changed.decision_id]
        assert changed.from_version == "1.0.0"
        assert (changed.from_pathway, changed.to_pathway) == (case.before, case.after)
        change = (changed.advice_added, changed.advice_removed, changed.missing_facts)
        by_case.setdefault(case.name, set()).add(change)
    # D -> E: both pathways are not directed at the individual, so the advice is the same.
    assert by_case["3a No, peers Yes"] == {((), (), ())}
    # D -> G: management action brings HR advice and the equality review.
    assert by_case["3c No, substitution all No, no mitigation"] == {
        (("EQUALITY_REVIEW_REQUIRED", "HR_ADVICE_REQUIRED"), (), ())
    }
    (stopped,) = by_case["3a No, 4a unanswered"]
    assert stopped[2] == ("peers_would_act_same",)
    assert set(by_case) == {case.name for case in CASES if case.before != case.after}


def test_rule_firing_changes_compare_the_recorded_and_replayed_traces(trail: Trail) -> None:
    """4a now fires for the 12 "3a No, peers Yes" decisions, 5a for the mitigated one; no other question."""
    report = trail.replay("1.1.0")
    questions = {
        r.rule_id: (r.fired_before, r.fired_after, r.started_firing, r.stopped_firing)
        for r in report.rule_changes if r.rule_id in QUESTION_RULES
    }
    assert questions == {"4a": (1, 13, 12, 0), "5a": (0, 1, 1, 0)}
    advice = {r.rule_id for r in report.rule_changes} - QUESTION_RULES
    assert advice, "D -> G adds management-action advice, so advice rules fire differently too"
    assert all(r.started_firing or r.stopped_firing for r in report.rule_changes)


def test_max_changed_caps_the_list_but_not_the_count(trail: Trail) -> None:
    """Asking for 5 changed decisions lists the first 5 and still counts all 26."""
    report = trail.replay("1.1.0", max_changed=5)
    assert (report.changed, len(report.changed_decisions)) == (26, 5)


def test_a_filter_narrows_the_replay_as_it_narrows_a_listing(trail: Trail) -> None:
    """Only decisions recorded with pathway D are replayed when the filter says so."""
    report = trail.replay("1.1.0", query=DecisionFilter(pathway=D))
    assert report.replayed == sum(case.count for case in CASES if case.before == D)
    assert {t.from_pathway for t in report.transitions} == {D}


def test_replay_records_nothing(trail: Trail) -> None:
    """After replays the trail holds the same records, chain intact: replay is a question, not a decision."""
    before = trail.store.verify_chain()
    listed = [s.decision.decision_id for s in trail.store.iter_decisions(DecisionFilter())]
    trail.replay("1.1.0")
    trail.replay("1.0.0")
    trail.replay("1.1.0", policy="")
    after = trail.store.verify_chain()
    assert after.intact
    assert after.records_checked == before.records_checked == GUIDE_DECISIONS + len(trail.marx_ids)
    assert [s.decision.decision_id for s in trail.store.iter_decisions(DecisionFilter())] == listed


def test_replaying_against_the_version_that_decided_changes_nothing(trail: Trail) -> None:
    """Every decision, sensitive-fact ones included, replays to its recorded pathway, advice and rules."""
    report = trail.replay("1.0.0")
    assert (report.replayed, report.changed, report.skipped) == (GUIDE_DECISIONS, 0, 0)
    assert all(t.from_pathway == t.to_pathway for t in report.transitions)
    assert report.rule_changes == ()
    assert report.changed_decisions == ()


def test_masked_sensitive_facts_are_restored_for_replay(trail: Trail) -> None:
    """A substance-abuse decision is recorded masked, yet replays to B: the true value was restored."""
    (decision_id, *_) = trail.ids_of("substance abuse (sensitive)")
    stored = trail.store.get_decision(decision_id)
    assert stored.facts["substance_abuse_indicated"] == MASK
    assert "substance_abuse_indicated" in stored.masked_facts
    report = trail.replay("1.0.0", query=DecisionFilter(incident_ref=stored.decision.subject.incident_ref))
    assert [(t.from_pathway, t.to_pathway, t.count) for t in report.transitions] == [(B, B, 2)]


def test_a_decision_whose_true_values_were_not_kept_cannot_be_restored() -> None:
    """Without the separately kept values, restore refuses rather than evaluate the mask as an answer."""

    @dataclass(frozen=True)
    class Recorded:
        facts: dict[str, object]
        masked_facts: tuple[str, ...]

    recorded = Recorded({"intent_to_harm": MASK, "harm_severity": "LOW"}, ("intent_to_harm",))
    assert restore(recorded, {}) is None  # type: ignore[arg-type]
    assert restore(recorded, {"intent_to_harm": "YES"}) == {  # type: ignore[arg-type]
        "intent_to_harm": "YES", "harm_severity": "LOW",
    }


def test_each_decisions_own_policy_is_the_default_candidate(trail: Trail) -> None:
    """Without a policy name, guide decisions replay against guide 1.1.0; marx has no 1.1.0: skipped."""
    report = trail.replay("1.1.0", policy="")
    assert (report.replayed, report.skipped) == (GUIDE_DECISIONS, 2)
    (reason,) = report.skip_reasons
    assert reason.reason == f"policy '{MARX}@1.1.0' is not loaded"
    assert (reason.count, reason.decision_ids) == (2, trail.marx_ids)


def test_naming_the_candidate_replays_only_its_decisions(trail: Trail) -> None:
    """A named candidate policy selects the decisions recorded under it; others are not even skipped."""
    report = trail.replay("1.1.0")
    assert report.replayed + report.skipped == GUIDE_DECISIONS


def test_facts_the_candidate_does_not_declare_skip_the_decision_by_reason(trail: Trail) -> None:
    """Guide facts against another policy are skipped, counted by reason, naming facts, never values."""
    report = trail.replay("1.0.0", policy="pre-formal-check", query=DecisionFilter(policy=GUIDE))
    assert (report.replayed, report.skipped) == (0, GUIDE_DECISIONS)
    assert sum(reason.count for reason in report.skip_reasons) == GUIDE_DECISIONS
    assert all("not a fact of pre-formal-check@1.0.0" in reason.reason for reason in report.skip_reasons)
    text = " ".join(reason.reason for reason in report.skip_reasons)
    assert MASK not in text
    assert "REGISTERED_NURSE" not in text
    assert all(0 < len(reason.decision_ids) <= 5 for reason in report.skip_reasons)


def test_candidate_fairness_figures_are_reported_beside_the_recorded_ones(trail: Trail) -> None:
    """The draft would send G2's 3a-No decisions to management action: G1 becomes far less likely than G2."""
    report = trail.replay("1.1.0")
    (recorded,) = report.recorded_stats
    (candidate,) = report.candidate_stats
    assert (recorded.version, recorded.total, candidate.version, candidate.total) == (
        "1.0.0", GUIDE_DECISIONS, "1.1.0", GUIDE_DECISIONS,
    )
    cells = {(c.group, c.pathway): (c.count, c.suppressed) for c in candidate.by_equality_group}
    assert cells[("G1", E)] == (12, False)
    assert cells[("G2", G)] == (10, False)
    assert cells[("G2", D)] == (10, False)
    assert cells[("(not recorded)", F)] == (0, True)
    (likelihood,) = candidate.relative_likelihood
    assert (likelihood.group, likelihood.reference_group, likelihood.suppressed) == ("G1", "G2", False)
    assert likelihood.ratio == pytest.approx((0.5 / 13) / (10.5 / 21))  # 0 of 12 against 10 of 20
    (before,) = recorded.relative_likelihood
    assert before.ratio == pytest.approx((0.5 / 13) / (0.5 / 21))  # 0 of 12 against 0 of 20
    professions = {(c.group, c.pathway) for c in candidate.by_professional_group}
    assert ("REGISTERED_NURSE", E) in professions


def test_figures_follow_the_requested_period(trail: Trail) -> None:
    """A replay asked for by year slices both sets of figures by the year the decisions were made."""
    report = trail.replay("1.1.0", period="year")
    assert [s.period for s in report.candidate_stats] == [s.period for s in report.recorded_stats]
    assert all(len(s.period) == 4 for s in report.candidate_stats)


def test_a_version_is_required(trail: Trail) -> None:
    """Replaying against "whatever is current" is refused: the candidate must be named."""
    with pytest.raises(InvalidRequestError, match="version"):
        trail.replay("")


def test_an_unknown_period_or_negative_cap_is_refused(trail: Trail) -> None:
    """A bad period or a negative max_changed is an invalid request, before any decision is replayed."""
    with pytest.raises(InvalidRequestError, match="period"):
        trail.replay("1.1.0", period="week")
    with pytest.raises(InvalidRequestError, match="max_changed"):
        trail.replay("1.1.0", max_changed=-1)


def test_an_unloaded_candidate_is_not_found(trail: Trail) -> None:
    """A named candidate version that is not loaded is NOT_FOUND for the whole replay, not a skip each."""
    with pytest.raises(PolicyNotFoundError):
        trail.replay("9.9.9")


def test_a_cancelled_replay_stops(trail: Trail) -> None:
    """When the caller has gone the replay stops between decisions instead of running to the end."""
    with pytest.raises(DeadlineExpiredError):
        Replayer(trail.evaluator, trail.store).replay(
            ReplayRequest(DecisionFilter(), version="1.1.0", policy=GUIDE), cancelled=lambda: True
        )
