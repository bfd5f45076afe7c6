"""Oversized and malformed fields through a real server and the real client, on SQLite and PostgreSQL.

Every string field of every RPC has a maximum (``fairpath.api.field_limits``). Each case here sends
one field over it and expects ``INVALID_ARGUMENT`` with a ``BadRequest`` violation naming the field,
the client's typed exception (never ``ServiceBusyError``, which tells callers to retry), and a whole
error that fits gRPC's 8 KiB trailers. Afterwards the trail must still be whole: every record
listed, shown and exported, and the chain intact, which a 4 MB ``incident_ref`` used to prevent for
good (the record no longer fit in a message).
"""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import grpc
import pytest
import structlog
from fairpath import logs
from fairpath.api import field_limits
from fairpath.cli import main
from fairpath.policy.facts import MAX_FACT_NAME, MAX_STRING
from fairpath.serving.evaluator import Evaluator
from fairpath.v1 import (
    decision_service_pb2,
    decision_service_pb2_grpc,
    evaluation_service_pb2,
    evaluation_service_pb2_grpc,
    policy_service_pb2,
    policy_service_pb2_grpc,
)
from fairpath_client import (
    DecisionFilter,
    FairpathClient,
    FairpathClientError,
    InvalidFactsError,
    InvalidRequestError,
    Subject,
    from_rpc_error,
)

from tests.conftest import GUIDE
from tests.integration.audit.conftest import SUBSTANCE
from tests.support.servers import serving
from tests.support.store_urls import store_url

#: gRPC's default limit on the metadata (here: the trailers carrying the error) a peer accepts.
GRPC_METADATA_LIMIT = 8 * 1024
#: The reported case: an incident reference just under the 4 MiB message limit.
HUGE = 4_185_000


@dataclass
class Trail:
    """A served store, a client to it, and the decision recorded before the hostile calls."""

    target: str
    client: FairpathClient
    channel: grpc.Channel
    decision_id: str


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def trail(
    request: pytest.FixtureRequest, evaluator: Evaluator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Trail]:
    """Serve a fresh store of each kind holding one ordinary decision; shared by this module's tests."""
    with (
        store_url(request.param, tmp_path_factory.mktemp("hostile")) as url,
        serving(evaluator, store=url) as running,
    ):
        target = f"127.0.0.1:{running.port}"
        with FairpathClient(target, timeout=30) as client, grpc.insecure_channel(target) as channel:
            decision = client.evaluate(GUIDE, SUBSTANCE, subject=Subject(incident_ref="INC-1"))
            yield Trail(target, client, channel, decision.decision_id)


def _wire_size(call: grpc.RpcError) -> int:
    """Bytes the error took in the trailers: grpc-message percent-encoded, -bin values base64, HPACK's 32 each."""
    assert isinstance(call, grpc.Call)
    printable = "".join(map(chr, range(0x20, 0x7F))).replace("%", "")
    size = len("grpc-message") + len(quote((call.details() or "").encode(), safe=printable)) + 32
    for key, value in call.trailing_metadata() or ():
        encoded = base64.b64encode(value) if isinstance(value, bytes) else value.encode()
        size += len(key) + len(encoded) + 32
    return size


def _refusal(send: Callable[[Trail], object], trail: Trail) -> FairpathClientError:
    """Run ``send``, which must fail; return the client's exception after checking its size."""
    with pytest.raises(FairpathClientError) as caught:
        send(trail)
    error = caught.value
    assert isinstance(error.__cause__, grpc.RpcError), "the client did not get a gRPC status"
    # Comfortably under: the server keeps a status to 4 KiB; other trailers and HPACK's overhead come on top.
    assert _wire_size(error.__cause__) < GRPC_METADATA_LIMIT * 3 // 4
    return error


def _raw(call: Callable[[grpc.Channel], object]) -> Callable[[Trail], object]:
    """Send through a generated stub (for RPCs the client does not wrap), mapped as the client maps errors."""

    def send(trail: Trail) -> object:
        try:
            return call(trail.channel)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    return send


def _evaluate(**fields: Any) -> Callable[[Trail], object]:
    return lambda trail: trail.client.evaluate(GUIDE, SUBSTANCE, **fields)


def _incident(**fields: Any) -> Callable[[Trail], object]:
    arguments = {"policy": GUIDE, "incident_ref": "INC-9", "facts": SUBSTANCE, "actions": [{"staff_ref": "S-1"}],
                 **fields}
    return lambda trail: trail.client.evaluate_incident(**arguments)


def _validate(**fields: str) -> Callable[[Trail], object]:
    request = policy_service_pb2.ValidatePolicyRequest(**fields)
    return _raw(lambda channel: policy_service_pb2_grpc.PolicyServiceStub(channel).ValidatePolicy(request, timeout=30))


def _verify(**fields: Any) -> Callable[[Trail], object]:
    request = decision_service_pb2.VerifyChainRequest(**fields)
    return _raw(lambda channel: decision_service_pb2_grpc.DecisionServiceStub(channel).VerifyChain(request, timeout=30))


def _header_id(request_id: str) -> Callable[[Trail], object]:
    request = evaluation_service_pb2.EvaluateRequest(policy=GUIDE)
    request.facts.update(SUBSTANCE)
    return _raw(
        lambda channel: evaluation_service_pb2_grpc.EvaluationServiceStub(channel).Evaluate(
            request, timeout=30, metadata=(("x-request-id", request_id),)
        )
    )


def _outcome(trail: Trail, **fields: str) -> object:
    arguments = {"decision_id": trail.decision_id, "action_taken": "JCG_B_SUBSTANCE_ABUSE", **fields}
    return trail.client.record_outcome(**arguments)


def _filter(**fields: str) -> DecisionFilter:
    return DecisionFilter(**fields)  # type: ignore[arg-type]


# (case, send, field named by the violation). Lengths are one over the maximum, or megabytes.
CASES: list[tuple[str, Callable[[Trail], object], str]] = [
    ("evaluate incident_ref 4,185,000", _evaluate(subject=Subject(incident_ref="i" * HUGE)), "subject.incident_ref"),
    ("evaluate staff_ref", _evaluate(subject=Subject(staff_ref="s" * (field_limits.REF + 1))), "subject.staff_ref"),
    ("evaluate action_ref", _evaluate(subject=Subject(action_ref="a" * 1_000_000)), "subject.action_ref"),
    ("evaluate equality_group", _evaluate(subject=Subject(equality_group="G" * 65)), "subject.equality_group"),
    ("evaluate policy 3 MB", lambda trail: trail.client.evaluate("p" * 3_000_000, SUBSTANCE), "policy"),
    ("evaluate version", _evaluate(version="1" * (field_limits.VERSION + 1)), "version"),
    ("evaluate request_id 129", _evaluate(request_id="r" * (field_limits.REQUEST_ID + 1)), "request_id"),
    # Too long for a header as well: the client sends it in the request only, where it can be refused.
    ("evaluate request_id 3 MB", _evaluate(request_id="r" * 3_000_000), "request_id"),
    ("evaluate request_id unprintable", _evaluate(request_id="a\nb"), "request_id"),
    # Echoed in the x-request-id trailer, a non-ASCII id once gave INTERNAL for a decision already recorded.
    ("evaluate request_id non-ASCII", _evaluate(request_id="caf\u00e9"), "request_id"),
    ("evaluate x-request-id header 129", _header_id("h" * (field_limits.REQUEST_ID + 1)), "x-request-id"),
    ("incident incident_ref 4,185,000", _incident(incident_ref="i" * HUGE), "incident_ref"),
    ("incident policy", _incident(policy="p" * 65), "policy"),
    ("incident request_id 129", _incident(request_id="r" * (field_limits.REQUEST_ID + 1)), "request_id"),
    ("incident action staff_ref", _incident(actions=[{"staff_ref": "S-1"}, {"staff_ref": "s" * 3_000_000}]),
     "actions[1].subject.staff_ref"),
    ("incident 51 actions", _incident(actions=[{"staff_ref": f"S-{n}"} for n in range(51)]), "actions"),
    ("get_policy name 3 MB", lambda trail: trail.client.get_policy("n" * 3_000_000), "name"),
    ("get_policy version", lambda trail: trail.client.get_policy(GUIDE, "9" * 65), "version"),
    ("validate path", _validate(policy_text="policy: x\n", path="p" * (field_limits.POLICY_PATH + 1)), "path"),
    ("validate policy_text", _validate(policy_text="#" * (field_limits.POLICY_TEXT + 1)), "policy_text"),
    ("validate tests_text", _validate(policy_text="policy: x\n", tests_text="#" * (field_limits.TESTS_TEXT + 1)),
     "tests_text"),
    ("get_decision id", lambda trail: trail.client.get_decision("d" * 3_000_000), "decision_id"),
    ("list page_token", lambda trail: trail.client.list_decisions(page_token="t" * 3_000_000), "page_token"),
    ("list filter.incident_ref", lambda trail: trail.client.list_decisions(_filter(incident_ref="i" * HUGE)),
     "filter.incident_ref"),
    ("list filter.policy", lambda trail: trail.client.list_decisions(_filter(policy="p" * 65)), "filter.policy"),
    ("list filter.rule_fired", lambda trail: trail.client.list_decisions(_filter(rule_fired="r" * 65)),
     "filter.rule_fired"),
    ("export filter.staff_ref", lambda trail: list(trail.client.export_decisions(_filter(staff_ref="s" * HUGE))),
     "filter.staff_ref"),
    ("export filter.pathway", lambda trail: list(trail.client.export_decisions(_filter(pathway="P" * 65))),
     "filter.pathway"),
    ("outcome decision_id", lambda trail: _outcome(trail, decision_id="d" * 65), "decision_id"),
    ("outcome action_taken", lambda trail: _outcome(trail, action_taken="A" * 201), "action_taken"),
    ("outcome reviewer", lambda trail: _outcome(trail, reviewer="r" * 3_000_000), "reviewer"),
    ("outcome reason", lambda trail: _outcome(trail, reason="why" * 1_000_000), "reason"),
    ("replay version", lambda trail: trail.client.replay_decisions(candidate="1" * 65), "version"),
    ("replay policy", lambda trail: trail.client.replay_decisions("p" * 3_000_000, "1.0.0"), "policy"),
    ("replay period", lambda trail: trail.client.replay_decisions(candidate="1.0.0", period="q" * 17), "period"),
    ("replay reference_group", lambda trail: trail.client.replay_decisions(candidate="1.0.0", reference_group="G" * 65),
     "reference_group"),
    ("replay filter.action_ref",
     lambda trail: trail.client.replay_decisions(candidate="1.0.0", query=_filter(action_ref="a" * HUGE)),
     "filter.action_ref"),
    ("stats policy", lambda trail: trail.client.outcome_stats("p" * 3_000_000), "policy"),
    ("stats version", lambda trail: trail.client.outcome_stats(GUIDE, "1" * 65), "version"),
    ("stats period", lambda trail: trail.client.outcome_stats(period="p" * 3_000_000), "period"),
    ("stats reference_group", lambda trail: trail.client.outcome_stats(reference_group="G" * 65), "reference_group"),
    ("verify public_key", _verify(public_key="k" * (field_limits.PUBLIC_KEY + 1)), "public_key"),
    ("verify checkpoint", _verify(checkpoints=["c" * (field_limits.CHECKPOINT + 1)]), "checkpoints[0]"),
]


@pytest.mark.parametrize(("case", "send", "field"), CASES, ids=[case[0] for case in CASES])
def test_an_oversized_field_is_refused_naming_it(
    trail: Trail, case: str, send: Callable[[Trail], object], field: str
) -> None:
    """INVALID_ARGUMENT (INVALID_REQUEST) naming the field, small enough to arrive, as InvalidRequestError."""
    error = _refusal(send, trail)
    assert type(error) is InvalidRequestError, f"{case}: {error!r}"
    assert (error.code, error.reason) == ("INVALID_ARGUMENT", "INVALID_REQUEST")
    assert field in [violation.field for violation in error.violations]
    assert len(error.message) < 2000


def test_sixty_undeclared_facts_with_long_names_are_invalid_facts_not_busy(trail: Trail) -> None:
    """The reported case: once RESOURCE_EXHAUSTED (metadata too large) and so a retryable ServiceBusyError."""
    facts = {f"undeclared_{'x' * 48}_{index:04}": "YES" for index in range(60)}
    error = _refusal(lambda trail: trail.client.evaluate(GUIDE, {**SUBSTANCE, **facts}), trail)
    assert type(error) is InvalidFactsError
    assert error.code == "INVALID_ARGUMENT"
    assert len(error.violations) == 11
    assert all(violation.field.startswith("facts.undeclared_") for violation in error.violations[:10])
    assert (error.violations[-1].field, error.violations[-1].description) == ("facts", "and 50 more")


@pytest.mark.parametrize(
    ("facts", "field"),
    [
        ({"n" * 3000: "YES"}, f"facts.{'n' * MAX_FACT_NAME}…"),
        ({"is_patient_safety_incident": "Y" * (MAX_STRING + 1)}, "facts.is_patient_safety_incident"),
        ({"professional_group": ["X"] * 10_000}, "facts.professional_group"),
    ],
    ids=["name 3000", "text 1001", "list 10000"],
)
def test_absurd_facts_are_invalid_facts_naming_them_briefly(trail: Trail, facts: dict[str, object], field: str) -> None:
    """A fact name longer than any fact's, text longer than a string fact, a huge list: refused at the door."""
    error = _refusal(lambda trail: trail.client.evaluate(GUIDE, {**SUBSTANCE, **facts}), trail)
    assert type(error) is InvalidFactsError
    assert [violation.field for violation in error.violations] == [field]


def test_an_incident_action_with_sixty_undeclared_facts_is_named_by_its_index(trail: Trail) -> None:
    """EvaluateIncident's per-action facts are capped the same way, the violations naming the action."""
    facts = {f"undeclared_{'x' * 48}_{index:04}": "YES" for index in range(60)}
    send = _incident(actions=[{"staff_ref": "S-1"}, {"staff_ref": "S-2", "facts": facts}])
    error = _refusal(send, trail)
    assert type(error) is InvalidFactsError
    assert len(error.violations) == 11
    assert all(violation.field.startswith("actions[1].facts.undeclared_") for violation in error.violations[:10])
    assert error.violations[-1].description == "and 50 more"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


@pytest.fixture(name="quiet")
def _quiet() -> Iterator[None]:
    """Keep the in-process server's access log out of the command output the test reads."""
    previous = structlog.get_config()
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
    yield
    structlog.configure(**previous)


def test_the_trail_stays_whole_after_hostile_calls(
    trail: Trail, capsys: pytest.CaptureFixture[str], quiet: None
) -> None:
    """Refused calls record nothing; records with every field at its maximum are all listed, shown, exported.

    A 129-character request id sent twice makes no decision (it used to make a new one each time). The
    largest valid record (4-byte characters in every field that takes them) is listed, shown and exported
    with the rest, and the chain is intact.
    """
    client = trail.client
    before = [record.decision.decision_id for record in client.export_decisions()]
    too_long_id = "r" * (field_limits.REQUEST_ID + 1)
    for send in (
        _evaluate(subject=Subject(incident_ref="i" * HUGE)),
        _evaluate(request_id=too_long_id),
        _evaluate(request_id=too_long_id),
        _header_id(too_long_id),
        lambda trail: _outcome(trail, reason="r" * (field_limits.REASON + 1)),
    ):
        _refusal(send, trail)
    assert [record.decision.decision_id for record in client.export_decisions()] == before

    widest = "\U0001f600"  # 4 bytes in UTF-8: the largest a character can be
    subject = Subject(
        incident_ref=widest * field_limits.REF, staff_ref=widest * field_limits.REF,
        action_ref=widest * field_limits.REF, equality_group=widest * field_limits.EQUALITY_GROUP,
    )
    largest = client.evaluate(GUIDE, SUBSTANCE, subject=subject, request_id="~" * field_limits.REQUEST_ID)
    client.record_outcome(
        largest.decision_id, widest * field_limits.ACTION, reviewer=widest * field_limits.REVIEWER,
        reason=widest * field_limits.REASON,
    )
    ids = [*before, largest.decision_id]

    code, listed = _run(capsys, "decisions", "list", "--target", trail.target, "--all", "--json")
    assert code == 0
    assert [json.loads(line)["decision"]["decision_id"] for line in listed.splitlines()][-len(ids):] == ids
    code, exported = _run(capsys, "decisions", "export", "--target", trail.target)
    assert code == 0
    assert [json.loads(line)["decision"]["decision_id"] for line in exported.splitlines()][-len(ids):] == ids
    for decision_id in ids:
        code, shown = _run(capsys, "decisions", "show", "--target", trail.target, decision_id)
        assert code == 0
        assert decision_id in shown
    stored = client.get_decision(largest.decision_id)
    assert stored.decision.subject.incident_ref == widest * field_limits.REF
    assert stored.outcomes[-1].reason == widest * field_limits.REASON
    code, _ = _run(capsys, "decisions", "verify", "--target", trail.target)
    assert code == 0
    assert client.verify_chain().intact


def test_the_cli_prints_each_violation_and_exits_2(
    trail: Trail, capsys: pytest.CaptureFixture[str], quiet: None, tmp_path: Path
) -> None:
    """`fairpath evaluate` with an over-long reference and request id: one line per field, exit 2, no record."""
    facts = tmp_path / "facts.yaml"
    facts.write_text('is_patient_safety_incident: "YES"\n', encoding="utf-8")
    before = len(list(trail.client.export_decisions()))
    code = main([
        "evaluate", "--target", trail.target, "--policy", GUIDE, "--facts", str(facts),
        "--incident-ref", "INC-" * 50, "--request-id", "r" * 129,
    ])
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        "subject.incident_ref: must be at most 128 characters, got 200",
        "request_id: must be at most 128 characters, got 129",
    ]
    assert len(list(trail.client.export_decisions())) == before


@pytest.fixture(name="log_stream")
def _log_stream() -> Iterator[io.StringIO]:
    """Render the server's log as in production (JSON lines) into a buffer; restore logging after."""
    stream = io.StringIO()
    root_level = logging.getLogger().level
    handler = logs.configure("info", "json", stream=stream, cache=False)
    yield stream
    logging.getLogger().removeHandler(handler)
    logging.getLogger().setLevel(root_level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.mark.parametrize(
    "send",
    [
        lambda trail: trail.client.evaluate("p" * 3_000_000, SUBSTANCE),
        lambda trail: trail.client.get_policy("p" * 3_000_000),
    ],
    ids=["Evaluate", "GetPolicy"],
)
def test_the_log_line_of_a_3_mb_policy_name_is_short(
    trail: Trail, log_stream: io.StringIO, send: Callable[[Trail], object]
) -> None:
    """The server's access line for the call is written, short, and does not hold the name."""
    _refusal(send, trail)
    lines = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    [access] = [line for line in lines if line.get("event") == "rpc"]
    assert access["code"] == "INVALID_ARGUMENT"
    assert all(len(line) < 2000 for line in log_stream.getvalue().splitlines())
    assert "p" * 100 not in log_stream.getvalue()


def test_no_case_is_missing_an_rpc() -> None:
    """Every RPC whose request has a string field has a case above, so a new one cannot go untested."""
    tested = {
        "Evaluate", "EvaluateIncident", "GetPolicy", "ValidatePolicy", "GetDecision", "ListDecisions",
        "ExportDecisions", "RecordOutcome", "ReplayDecisions", "OutcomeStats", "VerifyChain",
    }
    with_strings = {
        method.name
        for module in (evaluation_service_pb2, decision_service_pb2, policy_service_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
        if method.input_type.full_name in field_limits.FIELD_LIMITS
    }
    assert with_strings <= tested, with_strings - tested
