"""Benchmark: evaluation speed in-process and over gRPC, figures and ratios side by side in one run.

Run ``make bench`` (or ``.venv/bin/python tests/benchmarks/bench_evaluate.py``). Prints:

1. In-process: evaluations per second and p50/p99 of one evaluation with the
   full trace (facts checked, engine, explanation) and of the durable_rules engine
   alone on the same requests, measured taking turns, and the ratio of their p50s
   (target: at most 1.25x). Evaluations per second count the calls' own time.
2. Over gRPC, for a server with 1 and with 2 worker processes: Evaluate
   throughput and p50/p99 with concurrent callers, beside the standard health
   ``Check`` RPC on the same server in the same run, and their ratio.

Not a test: nothing here asserts a time. The load generator shares the machine
with the server, as it would on a 2-core box.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _serve import load_phase, serving

ROOT = Path(__file__).resolve().parents[2]
GUIDE = "nhs-just-culture-guide"
WALK = [
    "intent_to_harm", "substance_abuse_indicated", "physical_ill_health_indicated", "mental_ill_health_indicated",
    "protocols_in_place", "protocols_workable_in_routine_use", "knowingly_departed", "peers_would_act_same",
    "missed_training", "inadequate_supervision", "significant_mitigation",
]
#: Issue 14: a full evaluation (facts checked, engine, trace) at most this many times the engine alone.
IN_PROCESS_TARGET = 1.25
GROUPS = ["DOCTOR", "DENTIST", "PHARMACIST", "REGISTERED_NURSE", "MIDWIFE", "PARAMEDIC", "HEALTHCARE_SUPPORT_WORKER"]


def workload(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` realistic requests: gates passed, each walk answer NO with 85% odds, a few unanswered."""
    rng = random.Random(seed)
    cases = []
    for _ in range(n):
        facts: dict[str, Any] = {
            "is_patient_safety_incident": "YES", "individual_concern_raised": "YES", "safeguarding_concern": "NO",
            "professional_group": rng.choice(GROUPS), "investigation_stage": rng.choice(["IN_PROGRESS", "CONCLUDED"]),
            "harm_severity": rng.choice(["NO_HARM", "LOW", "MODERATE", "SEVERE"]),
            "employer_type": "NHS_TRUST", "exclusion_under_consideration": rng.choice(["YES", "NO", "NO", "NO"]),
        }
        for name in WALK:
            facts[name] = "NO" if rng.random() < 0.85 else "YES"
        for name in ("protocols_in_place", "protocols_workable_in_routine_use"):
            facts[name] = "YES" if rng.random() < 0.8 else "NO"
        if rng.random() < 0.05:
            del facts[rng.choice(WALK)]
        cases.append(facts)
    return cases


def percentile(samples: list[float], q: float) -> float:
    """The q-quantile of ``samples`` (seconds in, microseconds out)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6


def timed(fn: Callable[[Any], object], cases: list[Any]) -> tuple[float, float, float]:
    """(per second, p50 µs, p99 µs) of ``fn`` over ``cases``, one at a time."""
    latencies = []
    start = time.perf_counter()
    for case in cases:
        began = time.perf_counter()
        fn(case)
        latencies.append(time.perf_counter() - began)
    elapsed = time.perf_counter() - start
    return len(cases) / elapsed, percentile(latencies, 0.5), percentile(latencies, 0.99)


def interleaved(
    fns: dict[str, Callable[[int], object]], n: int, block: int = 250
) -> dict[str, tuple[float, float, float]]:
    """(per second, p50 µs, p99 µs) of each of ``fns`` over indices ``0..n-1``, one at a time.

    The functions take turns a block of calls each, so a change in the machine's load (the
    cores are shared) falls on all of them alike and their ratio holds.
    """
    latencies: dict[str, list[float]] = {name: [] for name in fns}
    clock = time.perf_counter
    for start in range(0, n, block):
        for name, fn in fns.items():
            samples = latencies[name]
            for index in range(start, min(n, start + block)):
                began = clock()
                fn(index)
                samples.append(clock() - began)
    return {
        name: (len(samples) / sum(samples), percentile(samples, 0.5), percentile(samples, 0.99))
        for name, samples in latencies.items()
    }


def in_process(n: int) -> list[tuple[str, float, float, float]]:
    """Rows for the in-process table: the full evaluation, its cold first pass, the engine alone."""
    sys.path[:0] = [str(ROOT / "service")]
    from fairpath.policy.facts import normalise_facts  # noqa: PLC0415
    from fairpath.serving.evaluator import Evaluator  # noqa: PLC0415 - imported after the path is set

    evaluator = Evaluator.from_directory(ROOT / "policies")
    policy = evaluator.registry.get(GUIDE)
    compiled = evaluator.compiled(policy)
    engine = evaluator.engine
    cases = workload(n)
    clean = [normalise_facts(policy, facts) for facts in cases]
    # The first pass meets each combination of answers for the first time, so the explainer
    # writes its trace entries; the passes after it are the steady state of a running server.
    first = timed(lambda facts: evaluator.evaluate(GUIDE, facts), cases)
    # The same requests, whole and engine alone, taking turns (see interleaved()).
    steady = interleaved({
        "full": lambda index: evaluator.evaluate(GUIDE, cases[index]),
        "engine": lambda index: engine.evaluate(compiled, clean[index]),
    }, n)
    return [
        ("evaluate, full trace", *steady["full"]),
        ("  first pass (trace memo cold)", *first),
        ("durable_rules engine alone", *steady["engine"]),
    ]


# --- over gRPC ---------------------------------------------------------------------


def over_grpc(seconds: float, callers: int, threads: int) -> list[tuple[str, float, float, float]]:
    """Rows for the gRPC table: Evaluate and Check, for 1 and 2 server workers."""
    rows = []
    for workers in (1, 2):
        store = f"sqlite:///{tempfile.gettempdir()}/fairpath-bench-{os.getpid()}.sqlite3"
        with serving("--workers", str(workers), "--store", store, timeout=30) as target:
            # dry_run Evaluate: this measures evaluation; bench_recording.py measures the trail's cost.
            for rpc, label in (("check", "check"), ("evaluate-dry", "evaluate")):
                rate, latencies = load_phase(target, rpc, seconds, callers, threads)
                rows.append((f"{workers} worker(s): {label}", rate,
                             percentile(latencies, 0.5), percentile(latencies, 0.99)))
    return rows


def _load() -> str:
    """The 1, 5 and 15 minute load averages (the cores are shared: say what else was running)."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="in-process evaluations")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each gRPC load phase")
    parser.add_argument("--callers", type=int, default=2, help="load-generator processes")
    parser.add_argument("--threads", type=int, default=8, help="concurrent callers per process")
    parser.add_argument("--skip-grpc", action="store_true")
    options = parser.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")

    print(f"fairpath benchmark on {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"load average before: {_load()}")
    print(f"\nIn-process, {options.n} evaluations of {GUIDE} (one at a time; the full evaluation and the")
    print("engine alone on the same requests, taking turns in blocks of 250):")
    print(f"  {'':32} {'evals/s':>10} {'p50 µs':>9} {'p99 µs':>9}")
    rows = in_process(options.n)
    for name, rate, p50, p99 in rows:
        print(f"  {name:32} {rate:10,.0f} {p50:9.1f} {p99:9.1f}")
    ratio = rows[0][2] / rows[2][2]
    print(f"  full evaluation p50 / engine alone p50 = {ratio:.2f}x (target <= {IN_PROCESS_TARGET}x) -> "
          f"{'met' if ratio <= IN_PROCESS_TARGET else 'NOT met'}")
    print(f"load average after: {_load()}")
    if options.skip_grpc:
        return 0
    print(f"\nOver gRPC on loopback, {options.callers} client processes x {options.threads} callers, "
          f"{options.seconds:g} s per phase:")
    print(f"  {'':32} {'req/s':>10} {'p50 µs':>9} {'p99 µs':>9}")
    grpc_rows = over_grpc(options.seconds, options.callers, options.threads)
    for name, rate, p50, p99 in grpc_rows:
        print(f"  {name:32} {rate:10,.0f} {p50:9.1f} {p99:9.1f}")
    by_name = {name: rate for name, rate, _, _ in grpc_rows}
    print("\nRatios (same run):")
    for workers in (1, 2):
        ratio = by_name[f"{workers} worker(s): evaluate"] / by_name[f"{workers} worker(s): check"]
        print(f"  {workers} worker(s): Evaluate / health Check throughput = {ratio:.0%} (target >= 70%)")
    scale = by_name["2 worker(s): evaluate"] / by_name["1 worker(s): evaluate"]
    print(f"  Evaluate throughput, 2 workers / 1 worker = {scale:.2f}x")
    print(f"  in-process evals/s / 1-worker gRPC Evaluate req/s = {rows[0][1] / by_name['1 worker(s): evaluate']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
