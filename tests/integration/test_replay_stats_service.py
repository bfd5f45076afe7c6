"""OutcomeStats and ReplayDecisions through a real server, the real client and the CLI, on both stores.

Each store gets its own server over a fresh trail, seeded with Evaluate calls
that attach an equality group through ``Subject.equality_group``, so every
figure below is exact.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fairpath.audit.fairness import katz_interval
from fairpath.serving.evaluator import Evaluator
from fairpath.serving.masking import MASK
from fairpath_client import (
    DecisionFilter,
    FairpathClient,
    InvalidRequestError,
    PolicyNotFoundError,
    StatsSlice,
    Subject,
)
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from tests.conftest import GUIDE
from tests.support.servers import serving
from tests.support.store_urls import store_url

E, G = "JCG_E_NOT_SINGLE_OUT_SUBSTITUTION", "JCG_G_MANAGEMENT_ACTION"
D = "JCG_D_NOT_SINGLE_OUT_FORESIGHT"
TO_3C = {
    "is_patient_safety_incident": "YES", "individual_concern_raised": "YES", "safeguarding_concern": "NO",
    "intent_to_harm": "NO", "substance_abuse_indicated": "NO", "physical_ill_health_indicated": "NO",
    "mental_ill_health_indicated": "NO", "protocols_in_place": "YES",
    "protocols_workable_in_routine_use": "YES", "investigation_stage": "IN_PROGRESS", "harm_severity": "LOW",
}
# Management action (individual-directed) and substitution (not), the same under 1.0.0 and 1.1.0.
TO_G = {**TO_3C, "knowingly_departed": "YES", "peers_would_act_same": "NO", "missed_training": "NO",
        "inadequate_supervision": "NO", "significant_mitigation": "NO"}
TO_E = {**TO_3C, "knowingly_departed": "YES", "peers_would_act_same": "YES"}
# D under 1.0.0, E under the 1.1.0 draft.
D_THEN_E = {**TO_3C, "protocols_in_place": "NO", "peers_would_act_same": "YES"}

# (facts, professional group, equality group, how many)
SEED = (
    (TO_G, "REGISTERED_NURSE", "G1", 10), (TO_E, "REGISTERED_NURSE", "G1", 10),
    (TO_G, "REGISTERED_NURSE", "G2", 10), (TO_E, "REGISTERED_NURSE", "G2", 30),
    (TO_G, "DOCTOR", "G3", 5),
    (D_THEN_E, "MIDWIFE", "", 3),
)
TOTAL = sum(seed[3] for seed in SEED)  # 68


@dataclass(frozen=True)
class Served:
    """A server over a freshly seeded trail."""

    target: str
    seeded_from: datetime


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def served(
    request: pytest.FixtureRequest, evaluator: Evaluator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """Serve a fresh store and record the SEED through Evaluate, with equality groups on the subject."""
    directory: Path = tmp_path_factory.mktemp("stats")
    with store_url(request.param, directory) as url, serving(evaluator, store=url) as running:
        target = f"127.0.0.1:{running.port}"
        started = datetime.now(UTC) - timedelta(seconds=1)
        with FairpathClient(target) as client:
            for facts, profession, group, count in SEED:
                for _ in range(count):
                    client.evaluate(
                        GUIDE, {**facts, "professional_group": profession}, version="1.0.0",
                        subject=Subject(incident_ref="inc", equality_group=group),
                    )
        yield Served(target, started)


@pytest.fixture
def client(served: Served) -> Iterator[FairpathClient]:
    """Open a client of the seeded server."""
    with FairpathClient(served.target, timeout=30) as opened:
        yield opened


def cells(figures: StatsSlice, by: str) -> dict[tuple[str, str], tuple[int, bool]]:
    """Return (group, pathway) -> (count, suppressed) of one breakdown of a slice."""
    chosen = figures.by_equality_group if by == "equality" else figures.by_professional_group
    return {(c.group, c.pathway): (c.count, c.suppressed) for c in chosen}


# --- OutcomeStats --------------------------------------------------------------------------


def test_outcome_stats_counts_pathways_by_equality_and_professional_group(client: FairpathClient) -> None:
    """Counts by equality group (Subject.equality_group) and recorded professional group; small hidden."""
    stats = client.outcome_stats(GUIDE, "1.0.0")
    assert stats.suppression_threshold == 10
    (figures,) = stats.slices
    assert (figures.policy, figures.version, figures.period, figures.total) == (GUIDE, "1.0.0", "all", TOTAL)
    assert cells(figures, "equality") == {
        ("G1", G): (10, False), ("G1", E): (10, False), ("G2", G): (10, False), ("G2", E): (30, False),
        ("G3", G): (0, True), ("(not recorded)", D): (0, True),
    }
    assert cells(figures, "profession") == {
        ("REGISTERED_NURSE", G): (20, False), ("REGISTERED_NURSE", E): (40, False),
        ("DOCTOR", G): (0, True), ("MIDWIFE", D): (0, True),
    }


def test_outcome_stats_relative_likelihood_against_the_largest_group(client: FairpathClient) -> None:
    """G1 (10 of 20 directed) vs G2 (10 of 40) is 2.0 with Katz's interval; G3 (5 people) is suppressed."""
    (figures,) = client.outcome_stats(GUIDE, "1.0.0").slices
    g1, g3 = figures.relative_likelihood
    assert (g1.group, g1.reference_group, g1.individual_directed, g1.total) == ("G1", "G2", 10, 20)
    ratio, low, high = katz_interval(10, 20, 10, 40)
    assert (g1.ratio, g1.ci_low, g1.ci_high) == pytest.approx((ratio, low, high))
    assert g1.ratio == pytest.approx(2.0)
    assert g1.outside_non_adverse
    assert (g3.group, g3.suppressed, g3.ratio, g3.total, g3.individual_directed) == ("G3", True, 0.0, 0, 0)


def test_outcome_stats_with_a_chosen_reference_group(client: FairpathClient) -> None:
    """With G1 as reference, G2 is half as likely to get an individual-directed pathway."""
    (figures,) = client.outcome_stats(GUIDE, reference_group="G1").slices
    g2 = next(item for item in figures.relative_likelihood if item.group == "G2")
    assert (g2.reference_group, g2.ratio) == ("G1", pytest.approx(0.5))


def test_outcome_stats_by_period_and_time_window(client: FairpathClient, served: Served) -> None:
    """Month slices are labelled with the month; a window before the seeding holds no decisions."""
    now = datetime.now(UTC)
    (figures,) = client.outcome_stats(GUIDE, period="month").slices
    assert figures.period in {f"{served.seeded_from:%Y-%m}", f"{now:%Y-%m}"}
    assert figures.total == TOTAL
    before = client.outcome_stats(GUIDE, until=served.seeded_from - timedelta(days=1))
    assert before.slices == ()


def test_outcome_stats_refuses_an_unknown_period(client: FairpathClient) -> None:
    """An unknown period is INVALID_ARGUMENT naming the field."""
    with pytest.raises(InvalidRequestError) as raised:
        client.outcome_stats(period="week")
    assert [v.field for v in raised.value.violations] == ["period"]


def test_the_equality_group_is_never_sent_back_with_a_decision(client: FairpathClient) -> None:
    """Recorded decisions come back without the equality group they were evaluated with."""
    page = client.list_decisions(DecisionFilter(policy=GUIDE), page_size=100)
    assert len(page.records) == TOTAL
    assert {record.decision.subject.equality_group for record in page.records} == {""}


# --- ReplayDecisions -----------------------------------------------------------------------


def test_replay_end_to_end_reports_transitions_and_records_nothing(client: FairpathClient) -> None:
    """Replaying against the 1.1.0 draft moves the 3a-No decisions D -> E and appends no record."""
    before = client.verify_chain()
    report = client.replay_decisions(GUIDE, "1.1.0")
    assert (report.replayed, report.changed, report.skipped) == (TOTAL, 3, 0)
    assert {(t.from_pathway, t.to_pathway): t.count for t in report.transitions} == {
        (D, E): 3, (E, E): 40, (G, G): 25,
    }
    assert {r.rule_id: (r.fired_before, r.fired_after) for r in report.rule_changes} == {"4a": (40, 43)}
    assert {(c.from_pathway, c.to_pathway) for c in report.changed_decisions} == {(D, E)}
    (candidate,) = report.candidate_stats
    assert candidate.version == "1.1.0"
    assert cells(candidate, "equality")[("(not recorded)", E)] == (0, True)
    assert [s.version for s in report.recorded_stats] == ["1.0.0"]
    after = client.verify_chain()
    assert after.intact
    assert after.records_checked == before.records_checked


def test_replay_in_the_deprecated_argument_order_still_works_and_warns(client: FairpathClient) -> None:
    """The old argument order ``replay_decisions(version, policy)`` and ``version=`` still work, and warn.

    For one release they replay the same as the new order, with a DeprecationWarning.
    """
    expected = client.replay_decisions(GUIDE, "1.1.0")
    with pytest.warns(DeprecationWarning, match="replay_decisions\\(policy, candidate\\)"):
        old_order = client.replay_decisions("1.1.0", GUIDE)
    with pytest.warns(DeprecationWarning, match="candidate="):
        old_keyword = client.replay_decisions(policy=GUIDE, version="1.1.0")
    for report in (old_order, old_keyword):
        assert (report.replayed, report.changed, report.transitions) == (
            expected.replayed, expected.changed, expected.transitions)


def test_replay_requires_a_loaded_candidate_version(client: FairpathClient) -> None:
    """No version is INVALID_ARGUMENT; a version that is not loaded is NOT_FOUND."""
    with pytest.raises(InvalidRequestError):
        client.replay_decisions(GUIDE, "")
    with pytest.raises(PolicyNotFoundError):
        client.replay_decisions(GUIDE, "9.9.9")


def test_replay_and_stats_log_counts_never_groups_or_facts(client: FairpathClient) -> None:
    """The access log of both RPCs carries counts; no equality group, fact value or restored value."""
    with capture_logs(processors=[merge_contextvars]) as logs:
        client.outcome_stats(GUIDE, reference_group="G1")
        client.replay_decisions(GUIDE, "1.1.0", reference_group="G1")
    lines = [entry for entry in logs if entry["event"] == "rpc"]
    assert [line["method"].rsplit("/", 1)[1] for line in lines] == ["OutcomeStats", "ReplayDecisions"]
    assert (lines[1]["replayed"], lines[1]["changed"], lines[1]["skipped"]) == (TOTAL, 3, 0)
    text = repr(logs)
    for secret in ("G1", "G2", "G3", "REGISTERED_NURSE", "safeguarding_concern", MASK):
        assert secret not in text


# --- the CLI ---------------------------------------------------------------------------------


def fairpath(served: Served, *args: str) -> tuple[int, str]:
    """Run the client CLI in its own process (the in-process server logs to this one's stdout)."""
    done = subprocess.run(
        [sys.executable, "-m", "fairpath_client", *args, "--target", served.target],
        capture_output=True, text=True, timeout=60, check=False,
    )
    return done.returncode, done.stdout


def fairpath_full(served: Served, *args: str) -> tuple[int, str, str]:
    """Run the client CLI as :func:`fairpath` does; return its exit code, stdout and stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "fairpath_client", *args, "--target", served.target],
        capture_output=True, text=True, timeout=60, check=False,
    )
    return done.returncode, done.stdout, done.stderr


def test_cli_replay_prints_the_matrix_and_changed_decisions(served: Served) -> None:
    """``fairpath replay`` prints counts, transitions, rule changes, changed decisions and both figures."""
    code, out = fairpath(served, "replay", "--policy", GUIDE, "--candidate", "1.1.0")
    assert code == 0
    assert f"Replayed {TOTAL} decision(s): 3 changed, 0 skipped." in out
    assert any(line.split() == [D, E, "3", "changed"] for line in out.splitlines())
    assert any(line.split() == [E, E, "40"] for line in out.splitlines())
    assert "Rules whose firing changed:" in out
    assert "Fairness figures of the candidate:" in out
    assert "nhs-just-culture-guide@1.1.0, period all" in out


def test_cli_replay_json_and_exit_code_for_an_unknown_version(served: Served) -> None:
    """``--json`` prints the report as JSON; an unloaded version exits 3."""
    code, out = fairpath(served, "replay", "--policy", GUIDE, "--candidate", "1.1.0", "--json")
    assert code == 0
    report = json.loads(out)
    assert (report["replayed"], report["changed"]) == (TOTAL, 3)
    assert fairpath(served, "replay", "--policy", GUIDE, "--candidate", "9.9.9")[0] == 3


def test_cli_stats_prints_counts_suppression_and_flags(served: Served) -> None:
    """``fairpath stats`` shows suppressed cells as "suppressed".

    Says what that means (not always under 10: secondary suppression) and flags a ratio outside 0.8-1.25.
    """
    code, out = fairpath(served, "stats", "--policy", GUIDE)
    assert code == 0
    lines = [line.split() for line in out.splitlines()]
    assert ["G2", E, "30"] in lines
    assert ["G3", G, "suppressed"] in lines
    assert ["DOCTOR", G, "suppressed"] in lines
    assert "<10" not in out
    assert "secondary suppression" in " ".join(out.split())
    g1 = next(line for line in lines if line[:1] == ["G1"] and "OUTSIDE" in line)
    assert g1[1:5] == ["10", "20", "2.00", g1[4]]
    assert any(line[:1] == ["G3"] and "suppressed" in line for line in lines)


def test_cli_stats_with_an_unknown_reference_group_names_the_groups_that_exist(served: Served) -> None:
    """``stats --reference-group G9`` (no decision has it) is refused.

    Exit 2, naming G1, G2 and G3, not answered with figures that silently lack every ratio; replay refuses it the same
    way.
    """
    for command in (("stats",), ("replay", "--policy", GUIDE, "--candidate", "1.0.0")):
        code, out, err = fairpath_full(served, *command, "--reference-group", "G9")
        assert (code, out) == (2, "")
        assert "reference_group: no decided decision has equality group 'G9'" in err
        assert "the groups recorded are G1, G2, G3" in err


def test_cli_stats_json(served: Served) -> None:
    """``fairpath stats --json`` prints the slices and the threshold as JSON."""
    code, out = fairpath(served, "stats", "--period", "year", "--json")
    assert code == 0
    stats = json.loads(out)
    assert stats["suppression_threshold"] == 10
    assert [s["total"] for s in stats["slices"]] == [TOTAL]
