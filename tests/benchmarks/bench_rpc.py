"""Benchmark: the gRPC path, health Check beside Evaluate (dry run, recorded in SQLite and PostgreSQL), in one run.

Run ``.venv/bin/python tests/benchmarks/bench_rpc.py`` (PostgreSQL on 127.0.0.1:5432, database
``test``, in a schema of its own; ``--postgres URL`` to change it). One asyncio client process
(``grpc.aio``, one channel) keeps ``--in-flight`` calls (32) in flight against one ``fairpath serve``
process per store, for these phases:

1. health ``Check`` (the transport's own cost: the floor every RPC pays);
2. ``Evaluate`` with ``dry_run`` (evaluation, nothing written);
3. ``Evaluate`` recorded in SQLite (the default store);
4. ``Evaluate`` recorded in PostgreSQL (a second server; its own ``Check`` is measured too).

Each phase prints requests per second, p50 and p99 latency and its throughput as a share of
``Check`` on the same server, then issue 14's targets as met or not. Every recorded call has a
request id of its own. The servers log at ``info``, production's level (one access-log line per
Evaluate, to /dev/null). The client sends pre-encoded requests and does not decode replies (the
first reply of each phase is decoded and checked), so the Python client spends as little of the two
cores as it can; the phases alternate over ``--rounds`` rounds and the best of each is kept.

The "CPU µs" column is the server process's CPU time per call (all its threads), read from
/proc: unlike throughput, other work on a shared machine barely moves it. ``--aio`` adds the same
phases against ``_trial_server.py --design aio`` (the service on ``grpc.aio``) in the same run.
What the interceptor and the access-log line cost per call is ``bench_interceptors.py``'s.

Not a test: nothing asserts a time. The client shares the machine with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent)]
from _serve import server_process  # noqa: E402
from bench_evaluate import GUIDE, workload  # noqa: E402
from bench_recording import DEFAULT_POSTGRES, postgres_url, sqlite_url  # noqa: E402

HERE = Path(__file__).resolve().parent
CHECK = "/grpc.health.v1.Health/Check"
EVALUATE = "/fairpath.v1.EvaluationService/Evaluate"
#: Issue 14's targets: phase -> least share of Check's throughput on the same server.
TARGETS = {"dry": 0.70, "sqlite": 0.60, "postgresql": 0.55}
PHASES = {
    "check": "health Check",
    "dry": "Evaluate, dry run",
    "sqlite": "Evaluate, recorded: SQLite",
    "pg-check": "health Check (PostgreSQL server)",
    "postgresql": "Evaluate, recorded: PostgreSQL",
}


@dataclass(frozen=True)
class Result:
    """One phase: calls per second, latency quantiles (ms), failed calls, answered calls; server CPU µs per call."""

    rate: float
    p50: float
    p99: float
    errors: int
    calls: int
    cpu: float = 0.0


# --- the client process -------------------------------------------------------------------


def _requests(dry_run: bool) -> list[bytes]:
    """Encoded EvaluateRequests over bench_evaluate's workload (no request id: the client appends one)."""
    from fairpath.v1 import evaluation_service_pb2 as pb  # noqa: PLC0415
    from google.protobuf import struct_pb2  # noqa: PLC0415

    encoded = []
    for facts in workload(500):
        struct = struct_pb2.Struct()
        struct.update(facts)
        encoded.append(pb.EvaluateRequest(policy=GUIDE, facts=struct, dry_run=dry_run).SerializeToString())
    return encoded


@dataclass(frozen=True)
class Phase:
    """One phase for the client process: ``in_flight`` callers of ``method`` on one aio channel for ``seconds``.

    ``ids``: when not empty, every call gets the request id ``<ids>-<n>`` (field 5), unique per call.
    """

    target: str
    method: str
    payloads: list[bytes]
    seconds: float
    in_flight: int
    ids: str


def client_phase(phase: Phase) -> Result:
    """Run ``phase`` from this (client) process."""
    return asyncio.run(_drive(phase))


async def _drive(phase: Phase) -> Result:
    import grpc  # noqa: PLC0415

    target, method, payloads, ids = phase.target, phase.method, phase.payloads, phase.ids

    counter = itertools.count()
    latencies: list[float] = []
    errors = 0
    async with grpc.aio.insecure_channel(target) as channel:
        # Identity (de)serializers: requests go out pre-encoded and replies stay bytes.
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
        first = await call(_payload(payloads, 0, ids), timeout=30)
        _check_reply(method, first)
        stop = time.monotonic() + phase.seconds

        async def caller() -> None:
            nonlocal errors
            while time.monotonic() < stop:
                n = next(counter)
                began = time.perf_counter()
                try:
                    await call(_payload(payloads, n, ids), timeout=30)
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - began)

        began = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(phase.in_flight)))
        elapsed = time.perf_counter() - began
    ordered = sorted(latencies) or [0.0]
    return Result(
        rate=len(latencies) / elapsed,
        p50=ordered[len(ordered) // 2] * 1e3,
        p99=ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1e3,
        errors=errors,
        calls=len(latencies),
    )


def _payload(payloads: list[bytes], n: int, ids: str) -> bytes:
    if not payloads:
        return b""  # HealthCheckRequest(): every field empty
    payload = payloads[n % len(payloads)]
    if not ids:
        return payload
    # Protobuf merges concatenated messages: the base request, then field 5 (request_id) on its own.
    request_id = f"{ids}-{n}".encode()
    return payload + b"\x2a" + bytes([len(request_id)]) + request_id


def _check_reply(method: str, reply: bytes) -> None:
    """Fail the phase unless the first reply is what the method answers (a real decision for Evaluate)."""
    from fairpath.v1 import evaluation_service_pb2 as pb  # noqa: PLC0415
    from grpc_health.v1 import health_pb2  # noqa: PLC0415

    if method == CHECK:
        status = health_pb2.HealthCheckResponse.FromString(reply).status
        ok = status == health_pb2.HealthCheckResponse.SERVING
    else:
        ok = bool(pb.EvaluateResponse.FromString(reply).decision.decision_id)
    if not ok:
        raise RuntimeError(f"{method} answered something unexpected")


# --- the benchmark ------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds process ``pid`` (and its threads) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(stack: ExitStack, *args: str, command: tuple[str, ...] = ()) -> tuple[str, int]:
    """Start a server with ``args`` that stops when ``stack`` closes; return its target and pid."""
    target, process = stack.enter_context(server_process(*args, command=command))
    return target, process.pid


class Bench:
    """Runs phases from one client process and keeps the best result of each."""

    def __init__(self, pool: ProcessPoolExecutor, seconds: float, in_flight: int) -> None:
        self.pool = pool
        self.seconds = seconds
        self.in_flight = in_flight
        self.dry = _requests(dry_run=True)
        self.recorded = _requests(dry_run=False)
        self.best: dict[tuple[str, str], Result] = {}

    def run(self, column: str, phase: str, server: tuple[str, int], seconds: float | None = None) -> Result:
        """Run ``phase`` against ``server`` (target, pid); keep it under ``column`` if it is the best so far."""
        method = CHECK if phase.endswith("check") else EVALUATE
        payloads = [] if method == CHECK else self.dry if phase == "dry" else self.recorded
        ids = "" if method == CHECK or phase == "dry" else f"bench-{uuid.uuid4().hex[:12]}"
        target, pid = server
        cpu = cpu_seconds(pid)
        result = self.pool.submit(
            client_phase, Phase(target, method, payloads, seconds or self.seconds, self.in_flight, ids)
        ).result()
        # The server's CPU per call: unlike wall time, other work on the machine barely moves it.
        result = replace(result, cpu=(cpu_seconds(pid) - cpu) * 1e6 / (result.calls + result.errors + 1))
        key = (column, phase)
        if seconds is None and (key not in self.best or result.rate > self.best[key].rate):
            self.best[key] = result
        return result


def designs(options: argparse.Namespace) -> list[tuple[str, tuple[str, ...]]]:
    """(column, server command) per server design compared."""
    threaded = ("threaded", ())
    if not options.aio:
        return [threaded]
    return [threaded, ("aio (trial)", (sys.executable, str(HERE / "_trial_server.py"), "--design", "aio"))]


def main_phases(bench: Bench, options: argparse.Namespace) -> list[str]:
    """Run every phase for each design, alternating ``rounds`` times; return the columns."""
    columns = designs(options)
    common = ("--log-level", "info", "--watch-seconds", "0")
    with ExitStack() as stack:
        targets: dict[tuple[str, str], tuple[str, int]] = {}
        for column, command in columns:
            sqlite = stack.enter_context(sqlite_url())
            postgres = stack.enter_context(postgres_url(options.postgres))
            targets[(column, "sqlite")] = start(stack, "--store", sqlite, *common, command=command)
            targets[(column, "pg")] = start(stack, "--store", postgres, *common, command=command)
        for column, _ in columns:
            for store in ("sqlite", "pg"):
                bench.run(column, "dry", targets[(column, store)], seconds=1.0)  # warm up
        for _ in range(options.rounds):
            for column, _ in columns:
                for phase in ("check", "dry", "sqlite"):
                    bench.run(column, phase, targets[(column, "sqlite")])
                for phase in ("pg-check", "postgresql"):
                    bench.run(column, phase, targets[(column, "pg")])
    return [column for column, _ in columns]


def print_main(bench: Bench, columns: list[str]) -> None:
    """The table (phases x designs) and the targets, for the first (production) design."""
    heads = "".join(f"{column:>45}" for column in columns)
    print(f"  {'':34}{heads}")
    print(f"  {'':34}" + f"{'req/s':>10}{'p50 ms':>8}{'p99 ms':>8}{'of Check':>10}{'CPU µs':>9}" * len(columns))
    for phase, label in PHASES.items():
        cells = ""
        for column in columns:
            result = bench.best[(column, phase)]
            check = bench.best[(column, "pg-check" if phase in ("pg-check", "postgresql") else "check")]
            share = result.rate / check.rate
            cells += f"{result.rate:10,.0f}{result.p50:8.1f}{result.p99:8.1f}{share:10.0%}{result.cpu:9.0f}"
        print(f"  {label:34}{cells}")
    errors = sum(result.errors for result in bench.best.values())
    if errors:
        print(f"  failed calls in the kept phases: {errors}")
    print(f"\nTargets ({columns[0]} server; share of Check's throughput on the same server):")
    for phase, target in TARGETS.items():
        check = bench.best[(columns[0], "pg-check" if phase == "postgresql" else "check")]
        share = bench.best[(columns[0], phase)].rate / check.rate
        verdict = "met" if share >= target else "NOT met"
        print(f"  {PHASES[phase]:34} {share:5.0%}  (target >= {target:.0%}) -> {verdict}")
    for column in columns[1:]:
        print(f"\n{column} / {columns[0]} throughput, phase by phase:")
        for phase, label in PHASES.items():
            print(f"  {label:34} {bench.best[(column, phase)].rate / bench.best[(columns[0], phase)].rate:5.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each phase")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of all phases (best kept)")
    parser.add_argument("--in-flight", type=int, default=32, help="calls in flight from the client")
    parser.add_argument("--postgres", default=os.environ.get("FAIRPATH_BENCH_POSTGRES", DEFAULT_POSTGRES))
    parser.add_argument("--aio", action="store_true", help="also the grpc.aio trial server, same phases")
    options = parser.parse_args()

    load = os.getloadavg()[0]
    python = sys.version.split()[0]
    print(f"fairpath gRPC benchmark on {os.cpu_count()} cores, Python {python}, load average {load:.2f}")
    print(
        f"One asyncio client process (grpc.aio, one channel), {options.in_flight} calls in flight, "
        f"{options.seconds:g} s phases, best of {options.rounds}; servers log at info:\n"
    )
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        bench = Bench(pool, options.seconds, options.in_flight)
        print_main(bench, main_phases(bench, options))
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
