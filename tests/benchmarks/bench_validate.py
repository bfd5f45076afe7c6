"""Benchmark ValidatePolicy's isolation: what a child process costs, and what validations cost Evaluate.

Three measurements, printed side by side (nothing here is asserted; the tests pin behaviour):

1. One validation of the minimal policy and of the guide with its cases, in this process
   (``validation._validate``, as before isolation) and in a child (``validation.validate_policy``).
2. Evaluate latency in this process, alone and while another thread keeps validating drafts
   (the guide, and the issue's hostile 2,000-term text) in this process or in children.
3. Evaluate latency over gRPC against ``fairpath serve``, alone and while another client keeps
   calling ValidatePolicy with the same drafts.

Run: ``.venv/bin/python tests/benchmarks/bench_validate.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from _serve import serving  # noqa: E402 - a script beside this one
from fairpath.api import policy_validation as validation  # noqa: E402
from fairpath.serving.evaluator import Evaluator  # noqa: E402
from fairpath.v1 import (  # noqa: E402
    evaluation_service_pb2,
    evaluation_service_pb2_grpc,
    policy_service_pb2,
    policy_service_pb2_grpc,
)

from tests.support.policy_builder import minimal_policy, policy_text  # noqa: E402

GUIDE = "nhs-just-culture-guide"
FACTS = {"is_patient_safety_incident": "YES", "intent_to_harm": "NO", "investigation_stage": "CONCLUDED"}


def drafts() -> list[policy_service_pb2.ValidatePolicyRequest]:
    """The guide with its cases, and the issue's hostile text (2,000 `or` terms)."""
    folder = ROOT / "policies" / GUIDE
    hostile = minimal_policy()
    hostile["rules"][1].update(when=" or ".join(f"years >= {i}" for i in range(2000)), question="Q?")
    return [
        policy_service_pb2.ValidatePolicyRequest(
            policy_text=(folder / "1.1.0.yaml").read_text(), tests_text=(folder / "1.1.0.tests.yaml").read_text(),
            path=f"policies/{GUIDE}/1.1.0.yaml"),
        policy_service_pb2.ValidatePolicyRequest(policy_text=policy_text(hostile), path="hostile.yaml"),
    ]


def ms(samples: list[float]) -> str:
    """``mean / max`` in milliseconds."""
    return f"{statistics.fmean(samples) * 1000:8.1f} {max(samples) * 1000:8.1f}"


def latencies(call: Callable[[], object], seconds: float) -> list[float]:
    """Call ``call`` back to back for ``seconds``; return each call's duration."""
    samples: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def percentiles(samples: list[float]) -> str:
    """``p50 p99 max`` in microseconds."""
    ordered = sorted(samples)
    p50, p99 = ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{len(samples):8,} {p50 * 1e6:9.1f} {p99 * 1e6:9.1f} {ordered[-1] * 1e6:10.1f}"


def while_validating(measure: Callable[[], list[float]], validate: Callable[[], object] | None) -> list[float]:
    """Run ``measure`` while another thread calls ``validate`` over and over (or alone when None)."""
    if validate is None:
        return measure()
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            validate()

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    try:
        return measure()
    finally:
        stop.set()
        worker.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each latency phase")
    parser.add_argument("--runs", type=int, default=5, help="validations per cost figure")
    args = parser.parse_args()
    requests = drafts()
    mini = policy_service_pb2.ValidatePolicyRequest(policy_text=policy_text(minimal_policy()), path="mini.yaml")
    validation.validate_policy(mini)  # start the fork server: a once-per-process cost, not per validation
    print(f"fairpath ValidatePolicy benchmark on {os.cpu_count()} cores, Python {sys.version.split()[0]}\n")

    print(f"One validation ({args.runs} runs):            mean ms   max ms")
    for name, draft in (("minimal policy", mini), ("guide 1.1.0 + 69 cases", requests[0])):
        inside = [_timed(in_process, draft) for _ in range(args.runs)]
        child = [_timed(validation.validate_policy, draft) for _ in range(args.runs)]
        print(f"  {name:24} in process {ms(inside)}")
        print(f"  {name:24} child      {ms(child)}")

    evaluator = Evaluator.from_directory(ROOT / "policies")
    cycle = itertools.count()

    def one_of(fn: Callable[[policy_service_pb2.ValidatePolicyRequest], object]) -> Callable[[], object]:
        return lambda: fn(requests[next(cycle) % len(requests)])

    print(f"\nEvaluate in this process, {args.seconds:g} s per phase:   evals     p50 µs    p99 µs     max µs")
    phases: list[tuple[str, Callable[[], object] | None]] = [
        ("alone", None),
        ("validating in this process", one_of(in_process)),
        ("validating in children", one_of(validation.validate_policy)),
    ]
    for name, validate in phases:
        samples = while_validating(
            lambda: latencies(lambda: evaluator.evaluate(GUIDE, FACTS), args.seconds), validate
        )
        print(f"  {name:34} {percentiles(samples)}")
    evaluator.close()

    print(f"\nEvaluate over gRPC (fairpath serve), {args.seconds:g} s per phase: calls   p50 µs    p99 µs     max µs")
    with serving("--policies", str(ROOT / "policies")) as target, grpc.insecure_channel(target) as channel:
        evaluate = evaluation_service_pb2_grpc.EvaluationServiceStub(channel).Evaluate
        validate_rpc = policy_service_pb2_grpc.PolicyServiceStub(channel).ValidatePolicy
        call = evaluation_service_pb2.EvaluateRequest(policy=GUIDE, dry_run=True)
        call.facts.update(FACTS)
        over_rpc = one_of(lambda draft: validate_rpc(draft, timeout=60))
        for name, validate in (("alone", None), ("ValidatePolicy in a loop", over_rpc)):
            samples = while_validating(lambda: latencies(lambda: evaluate(call, timeout=10), args.seconds), validate)
            print(f"  {name:34} {percentiles(samples)}")
    return 0


def in_process(draft: policy_service_pb2.ValidatePolicyRequest) -> policy_service_pb2.ValidatePolicyResponse:
    """Validate as before isolation: in this process, holding its GIL."""
    return validation._validate(draft.policy_text, draft.tests_text, draft.path)


def _timed(
    call: Callable[[policy_service_pb2.ValidatePolicyRequest], object], draft: policy_service_pb2.ValidatePolicyRequest
) -> float:
    start = time.perf_counter()
    call(draft)
    return time.perf_counter() - start


if __name__ == "__main__":
    sys.exit(main())
