"""Limits on a real server: message size, concurrency cap, deadlines, absurd facts, and health under load."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from fairpath.api.limits import MAX_FACT_DEPTH
from fairpath.api.server import Running
from fairpath.policy.facts import MAX_FACTS
from fairpath.serving.evaluator import Evaluator
from fairpath.v1 import evaluation_service_pb2, evaluation_service_pb2_grpc
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from tests.support.servers import Hold, free_port, serving

GUIDE = "nhs-just-culture-guide"
EVALUATE = "/fairpath.v1.EvaluationService/Evaluate"


@pytest.fixture
def hold() -> Iterator[Hold]:
    """Make a fresh holder, released at the end of the test whatever happened."""
    holder = Hold()
    yield holder
    holder.release.set()


def _evaluate_request(facts: dict[str, object] | None = None) -> evaluation_service_pb2.EvaluateRequest:
    request = evaluation_service_pb2.EvaluateRequest(policy=GUIDE)
    request.facts.update(facts or {})
    return request


def _code(error: grpc.RpcError) -> grpc.StatusCode:
    assert isinstance(error, grpc.Call)
    return error.code()


def _still_serving(running: Running) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        response = evaluation_service_pb2_grpc.EvaluationServiceStub(channel).Evaluate(
            _evaluate_request(), timeout=5
        )
    assert response.decision.decision_id


def test_oversized_request_is_resource_exhausted(evaluator: Evaluator) -> None:
    """A request above --max-message-bytes is refused with RESOURCE_EXHAUSTED and the server carries on."""
    with serving(evaluator, max_message_bytes=64 * 1024) as running:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = evaluation_service_pb2_grpc.EvaluationServiceStub(channel)
            with pytest.raises(grpc.RpcError) as error:
                stub.Evaluate(_evaluate_request({"notes": "x" * 100_000}), timeout=5)
        assert _code(error.value) is grpc.StatusCode.RESOURCE_EXHAUSTED
        _still_serving(running)


def test_calls_beyond_the_concurrency_cap_are_refused_not_queued(evaluator: Evaluator, hold: Hold) -> None:
    """With --max-concurrent-rpcs in use, the next call gets RESOURCE_EXHAUSTED at once instead of waiting."""
    with serving(evaluator, threads=4, max_concurrent_rpcs=2) as running:
        running.server.add_generic_rpc_handlers((hold.handler(),))
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            held = hold.occupy(channel, 2)
            stub = evaluation_service_pb2_grpc.EvaluationServiceStub(channel)
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as error:
                stub.Evaluate(_evaluate_request(), timeout=5)
            assert _code(error.value) is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert time.monotonic() - started < 2, "the refused call waited instead of being shed"
            hold.release.set()
            assert [future.result() for future in held] == [b"released", b"released"]
        _still_serving(running)


def test_call_whose_deadline_passed_in_the_queue_is_not_evaluated(evaluator: Evaluator, hold: Hold) -> None:
    """A call still queued when its deadline passes gets DEADLINE_EXCEEDED and no decision is made for it."""
    with serving(evaluator, threads=1) as running:
        running.server.add_generic_rpc_handlers((hold.handler(),))
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            held = hold.occupy(channel, 1)  # the only worker thread is busy
            stub = evaluation_service_pb2_grpc.EvaluationServiceStub(channel)
            with capture_logs(processors=[merge_contextvars]) as logs:
                started = time.monotonic()
                with pytest.raises(grpc.RpcError) as error:
                    stub.Evaluate(_evaluate_request(), timeout=0.3)
                assert _code(error.value) is grpc.StatusCode.DEADLINE_EXCEEDED
                assert time.monotonic() - started < 2, "the deadline was not honoured"
                hold.release.set()
                held[0].result()
                _still_serving(running)  # the thread is free again and reaches the queued call's slot
        # gRPC drops a call cancelled before its handler ran, and the limits check refuses one whose deadline
        # expired after: either way no Evaluate before the final check made a decision.
        decided = [line for line in logs if line.get("method") == EVALUATE and "decision_id" in line]
        assert len(decided) == 1, decided


def _nested_struct_bytes(depth: int) -> bytes:
    value: dict[str, object] = {"leaf": "YES"}
    for _ in range(depth):
        value = {"deeper": value}
    request = evaluation_service_pb2.EvaluateRequest(policy=GUIDE)
    request.facts.update({"is_patient_safety_incident": value})
    return request.SerializeToString()


@pytest.mark.parametrize("depth", [40, 200])
def test_facts_nested_past_the_parser_limit_are_invalid_argument(evaluator: Evaluator, depth: int) -> None:
    """Facts protobuf cannot parse (nested past its depth limit) are INVALID_ARGUMENT, not INTERNAL."""
    with serving(evaluator) as running:
        channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
        with channel, pytest.raises(grpc.RpcError) as error:
            channel.unary_unary(EVALUATE)(_nested_struct_bytes(depth), timeout=5)
        assert _code(error.value) is grpc.StatusCode.INVALID_ARGUMENT
        status = rpc_status.from_call(error.value)
        assert status is not None
        info = error_details_pb2.ErrorInfo()
        status.details[0].Unpack(info)
        assert info.reason == "MALFORMED_REQUEST"
        _still_serving(running)


def test_facts_nested_deeper_than_a_fact_can_be_are_refused(channel: grpc.Channel) -> None:
    """A parseable but deeply nested fact value is INVALID_ARGUMENT naming the fact."""
    value: object = ["A"]
    for _ in range(MAX_FACT_DEPTH):
        value = [value]
    stub = evaluation_service_pb2_grpc.EvaluationServiceStub(channel)
    with pytest.raises(grpc.RpcError) as error:
        stub.Evaluate(_evaluate_request({"harm_severity": value}), timeout=5)
    assert _code(error.value) is grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(error.value) == ["facts.harm_severity"]


def test_too_many_facts_are_refused_before_conversion(channel: grpc.Channel) -> None:
    """More facts than the evaluator accepts are one INVALID_ARGUMENT violation on 'facts'."""
    request = evaluation_service_pb2.EvaluateRequest(policy=GUIDE)
    request.facts.update({f"fact_{index}": "YES" for index in range(MAX_FACTS + 1)})
    stub = evaluation_service_pb2_grpc.EvaluationServiceStub(channel)
    with pytest.raises(grpc.RpcError) as error:
        stub.Evaluate(request, timeout=5)
    assert _code(error.value) is grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(error.value) == ["facts"]


def _violations(error: grpc.RpcError) -> list[str]:
    status = rpc_status.from_call(error)
    assert status is not None
    for packed in status.details:
        if packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            packed.Unpack(bad)
            return [str(item.field) for item in bad.field_violations]
    return []


def test_struct_payload_limits_leave_ordinary_facts_alone(channel: grpc.Channel) -> None:
    """A list one level deep (the shape of a set fact) passes the depth check and meets the policy's own."""
    value = struct_pb2.Value()
    value.list_value.values.add().string_value = "A"
    request = _evaluate_request()
    request.facts.fields["harm_severity"].CopyFrom(value)
    stub = evaluation_service_pb2_grpc.EvaluationServiceStub(channel)
    with pytest.raises(grpc.RpcError) as error:
        stub.Evaluate(request, timeout=5)
    # Refused by the policy's own validation (wrong type), not by the limits: the violation says why.
    assert _code(error.value) is grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(error.value) == ["facts.harm_severity"]


def test_health_port_answers_while_the_service_is_overloaded(evaluator: Evaluator, hold: Hold) -> None:
    """Bounded load test: with the RPC cap saturated, every probe of the health port still gets SERVING."""
    probe_port = free_port()
    with serving(evaluator, threads=2, max_concurrent_rpcs=4, health_port=probe_port) as running:
        running.server.add_generic_rpc_handlers((hold.handler(),))
        target = f"127.0.0.1:{running.port}"
        with grpc.insecure_channel(target) as channel:
            held = hold.occupy(channel, 1)  # keep a slot and a thread busy: the rest are fought over
            stop = threading.Event()
            codes: Counter[str] = Counter()
            lock = threading.Lock()

            def hammer() -> None:
                with grpc.insecure_channel(target) as own:
                    stub = evaluation_service_pb2_grpc.EvaluationServiceStub(own)
                    for _ in range(400):  # bounded in count as well as time
                        if stop.is_set():
                            return
                        try:
                            stub.Evaluate(_evaluate_request(), timeout=2)
                            code = "OK"
                        except grpc.RpcError as error:
                            code = _code(error).name
                        with lock:
                            codes[code] += 1

            probes: list[tuple[str, float]] = []
            with ThreadPoolExecutor(max_workers=8) as pool:
                for _ in range(8):
                    pool.submit(hammer)
                with grpc.insecure_channel(f"127.0.0.1:{probe_port}") as probe_channel:
                    health = health_pb2_grpc.HealthStub(probe_channel)
                    ends = time.monotonic() + 2.0
                    while time.monotonic() < ends:
                        started = time.monotonic()
                        response = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                        probes.append(
                            (health_pb2.HealthCheckResponse.ServingStatus.Name(response.status),
                             time.monotonic() - started)
                        )
                        time.sleep(0.05)
                stop.set()
            hold.release.set()
            held[0].result()
    assert len(probes) >= 10
    assert {status for status, _ in probes} == {"SERVING"}
    assert max(seconds for _, seconds in probes) < 1
    assert codes["RESOURCE_EXHAUSTED"] > 0, f"the load never reached the cap: {codes}"
    assert codes["OK"] > 0, f"nothing got through: {codes}"
    assert set(codes) <= {"OK", "RESOURCE_EXHAUSTED"}, codes
