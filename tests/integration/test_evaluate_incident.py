"""EvaluateIncident through the real server and client: per-action decisions, incident advice, refusals, retries, CLI.

The session server records into the session's SQLite store; atomic recording on SQLite and PostgreSQL,
failures midway included, is pinned in tests/integration/audit/test_incident_recording.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import pytest
from fairpath.api import field_limits
from fairpath.serving.evaluator import Evaluator
from fairpath.v1 import evaluation_service_pb2, evaluation_service_pb2_grpc
from fairpath_client import (
    Decision,
    DecisionFilter,
    FairpathClient,
    IncidentAction,
    InvalidFactsError,
    InvalidRequestError,
    RequestIdReusedError,
    from_rpc_error,
)
from fairpath_client.cli import main

from tests.support.servers import serving
from tests.support.store_urls import store_url

GUIDE = "nhs-just-culture-guide"
EXAMPLES = Path(__file__).resolve().parents[2] / "clients" / "python" / "examples"
EXAMPLE = EXAMPLES / "medication-incident-three-nurses.yaml"

#: Shared facts walking the guide to question 3c; each action's own facts finish the walk.
SHARED = {
    "is_patient_safety_incident": "YES",
    "individual_concern_raised": "YES",
    "safeguarding_concern": "NO",
    "intent_to_harm": "NO",
    "substance_abuse_indicated": "NO",
    "physical_ill_health_indicated": "NO",
    "mental_ill_health_indicated": "NO",
    "protocols_in_place": "YES",
    "protocols_workable_in_routine_use": "YES",
    "knowingly_departed": "YES",
    "peers_would_act_same": "NO",
    "missed_training": "NO",
    "inadequate_supervision": "NO",
    "significant_mitigation": "NO",
    "professional_group": "REGISTERED_NURSE",
    "harm_severity": "MODERATE",
    "investigation_stage": "IN_PROGRESS",
}
# Each action's own facts -> the guide's exit they lead to on SHARED.
MANAGEMENT: dict[str, object] = {}  # G: individual-directed
MITIGATION = {"significant_mitigation": "YES"}  # F: individual-directed
SUBSTITUTION = {"peers_would_act_same": "YES"}  # E at 4a: not individual-directed
MISSED_TRAINING = {"missed_training": "YES"}  # E at 4b: not individual-directed, substitution not passed
NOT_KNOWINGLY = {"knowingly_departed": "NO"}  # D
UNANSWERED = {"knowingly_departed": None}  # NEEDS_INFORMATION at 3c
SUBSTANCE = {"substance_abuse_indicated": "YES"}  # B: health route


def _incident() -> str:
    return f"INC-{uuid.uuid4().hex[:10]}"


def _actions(*own: tuple[str, Mapping[str, object]]) -> list[IncidentAction]:
    return [
        IncidentAction(staff_ref=staff, action_ref=f"A-{index}", facts=dict(facts))
        for index, (staff, facts) in enumerate(own)
    ]


def _comparable(decision: Decision) -> dict[str, Any]:
    """What Evaluate decides, without what differs per call (ids, times, the request id, dry_run)."""
    found = decision.to_dict()
    for key in ("decision_id", "evaluated_at", "request_id", "dry_run"):
        found.pop(key)
    return found


def _recorded(client: FairpathClient, incident_ref: str) -> list[Decision]:
    page = client.list_decisions(DecisionFilter(incident_ref=incident_ref), page_size=100)
    return [record.decision for record in page.records]


@pytest.fixture
def client(target: str) -> Iterator[FairpathClient]:
    """A typed client of the session server."""
    with FairpathClient(target, timeout=10) as opened:
        yield opened


def test_each_action_gets_exactly_what_evaluate_returns_and_is_recorded_linked_to_the_incident(
    client: FairpathClient,
) -> None:
    """Mixed pathways: each decision equals Evaluate's on the merged facts, with its own id, all filed by incident."""
    incident = _incident()
    own: list[tuple[str, Mapping[str, object]]] = [
        ("S-1", MANAGEMENT), ("S-2", SUBSTITUTION), ("S-3", NOT_KNOWINGLY), ("S-4", UNANSWERED), ("S-5", SUBSTANCE),
    ]
    actions = _actions(*own)

    result = client.evaluate_incident(GUIDE, incident, SHARED, actions, request_id=f"req-{incident}")

    codes = [d.pathway.code if d.pathway else d.status for d in result.decisions]
    assert codes == [
        "JCG_G_MANAGEMENT_ACTION", "JCG_E_NOT_SINGLE_OUT_SUBSTITUTION", "JCG_D_NOT_SINGLE_OUT_FORESIGHT",
        "NEEDS_INFORMATION", "JCG_B_SUBSTANCE_ABUSE",
    ]
    for action, decision in zip(actions, result.decisions, strict=True):
        alone = client.evaluate(
            GUIDE, {**SHARED, **action.facts},
            subject={"incident_ref": incident, "staff_ref": action.staff_ref, "action_ref": action.action_ref},
            dry_run=True,
        )
        assert _comparable(decision) == _comparable(alone)
    assert len({d.decision_id for d in result.decisions}) == len(actions)
    assert [d.request_id for d in result.decisions] == [f"req-{incident}#{i}" for i in range(len(actions))]
    recorded = _recorded(client, incident)
    assert [d.decision_id for d in recorded] == [d.decision_id for d in result.decisions]
    assert {d.subject.incident_ref for d in recorded} == {incident}
    assert result.advice == ()  # one individual-directed action, one person passing 4a: no cohort


def test_two_individual_directed_actions_raise_the_cohort_signal(client: FairpathClient) -> None:
    """Two actions on individual-directed pathways (G and F) -> the system-first cohort signal naming them."""
    result = client.evaluate_incident(
        GUIDE, _incident(), SHARED, _actions(("S-1", MANAGEMENT), ("S-2", NOT_KNOWINGLY), ("S-3", MITIGATION))
    )

    (advice,) = result.advice
    assert (advice.code, advice.rule_id, advice.action_indexes) == (
        "SYSTEM_FIRST_COHORT_SIGNAL", "COHORT_INDIVIDUAL_DIRECTED", (0, 2),
    )
    assert "JCG_G_MANAGEMENT_ACTION" in advice.reason
    assert "JCG_F_MITIGATION" in advice.reason
    assert "system first" in advice.text


def test_several_people_passing_the_substitution_test_raise_the_cohort_signal(client: FairpathClient) -> None:
    """Two people whose peers would have acted the same (4a YES) -> the cohort signal, though none is directed."""
    result = client.evaluate_incident(
        GUIDE, _incident(), SHARED, _actions(("S-1", SUBSTITUTION), ("S-2", NOT_KNOWINGLY), ("S-3", SUBSTITUTION))
    )

    assert not any(d.pathway and d.pathway.individual_directed for d in result.decisions)
    (advice,) = result.advice
    assert (advice.rule_id, advice.action_indexes) == ("COHORT_SUBSTITUTION", (0, 2))


@pytest.mark.parametrize(
    "own",
    [
        pytest.param([("S-1", MANAGEMENT), ("S-2", SUBSTITUTION), ("S-3", NOT_KNOWINGLY)], id="one-directed"),
        pytest.param([("S-1", SUBSTITUTION), ("S-1", SUBSTITUTION)], id="substitution-same-person"),
        pytest.param([("S-1", MISSED_TRAINING), ("S-2", MISSED_TRAINING)], id="E-at-4b-not-4a"),
        pytest.param([("S-1", {**SUBSTITUTION, **NOT_KNOWINGLY}), ("S-2", SUBSTITUTION)], id="4a-yes-not-reached"),
    ],
)
def test_the_cohort_signal_stays_quiet_without_a_cohort(
    client: FairpathClient, own: list[tuple[str, Mapping[str, object]]]
) -> None:
    """No signal for one directed action, one person twice, E reached by 4b, or a YES the walk never reached."""
    result = client.evaluate_incident(GUIDE, _incident(), SHARED, _actions(*own))

    assert result.advice == ()


def test_a_bad_action_refuses_the_whole_call_naming_the_action(client: FairpathClient) -> None:
    """actions[2]'s bad answer refuses every action: the violation is addressed by index, nothing is recorded."""
    incident = _incident()
    actions = _actions(("S-1", MANAGEMENT), ("S-2", MITIGATION), ("S-3", {"intent_to_harm": "MAYBE"}))

    with pytest.raises(InvalidFactsError) as refused:
        client.evaluate_incident(GUIDE, incident, SHARED, actions)

    assert [v.field for v in refused.value.violations] == ["actions[2].facts.intent_to_harm"]
    assert _recorded(client, incident) == []


def test_a_bad_shared_fact_is_named_once_as_a_shared_fact(client: FairpathClient) -> None:
    """A bad shared fact reaches every action but is reported once, as facts.<name>; nothing is recorded."""
    incident = _incident()

    with pytest.raises(InvalidFactsError) as refused:
        client.evaluate_incident(
            GUIDE, incident, {**SHARED, "harm_severity": "CATASTROPHIC"}, _actions(("S-1", {}), ("S-2", {}))
        )

    assert [v.field for v in refused.value.violations] == ["facts.harm_severity"]
    assert _recorded(client, incident) == []


def test_an_incident_request_missing_references_or_with_too_many_actions_is_refused(client: FairpathClient) -> None:
    """No incident ref, an action without staff ref or naming another incident, or 51 actions: INVALID_ARGUMENT."""
    with pytest.raises(InvalidRequestError) as missing:
        client.evaluate_incident(GUIDE, "", SHARED, [IncidentAction(staff_ref="")])
    assert [v.field for v in missing.value.violations] == ["incident_ref", "actions[0].subject.staff_ref"]

    with pytest.raises(InvalidRequestError) as none:
        client.evaluate_incident(GUIDE, _incident(), SHARED, [])
    assert [v.field for v in none.value.violations] == ["actions"]

    incident = _incident()
    with pytest.raises(InvalidRequestError) as too_many:
        client.evaluate_incident(GUIDE, incident, SHARED, _actions(*[(f"S-{i}", {}) for i in range(51)]))
    assert [v.field for v in too_many.value.violations] == ["actions"]
    assert "at most 50" in too_many.value.violations[0].description
    assert _recorded(client, incident) == []


def test_an_action_naming_another_incident_is_refused(target: str) -> None:
    """An action whose subject names a different incident than the request's is refused by index."""
    request = evaluation_service_pb2.EvaluateIncidentRequest(policy=GUIDE, incident_ref="INC-A")
    action = request.actions.add()
    action.subject.staff_ref = "S-1"
    action.subject.incident_ref = "INC-B"
    with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as refused:
        evaluation_service_pb2_grpc.EvaluationServiceStub(channel).EvaluateIncident(request, timeout=10)
    assert isinstance(refused.value, grpc.Call)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "actions[0].subject.incident_ref" in (refused.value.details() or "")


def test_a_repeated_incident_request_id_returns_the_first_result_and_a_different_payload_is_refused(
    client: FairpathClient,
) -> None:
    """Same request and id: the same decisions and advice, nothing new; a changed action or count: refused."""
    incident = _incident()
    request_id = f"req-{incident}"
    actions = _actions(("S-1", MANAGEMENT), ("S-2", MITIGATION))
    first = client.evaluate_incident(GUIDE, incident, SHARED, actions, request_id=request_id)

    again = client.evaluate_incident(GUIDE, incident, SHARED, actions, request_id=request_id)

    assert [d.decision_id for d in again.decisions] == [d.decision_id for d in first.decisions]
    assert again.advice == first.advice
    for changed in (
        _actions(("S-1", MANAGEMENT), ("S-2", NOT_KNOWINGLY)),  # one action's facts
        actions[:1],  # one action fewer
        [*actions, IncidentAction(staff_ref="S-3")],  # one more
    ):
        with pytest.raises(RequestIdReusedError):
            client.evaluate_incident(GUIDE, incident, SHARED, changed, request_id=request_id)
    assert len(_recorded(client, incident)) == 2


def test_a_dry_run_evaluates_every_action_and_records_nothing(client: FairpathClient) -> None:
    """dry_run as Evaluate: decisions and advice come back marked dry_run, the trail holds nothing of them."""
    incident = _incident()

    result = client.evaluate_incident(
        GUIDE, incident, SHARED, _actions(("S-1", MANAGEMENT), ("S-2", MITIGATION)), dry_run=True
    )

    assert result.dry_run
    assert all(d.dry_run for d in result.decisions)
    assert [a.rule_id for a in result.advice] == ["COHORT_INDIVIDUAL_DIRECTED"]
    assert _recorded(client, incident) == []


def test_cli_evaluates_the_example_incident_and_the_trail_filters_by_it(
    target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """evaluate-incident --facts EXAMPLE prints the cohort signal and each action; decisions list filters by it."""
    incident = _incident()

    code = main(["evaluate-incident", "--facts", str(EXAMPLE), "--target", target, "--incident-ref", incident])

    out = capsys.readouterr().out
    assert code == 0
    assert "SYSTEM_FIRST_COHORT_SIGNAL" in out
    assert "COHORT_SUBSTITUTION" in out
    assert [line.split()[1] for line in out.splitlines() if line.startswith("== ")] == [
        "actions[0]", "actions[1]", "actions[2]",
    ]
    assert main(["decisions", "list", "--incident-ref", incident, "--target", target, "--json"]) == 0
    listed = capsys.readouterr().out
    assert listed.count(incident) >= 3


def test_cli_json_and_a_bad_action_exit_codes(target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints the whole result; a bad action exits 2 printing its indexed field; an unreadable file exits 2."""
    assert main(["evaluate-incident", "--facts", str(EXAMPLE), "--target", target, "--json", "--dry-run"]) == 0
    out = capsys.readouterr().out
    printed = json.loads(out[out.index("{\n"):])  # the in-process server's access log may come first
    assert [d["subject"]["staff_ref"] for d in printed["decisions"]] == ["S-1001", "S-1002", "S-1003"]
    assert printed["dry_run"] is True

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "incident_ref: INC-BAD\npolicy: nhs-just-culture-guide\nactions:\n"
        "  - staff_ref: S-1\n  - staff_ref: S-2\n  - staff_ref: S-3\n    facts: {intent_to_harm: MAYBE}\n",
        encoding="utf-8",
    )
    assert main(["evaluate-incident", "--facts", str(bad), "--target", target]) == 2
    assert "actions[2].facts.intent_to_harm: must be one of YES, NO, UNKNOWN" in capsys.readouterr().err

    bad.write_text("incident_ref: INC-BAD\nactions: []\n", encoding="utf-8")
    assert main(["evaluate-incident", "--facts", str(bad), "--target", target]) == 2
    assert "names no policy" in capsys.readouterr().err


def test_an_absurd_action_fact_is_refused_before_evaluation_naming_the_action(client: FairpathClient) -> None:
    """The limits that guard Evaluate's facts guard each action's too, addressed by the action's index."""
    incident = _incident()
    actions = _actions(("S-1", {}), ("S-2", {"professional_group": "X" * 5000}))

    with pytest.raises(InvalidFactsError) as refused:
        client.evaluate_incident(GUIDE, incident, SHARED, actions)

    assert [v.field for v in refused.value.violations] == ["actions[1].facts.professional_group"]
    assert "at most" in refused.value.violations[0].description
    assert _recorded(client, incident) == []


_STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(name="stored", scope="module", params=_STORES)
def _stored(
    request: pytest.FixtureRequest, evaluator: Evaluator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[FairpathClient, grpc.Channel]]:
    """A server on a fresh store of each kind, with a client and a raw channel (to send headers alone)."""
    with (
        store_url(request.param, tmp_path_factory.mktemp("incident-ids")) as url,
        serving(evaluator, store=url) as running,
    ):
        target = f"127.0.0.1:{running.port}"
        with FairpathClient(target, timeout=30) as opened, grpc.insecure_channel(target) as channel:
            yield opened, channel


def _refused_fields(call: Any) -> list[tuple[str, str]]:
    """Send ``call`` (a raw stub call), which must be refused INVALID_ARGUMENT; its BadRequest violations."""
    with pytest.raises(grpc.RpcError) as refused:
        call()
    error = refused.value
    assert isinstance(error, grpc.Call)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    mapped = from_rpc_error(error)
    assert isinstance(mapped, InvalidRequestError)
    return [(v.field, v.description) for v in mapped.violations]


def test_every_action_id_of_the_longest_incident_id_fits_the_request_id_maximum(
    stored: tuple[FairpathClient, grpc.Channel],
) -> None:
    """An incident id of 125 characters and 50 actions: each recorded id `<id>#<i>` is at most 128; 126 is refused."""
    client, channel = stored
    longest = "r" * field_limits.INCIDENT_REQUEST_ID
    assert field_limits.INCIDENT_REQUEST_ID == 125
    assert field_limits.INCIDENT_ACTIONS == 50
    incident = _incident()
    actions = _actions(*[(f"S-{i}", {}) for i in range(field_limits.INCIDENT_ACTIONS)])

    result = client.evaluate_incident(GUIDE, incident, SHARED, actions, request_id=longest)

    ids = [record.decision.request_id for record in client.list_decisions(
        DecisionFilter(incident_ref=incident), page_size=100
    ).records]
    assert sorted(ids) == sorted(f"{longest}#{i}" for i in range(len(actions)))
    assert max(map(len, ids)) == field_limits.REQUEST_ID
    assert client.get_decision(result.decisions[-1].decision_id).decision.request_id == f"{longest}#49"
    assert client.verify_chain().intact

    too_long = "r" * (field_limits.INCIDENT_REQUEST_ID + 1)
    with pytest.raises(InvalidRequestError) as by_field:
        client.evaluate_incident(GUIDE, _incident(), SHARED, actions[:1], request_id=too_long)
    assert [(v.field, v.description) for v in by_field.value.violations] == [
        ("request_id", "must be at most 125 characters, got 126")
    ]
    request = evaluation_service_pb2.EvaluateIncidentRequest(policy=GUIDE, incident_ref=_incident())
    request.actions.add().subject.staff_ref = "S-1"
    stub = evaluation_service_pb2_grpc.EvaluationServiceStub(channel)
    assert _refused_fields(
        lambda: stub.EvaluateIncident(request, timeout=30, metadata=(("x-request-id", too_long),))
    ) == [("x-request-id", "must be at most 125 characters, got 126")]
    assert _recorded(client, request.incident_ref) == []


def test_an_evaluate_request_id_can_never_be_an_incident_actions_id(
    stored: tuple[FairpathClient, grpc.Channel],
) -> None:
    """`#` is refused in an Evaluate id (field or header): no Evaluate replays or collides with an action's decision."""
    client, channel = stored
    incident = _incident()
    request_id = f"req-{incident}"
    first = client.evaluate_incident(GUIDE, incident, SHARED, _actions(("S-1", MANAGEMENT)), request_id=request_id)
    action_id = first.decisions[0].request_id
    assert action_id == f"{request_id}#0"

    with pytest.raises(InvalidRequestError) as same_payload:  # what once replayed the action's decision
        client.evaluate(
            GUIDE, SHARED, subject={"incident_ref": incident, "staff_ref": "S-1", "action_ref": "A-0"},
            request_id=action_id,
        )
    [(field, description)] = [(v.field, v.description) for v in same_payload.value.violations]
    assert field == "request_id"
    assert description.startswith("must not contain '#'")
    request = evaluation_service_pb2.EvaluateRequest(policy=GUIDE)
    request.facts.update(SHARED)
    stub = evaluation_service_pb2_grpc.EvaluationServiceStub(channel)
    [(header, _)] = _refused_fields(lambda: stub.Evaluate(request, timeout=30, metadata=(("x-request-id", "a#1"),)))
    assert header == "x-request-id"
    assert [d.decision_id for d in _recorded(client, incident)] == [first.decisions[0].decision_id]

    # The incident's own id is not an action's: Evaluate may use it, and an incident id may hold '#'.
    assert client.evaluate(GUIDE, SHARED, request_id=request_id).request_id == request_id
    nested = client.evaluate_incident(GUIDE, _incident(), SHARED, _actions(("S-1", {})), request_id=f"{request_id}#0")
    assert nested.decisions[0].request_id == f"{request_id}#0#0"
