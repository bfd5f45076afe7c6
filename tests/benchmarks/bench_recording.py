"""Benchmark: Evaluate throughput, decision trail on (SQLite, PostgreSQL) beside off, in one run.

Run ``.venv/bin/python tests/benchmarks/bench_recording.py`` (PostgreSQL on
127.0.0.1:5432, database ``test``; ``--postgres URL`` to change it). Prints:

1. In-process: evaluations per second through ``Evaluator.evaluate`` (recording
   off) and through ``DecisionRecorder.evaluate`` with each store, one caller and
   8 concurrent callers, and each "on" figure as a ratio of "off".
2. Over gRPC: for a ``fairpath serve`` process per store, Evaluate requests per
   second from client processes, recording off (``dry_run``: same server, same
   code path, nothing written) and on, alternating phases, and the ratio
   (target >= 60%).

Not a test: nothing asserts a time. Clients share the machine with the server,
so on a 2-core box the figures are lower bounds; ratios are what to compare.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent)]
from _serve import load_phase, serving  # noqa: E402
from bench_evaluate import GUIDE, ROOT, percentile, workload  # noqa: E402

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


# --- stores --------------------------------------------------------------------------


@contextmanager
def sqlite_url() -> Iterator[str]:
    """Yield the URL of a fresh SQLite file in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="fairpath-bench-") as directory:
        yield f"sqlite:///{directory}/decisions.sqlite3"


@contextmanager
def postgres_url(base: str) -> Iterator[str]:
    """Yield the URL of a fresh schema in ``base``'s database, dropped afterwards."""
    import psycopg  # noqa: PLC0415

    schema = f"fairpath_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    try:
        separator = "&" if "?" in base else "?"
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


def stores(postgres: str) -> list[tuple[str, Callable[[], Any]]]:
    """(name, context manager yielding a fresh URL) per store."""
    return [("sqlite", sqlite_url), ("postgresql", lambda: postgres_url(postgres))]


# --- in-process ------------------------------------------------------------------------


def rate(evaluate: Callable[[dict[str, Any]], object], cases: list[dict[str, Any]], threads: int) -> float:
    """Return evaluations per second of ``evaluate`` over ``cases`` split between ``threads`` callers."""

    def work(index: int) -> None:
        for facts in cases[index::threads]:
            evaluate(facts)

    workers = [threading.Thread(target=work, args=(index,)) for index in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return len(cases) / (time.perf_counter() - started)


def in_process(n: int, postgres: str) -> list[tuple[str, int, float, float]]:
    """Rows (label, threads, evals/s, ratio to off) for the in-process table."""
    from fairpath.audit import open_store  # noqa: PLC0415
    from fairpath.recording import DecisionRecorder  # noqa: PLC0415
    from fairpath.serving.evaluator import Evaluator  # noqa: PLC0415

    evaluator = Evaluator.from_directory(ROOT / "policies")
    cases = workload(n)
    rate(lambda facts: evaluator.evaluate(GUIDE, facts), cases[:1000], 1)  # warm up the explainer memo
    rows = []
    for threads in (1, 8):
        off = rate(lambda facts: evaluator.evaluate(GUIDE, facts), cases, threads)
        rows.append(("recording off", threads, off, 1.0))
        for name, make_url in stores(postgres):
            with make_url() as url:
                store = open_store(url)
                recorder = DecisionRecorder(evaluator, store)
                on = rate(lambda facts, r=recorder: r.evaluate(GUIDE, facts), cases, threads)
                store.close()
            rows.append((f"recording on, {name}", threads, on, on / off))
    return rows


# --- over gRPC -------------------------------------------------------------------------


def phase(
    target: str, dry_run: bool, seconds: float, callers: int, threads: int
) -> tuple[float, float, float]:
    """(req/s, p50 µs, p99 µs) of one load phase."""
    rate, latencies = load_phase(target, "evaluate-dry" if dry_run else "evaluate", seconds, callers, threads)
    return rate, percentile(latencies, 0.5), percentile(latencies, 0.99)


def over_grpc(
    seconds: float, callers: int, threads: int, rounds: int, postgres: str
) -> list[tuple[str, ...]]:
    """Rows for the gRPC table: per store, recording off and on (alternating ``rounds`` times, best kept)."""
    rows: list[tuple[str, ...]] = []
    for name, make_url in stores(postgres):
        with make_url() as url, serving("--store", url, "--watch-seconds", "0") as target:
            phase(target, True, 1.0, callers, threads)  # warm up
            best: dict[bool, tuple[float, float, float]] = {}
            for _ in range(rounds):
                for dry_run in (True, False):
                    result = phase(target, dry_run, seconds, callers, threads)
                    if dry_run not in best or result[0] > best[dry_run][0]:
                        best[dry_run] = result
        off, on = best[True], best[False]
        rows.append(
            (
                name,
                f"{off[0]:,.0f}",
                f"{on[0]:,.0f}",
                f"{on[0] / off[0]:.0%}",
                f"{off[1]:.0f}/{off[2]:.0f}",
                f"{on[1]:.0f}/{on[2]:.0f}",
            )
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="in-process evaluations per measurement")
    parser.add_argument("--seconds", type=float, default=4.0, help="duration of each gRPC load phase")
    parser.add_argument("--rounds", type=int, default=2, help="off/on phase pairs per store (best kept)")
    parser.add_argument("--callers", type=int, default=2, help="load-generator processes")
    parser.add_argument("--threads", type=int, default=8, help="concurrent callers per process")
    parser.add_argument("--postgres", default=os.environ.get("FAIRPATH_BENCH_POSTGRES", DEFAULT_POSTGRES))
    parser.add_argument("--skip-grpc", action="store_true")
    options = parser.parse_args()

    print(f"fairpath recording benchmark on {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"\nIn-process, {options.n} evaluations of {GUIDE} per row:")
    print(f"  {'':30} {'callers':>7} {'evals/s':>9} {'of off':>7}")
    for label, threads, per_second, ratio in in_process(options.n, options.postgres):
        print(f"  {label:30} {threads:7} {per_second:9,.0f} {ratio:7.0%}")
    if options.skip_grpc:
        return 0
    print(
        f"\nOver gRPC on loopback, {options.callers} client processes x {options.threads} callers, "
        f"{options.seconds:g} s phases, best of {options.rounds}; off = dry_run on the same server:"
    )
    header = ("store", "off req/s", "on req/s", "on/off", "off p50/p99 µs", "on p50/p99 µs")
    print("  " + "  ".join(f"{h:>15}" for h in header))
    for row in over_grpc(options.seconds, options.callers, options.threads, options.rounds, options.postgres):
        print("  " + "  ".join(f"{cell:>15}" for cell in row))
    print("  target: on/off >= 60%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
