"""Benchmark: what each server interceptor and the access-log line cost per call, in-process.

Run ``.venv/bin/python tests/benchmarks/bench_interceptors.py``. Over the network these costs
drown in the transport's and in other work on a shared machine (``bench_rpc.py`` measures the
whole path), so this calls the interceptors as grpc's threaded server does, without a network:
per call, grpc runs every interceptor's ``intercept_service`` on its one polling thread (the
*lookup*, serial for all calls), then a pool thread calls the handler they built (the *call*). The
servicer behind them is a stub that returns a ready reply, so what is timed is the interceptors'
own work on a real ``Evaluate`` request (the bench workload's facts, a bearer token) and on a
health ``Check``; logging is configured as ``fairpath serve`` does it (JSON to /dev/null).

Prints CPU µs per call (best of ``--repeat`` runs of ``--n`` calls, one thread) for no interceptors,
the served chain with the access log at ``info`` (production) and at ``warning`` (the line is
filtered out, so the difference is the line), and the chain without auth.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

sys.path[:0] = [str(Path(__file__).resolve().parent)]
from bench_evaluate import GUIDE, workload  # noqa: E402

TOKEN = "bench-token"  # noqa: S105 - made up, for a made-up auth config
EVALUATE = "/fairpath.v1.EvaluationService/Evaluate"
CHECK = "/grpc.health.v1.Health/Check"


class Details(NamedTuple):
    """grpc.HandlerCallDetails as the threaded server builds it."""

    method: str
    invocation_metadata: tuple[tuple[str, str], ...]


class Context:
    """The parts of the threaded server's ServicerContext the interceptors use, for a call that succeeds."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.metadata = metadata
        self.trailers: Any = ()

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        """The call's headers."""
        return self.metadata

    def set_trailing_metadata(self, trailers: Any) -> None:
        """Keep the trailers."""
        self.trailers = trailers

    def auth_context(self) -> dict[str, list[bytes]]:
        """No client certificate."""
        return {}

    def time_remaining(self) -> float:
        """A deadline 30 s away."""
        return 30.0

    def is_active(self) -> bool:
        """The caller is still there."""
        return True

    def code(self) -> None:
        """No code set."""
        return


def chain_call(interceptors: Sequence[Any], handler: Any, details: Details) -> Any:
    """What grpc's _ServicePipeline does per call: each interceptor in turn, outermost first."""

    def at(index: int) -> Callable[[Details], Any]:
        if index == len(interceptors):
            return lambda _: handler
        return lambda d: interceptors[index].intercept_service(at(index + 1), d)

    return at(0)(details)


def measure(
    interceptors: Sequence[Any], handler: Any, details: Details, request: Any, *, n: int, repeat: int
) -> tuple[float, float]:
    """(lookup µs, call µs) of CPU time per call: best of ``repeat`` runs of ``n`` calls.

    CPU time of this thread, not wall time: other work on a shared machine barely moves it.
    """
    lookups, calls = [], []
    for _ in range(repeat):
        contexts = [Context(details.invocation_metadata) for _ in range(n)]
        # As timeit does: a collection of the objects kept for the run would land on a random row.
        gc.collect()
        gc.disable()
        began = time.thread_time()
        wrapped = [chain_call(interceptors, handler, details) for _ in range(n)]
        middle = time.thread_time()
        for each, context in zip(wrapped, contexts, strict=True):
            each.unary_unary(request, context)
        ended = time.thread_time()
        gc.enable()
        lookups.append((middle - began) / n * 1e6)
        calls.append((ended - middle) / n * 1e6)
    return min(lookups), min(calls)


#: (label, log level, auth config on) per row; each row runs in a fresh process, as structlog keeps
#: the logger it first configured (``cache_logger_on_first_use``, as ``fairpath serve`` runs it).
ROWS = [
    ("no interceptors", "info", None),
    ("as served, log level info (production)", "info", True),
    ("as served, log level warning (no line)", "warning", True),
    ("as served without auth, info", "info", False),
]


def row(index: int, n: int, repeat: int) -> dict[str, tuple[float, float]]:
    """Measure row ``index`` of :data:`ROWS` in this process: method -> (lookup µs, call µs)."""
    import grpc  # noqa: PLC0415
    import structlog  # noqa: PLC0415
    from fairpath import logs  # noqa: PLC0415
    from fairpath.api.auth import AuthPolicy, hash_token  # noqa: PLC0415
    from fairpath.api.server import interceptors  # noqa: PLC0415
    from fairpath.v1 import evaluation_service_pb2 as pb  # noqa: PLC0415
    from google.protobuf import struct_pb2  # noqa: PLC0415
    from grpc_health.v1 import health_pb2  # noqa: PLC0415

    _, level, with_auth = ROWS[index]
    logs.configure(level, "json", stream=open(os.devnull, "w"))  # noqa: SIM115 - open while the process lives
    auth = AuthPolicy.from_mapping({"tokens": {"bench": {"sha256": hash_token(TOKEN), "roles": ["evaluator"]}}})
    chain = [] if with_auth is None else interceptors(auth if with_auth else None)
    facts = struct_pb2.Struct()
    facts.update(workload(1)[0])
    evaluate = pb.EvaluateRequest(policy=GUIDE, facts=facts, dry_run=True, request_id="bench-1")
    reply = pb.EvaluateResponse()

    def servicer(request: Any, context: Any) -> Any:
        # What EvaluationService.Evaluate binds for the access-log line (ids, never facts).
        structlog.contextvars.bind_contextvars(policy=GUIDE, version="1.2.0")
        structlog.contextvars.bind_contextvars(
            version="1.2.0", decision_id="0" * 32, decision_status="RECOMMENDED", pathway="SUPPORT_AND_LEARN"
        )
        return reply

    handlers = {
        EVALUATE: grpc.unary_unary_rpc_method_handler(
            servicer, pb.EvaluateRequest.FromString, pb.EvaluateResponse.SerializeToString
        ),
        CHECK: grpc.unary_unary_rpc_method_handler(lambda request, context: health_pb2.HealthCheckResponse()),
    }
    requests = {EVALUATE: evaluate, CHECK: health_pb2.HealthCheckRequest()}
    metadata = (("authorization", f"Bearer {TOKEN}"), ("user-agent", "grpc-python/1.x"))
    return {
        method: measure(chain, handlers[method], Details(method, metadata), requests[method], n=n, repeat=repeat)
        for method in (EVALUATE, CHECK)
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="calls per run")
    parser.add_argument("--repeat", type=int, default=5, help="runs per row (best kept)")
    parser.add_argument("--row", type=int, help=argparse.SUPPRESS)  # one row, in a child process
    options = parser.parse_args()
    if options.row is not None:
        print(json.dumps(row(options.row, options.n, options.repeat)))
        return 0

    print(f"fairpath interceptor benchmark on {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"CPU µs per call, best of {options.repeat} x {options.n} calls; lookup = grpc's polling thread, "
          "call = a pool thread:\n")
    print(f"  {'':42}{'Evaluate':>24}{'health Check':>24}")
    print(f"  {'':42}" + f"{'lookup':>8}{'call':>8}{'total':>8}" * 2)
    totals: list[float] = []
    for index, (label, _, _) in enumerate(ROWS):
        argv = [sys.executable, __file__, "--row", str(index), "--n", str(options.n), "--repeat", str(options.repeat)]
        measured = json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)
        cells = "".join(f"{lookup:8.1f}{call:8.1f}{lookup + call:8.1f}" for lookup, call in measured.values())
        totals.append(sum(measured[EVALUATE]))
        print(f"  {label:42}{cells}")
    print(f"\n  Evaluate: the access-log line (info - warning) {totals[1] - totals[2]:.1f} µs; auth (with - without) "
          f"{totals[1] - totals[3]:.1f} µs; everything else {totals[2] - totals[0]:.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
