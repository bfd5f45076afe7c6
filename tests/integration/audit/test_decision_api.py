"""Recording through Evaluate, reviewing through DecisionService: a real gRPC server, both stores."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import structlog
import yaml
from fairpath.api.auth import hash_token
from fairpath.app import build_server
from fairpath.audit import DecisionFilter as StoreFilter
from fairpath.audit import DecisionStore
from fairpath.config import Config
from fairpath.serving.evaluator import Evaluator
from fairpath.v1 import (
    decision_pb2,
    evaluation_service_pb2,
    evaluation_service_pb2_grpc,
)
from fairpath_client import (
    DecisionFilter,
    DecisionNotFoundError,
    FairpathClient,
    InvalidRequestError,
    Subject,
)
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from structlog.testing import capture_logs

from tests.integration.audit.conftest import GUIDE, INCOMPLETE, SUBSTANCE, Raw, drop_append_only_triggers


@pytest.fixture(name="client")
def _client(target: str) -> Iterator[FairpathClient]:
    with FairpathClient(target, timeout=30) as client:
        yield client


@pytest.fixture(name="evaluate")
def _evaluate(target: str) -> Iterator[grpc.UnaryUnaryMultiCallable]:
    with grpc.insecure_channel(target) as channel:
        yield evaluation_service_pb2_grpc.EvaluationServiceStub(channel).Evaluate


def _request(facts: dict[str, str], **fields: object) -> evaluation_service_pb2.EvaluateRequest:
    struct = struct_pb2.Struct()
    struct.update(facts)
    return evaluation_service_pb2.EvaluateRequest(policy=GUIDE, facts=struct, **fields)  # type: ignore[arg-type]


def test_evaluate_records_the_decision_before_answering(client: FairpathClient) -> None:
    """The decision returned is already in the trail, with the request's subject and request id."""
    decision = client.evaluate(
        GUIDE, SUBSTANCE, subject=Subject(incident_ref="INC-9", staff_ref="S-9"), request_id="req-1"
    )

    record = client.get_decision(decision.decision_id)

    assert record.decision.decision_id == decision.decision_id
    assert record.decision.request_id == "req-1"
    assert (record.decision.subject.incident_ref, record.decision.subject.staff_ref) == ("INC-9", "S-9")
    assert record.decision.pathway is not None
    assert record.decision.pathway.code == "JCG_B_SUBSTANCE_ABUSE"
    assert record.decision.caller == ""
    assert decision.dry_run is False
    assert record.sequence == 1
    assert len(record.hash) == 64
    assert record.masked_facts == ("intent_to_harm", "safeguarding_concern", "substance_abuse_indicated")
    assert record.facts["intent_to_harm"] == "***"
    assert [e.rule_id for e in record.decision.trace] == [e.rule_id for e in decision.trace]


def test_a_dry_run_is_answered_and_not_recorded(client: FairpathClient) -> None:
    """dry_run evaluates as usual, says so in the decision, and GetDecision does not know it."""
    decision = client.evaluate(GUIDE, SUBSTANCE, dry_run=True)

    assert decision.dry_run is True
    with pytest.raises(DecisionNotFoundError):
        client.get_decision(decision.decision_id)


def test_a_repeated_request_id_header_or_field_returns_the_first_decision(
    client: FairpathClient, evaluate: grpc.UnaryUnaryMultiCallable
) -> None:
    """Retrying with the same request id (in the field or the x-request-id header) records nothing new."""
    first = client.evaluate(GUIDE, SUBSTANCE, request_id="retry-me")
    by_field = evaluate(_request(SUBSTANCE, request_id="retry-me"), timeout=10).decision
    by_header = evaluate(_request(SUBSTANCE), metadata=(("x-request-id", "retry-me"),), timeout=10).decision

    assert by_field.decision_id == by_header.decision_id == first.decision_id
    assert by_field.pathway.code == "JCG_B_SUBSTANCE_ABUSE"
    assert len(client.list_decisions().records) == 1


def test_concurrent_calls_with_one_request_id_leave_one_record(
    evaluate: grpc.UnaryUnaryMultiCallable, client: FairpathClient
) -> None:
    """Twelve simultaneous Evaluate calls sharing a request id all answer with one decision."""
    ids: list[str] = []
    start = threading.Barrier(12)

    def call() -> None:
        start.wait()
        ids.append(evaluate(_request(SUBSTANCE, request_id="burst"), timeout=30).decision.decision_id)

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(ids) == 12
    assert len(set(ids)) == 1
    assert [r.decision.decision_id for r in client.list_decisions().records] == ids[:1]


def test_eight_threads_of_500_calls_leave_4000_records_and_an_intact_chain(
    evaluate: grpc.UnaryUnaryMultiCallable, client: FairpathClient, store: DecisionStore
) -> None:
    """Concurrent recording loses nothing, duplicates nothing and keeps the chain whole."""
    received: list[set[str]] = [set() for _ in range(8)]
    requests = [_request(SUBSTANCE), _request(INCOMPLETE)]

    def call(index: int) -> None:
        for n in range(500):
            received[index].add(evaluate(requests[n % 2], timeout=60).decision.decision_id)

    threads = [threading.Thread(target=call, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    everything = set().union(*received)
    recorded = [s.decision.decision_id for s in store.iter_decisions(StoreFilter())]
    assert len(everything) == 4000
    assert len(recorded) == 4000
    assert set(recorded) == everything
    report = client.verify_chain(timeout=120)
    assert report.intact, report.problem
    assert report.records_checked == 4000


def test_list_filters_and_pages_through_the_trail(client: FairpathClient) -> None:
    """Filters reach the store; pages chain by token and end with an empty token."""
    made = [client.evaluate(GUIDE, SUBSTANCE, subject={"incident_ref": "INC-P"}).decision_id for _ in range(5)]
    client.evaluate(GUIDE, INCOMPLETE)

    query = DecisionFilter(incident_ref="INC-P", pathway="JCG_B_SUBSTANCE_ABUSE", rule_fired="2a")
    seen, token = [], ""
    while True:
        page = client.list_decisions(query, page_size=2, page_token=token)
        seen += [r.decision.decision_id for r in page.records]
        token = page.next_page_token
        if not token:
            break

    assert seen == made
    assert [r.decision.status for r in client.list_decisions(DecisionFilter(status="NEEDS_INFORMATION")).records] == [
        "NEEDS_INFORMATION"
    ]


def test_a_page_token_is_refused_with_another_filter_or_garbled(client: FairpathClient) -> None:
    """Tokens are opaque and bound to their filter: anything else is INVALID_ARGUMENT naming page_token."""
    for _ in range(3):
        client.evaluate(GUIDE, SUBSTANCE)
    token = client.list_decisions(page_size=1).next_page_token

    with pytest.raises(InvalidRequestError) as other:
        client.list_decisions(DecisionFilter(policy=GUIDE), page_size=1, page_token=token)
    with pytest.raises(InvalidRequestError) as garbled:
        client.list_decisions(page_token="not-a-token")  # noqa: S106 - not a password

    assert [v.field for v in other.value.violations] == ["page_token"]
    assert [v.field for v in garbled.value.violations] == ["page_token"]


def test_newest_first_pages_back_through_the_filtered_trail(client: FairpathClient) -> None:
    """Newest first, ListDecisions pages the filtered trail back from its newest record, token by token.

    A token from one order is INVALID_ARGUMENT in the other, naming page_token.
    """
    made = [client.evaluate(GUIDE, SUBSTANCE, subject={"incident_ref": "INC-N"}).decision_id for _ in range(5)]
    client.evaluate(GUIDE, INCOMPLETE, subject={"incident_ref": "INC-N"})
    client.evaluate(GUIDE, SUBSTANCE, subject={"incident_ref": "INC-OTHER"})

    query = DecisionFilter(incident_ref="INC-N", pathway="JCG_B_SUBSTANCE_ABUSE")
    seen, token, pages = [], "", 0
    while True:
        page = client.list_decisions(query, page_size=2, page_token=token, newest_first=True)
        seen += [r.decision.decision_id for r in page.records]
        token, pages = page.next_page_token, pages + 1
        if not token:
            break
    newest = client.list_decisions(query, page_size=2, newest_first=True).next_page_token
    oldest = client.list_decisions(query, page_size=2).next_page_token
    with pytest.raises(InvalidRequestError) as oldest_token_newest_first:
        client.list_decisions(query, page_size=2, page_token=oldest, newest_first=True)
    with pytest.raises(InvalidRequestError) as newest_token_oldest_first:
        client.list_decisions(query, page_size=2, page_token=newest)

    assert seen == made[::-1]
    assert pages == 3
    assert [v.field for v in oldest_token_newest_first.value.violations] == ["page_token"]
    assert [v.field for v in newest_token_oldest_first.value.violations] == ["page_token"]
    assert "order" in str(newest_token_oldest_first.value)


def test_an_unknown_order_is_invalid_argument(target: str) -> None:
    """An order value this service does not know is refused, naming the order field, not served oldest first."""
    from fairpath.v1 import decision_service_pb2, decision_service_pb2_grpc  # noqa: PLC0415

    with grpc.insecure_channel(target) as channel:
        stub = decision_service_pb2_grpc.DecisionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.ListDecisions(decision_service_pb2.ListDecisionsRequest(order=7), timeout=30)  # type: ignore[arg-type]

    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "order" in str(refused.value.details())


def test_export_streams_every_matching_record(client: FairpathClient) -> None:
    """ExportDecisions is a server stream of the filtered trail, oldest first."""
    made = [client.evaluate(GUIDE, SUBSTANCE).decision_id for _ in range(4)]
    client.evaluate(GUIDE, INCOMPLETE)

    exported = [
        r.decision.decision_id for r in client.export_decisions(DecisionFilter(pathway="JCG_B_SUBSTANCE_ABUSE"))
    ]

    assert exported == made


def test_record_outcome_reports_departure_and_shows_with_the_decision(client: FairpathClient) -> None:
    """What people did is appended and shown with the decision; departing from the pathway is flagged."""
    decision = client.evaluate(GUIDE, SUBSTANCE)

    followed = client.record_outcome(decision.decision_id, "JCG_B_SUBSTANCE_ABUSE", "hr-1", "per guidance")
    departed = client.record_outcome(decision.decision_id, "FORMAL_DISCIPLINARY", "hr-2", "second incident")
    record = client.get_decision(decision.decision_id)

    assert (followed.departs_from_recommendation, departed.departs_from_recommendation) == (False, True)
    assert [(o.action_taken, o.reviewer, o.sequence) for o in record.outcomes] == [
        ("JCG_B_SUBSTANCE_ABUSE", "hr-1", 2),
        ("FORMAL_DISCIPLINARY", "hr-2", 3),
    ]


def test_record_outcome_refuses_unknown_decisions_and_missing_fields(client: FairpathClient) -> None:
    """NOT_FOUND for a decision never recorded; INVALID_ARGUMENT naming each missing field."""
    decision = client.evaluate(GUIDE, SUBSTANCE)

    with pytest.raises(DecisionNotFoundError):
        client.record_outcome("no-such-decision", "X", "reviewer")
    with pytest.raises(InvalidRequestError) as missing:
        client.record_outcome(decision.decision_id, " ", "")

    assert {v.field for v in missing.value.violations} == {"action_taken", "reviewer"}


def test_verify_chain_reports_the_first_broken_link(client: FairpathClient, raw: Raw, store_url: str) -> None:
    """VerifyChain walks the whole trail and names the first record that was altered."""
    for _ in range(3):
        client.evaluate(GUIDE, SUBSTANCE)
    assert client.verify_chain().intact

    drop_append_only_triggers(raw, store_url)
    raw("UPDATE decisions SET staff_ref = 'someone-else' WHERE sequence = 2", ())
    report = client.verify_chain()

    assert (report.intact, report.first_broken_sequence) == (False, 2)


def test_decision_service_is_in_health_and_reflection(target: str) -> None:
    """Health reports the DecisionService as SERVING once the server has started."""
    with grpc.insecure_channel(target) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="fairpath.v1.DecisionService"), timeout=5
        )

    assert status.status == health_pb2.HealthCheckResponse.SERVING


def test_facts_and_equality_group_are_never_logged(evaluate: grpc.UnaryUnaryMultiCallable) -> None:
    """Neither a fact value nor the equality group appears in any log event of a recorded Evaluate."""
    request = _request({**SUBSTANCE, "professional_group": "PARAMEDIC"}, request_id="logged")
    request.subject.CopyFrom(decision_pb2.Subject(incident_ref="INC-L", equality_group="EQ-SECRET-7"))

    # With the request context merged in, as the server's log lines carry it.
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as events:
        evaluate(request, timeout=10)

    text = repr(events)
    assert "'rpc'" in text
    assert "'logged'" in text
    assert "JCG_B_SUBSTANCE_ABUSE" in text
    assert "EQ-SECRET-7" not in text
    assert "PARAMEDIC" not in text


def test_the_authenticated_caller_is_recorded_and_outcomes_default_to_it(
    evaluator: Evaluator, store: DecisionStore, tmp_path: Path
) -> None:
    """With auth on, the record names the caller who asked, and an outcome without reviewer names its caller."""
    config = tmp_path / "auth.yaml"
    config.write_text(
        yaml.safe_dump(
            {"tokens": {"hr-portal": {"sha256": hash_token("t0k-hr-portal"), "roles": ["evaluator", "auditor"]}}}
        ),
        encoding="utf-8",
    )
    running = build_server(Config(host="127.0.0.1", port=0, auth_config=str(config)), evaluator, store=store)
    running.start()
    try:
        with FairpathClient(f"127.0.0.1:{running.port}", token="t0k-hr-portal") as client:  # noqa: S106
            decision = client.evaluate(GUIDE, SUBSTANCE)
            outcome = client.record_outcome(decision.decision_id, "JCG_B_SUBSTANCE_ABUSE")
            record = client.get_decision(decision.decision_id)
    finally:
        running.stop(None).wait(5)

    assert record.decision.caller == "token:hr-portal"
    assert outcome.reviewer == "token:hr-portal"
