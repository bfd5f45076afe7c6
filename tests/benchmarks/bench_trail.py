"""Benchmark: the decision trail at scale, 10^4 → 10^5 (→ 10^6) decisions, figures and growth side by side.

Run ``nice -n 10 .venv/bin/python tests/benchmarks/bench_trail.py`` (sizes 10000 and 100000) or
``--sizes 10000,100000,1000000``. Prints:

1. How long filling took. The store is filled by the real recorder
   (:class:`~fairpath.audit.DecisionRecorder`: evaluation by durable_rules, masking, the request
   digest, the hash chain), in this process, with ``--fill-threads`` callers so that group commit
   batches the appends (``max_batch`` 512), which is the fastest honest way to write a chain: one
   writer, one transaction per batch. One SQLite store grows from one size to the next; each size
   is measured when the trail reaches it.
2. For each size, the time and peak memory of each trail operation, each run in a fresh child
   process (so its peak RSS is its own): list with a filter (every page, as ``decisions list --all``
   does, one ListDecisions-sized query per page), export (every decision encoded as the wire
   ``DecisionRecord`` and decoded again as the client does), replay against another version,
   stats, and verify. "peak MiB" is the child's highest RSS while the operation ran (sampled every
   10 ms); "CPU s" the processor time it used (user and system: on a shared machine, about what it
   would take alone, its reads being cached); "+MiB" what that adds to the RSS the child had before
   it started (imports, policies compiled, store opened).
3. The growth ratios from one size to the next, time and memory side by side.

Targets (issue 14): time linear or better (ratio ≤ the size ratio) and flat memory from 10^4 to
10^6; verify of 10^6 under a minute. Not a test: nothing asserts a time.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent)]
from bench_evaluate import GUIDE, ROOT, workload  # noqa: E402

EQUALITY_GROUPS = ["G1", "G2", "G2", "G3", "G4"]
#: The operations measured, in table order: (label, what it runs in the child).
OPERATIONS = [
    ("list --rule-fired 4a --all", "list_rule"),
    ("list --staff-ref (1 page)", "list_staff"),
    ("list --since/--until --all", "list_window"),
    ("export --policy", "export"),
    ("replay --version 1.1.0", "replay"),
    ("stats --policy --period quarter", "stats"),
    ("verify", "verify"),
]
PAGE = 500


def _rss_mib() -> float:
    """Current resident set size of this process, in MiB."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def fill(url: str, start: int, end: int, threads: int) -> float:
    """Record decisions ``start`` .. ``end - 1`` through the real recorder; return the seconds it took."""
    from fairpath.audit import open_store  # noqa: PLC0415
    from fairpath.decisions import Subject  # noqa: PLC0415
    from fairpath.recording import DecisionRecorder  # noqa: PLC0415
    from fairpath.serving.evaluator import Evaluator  # noqa: PLC0415

    evaluator = Evaluator.from_directory(ROOT / "policies")
    store = open_store(url)
    recorder = DecisionRecorder(evaluator, store, max_batch=512, linger=0.01)
    cases = workload(2000, seed=start)
    rng = random.Random(start)
    began = time.perf_counter()

    def work(index: int) -> None:
        for number in range(start + index, end, threads):
            facts = cases[number % len(cases)]
            subject = Subject(f"INC-{number // 3}", f"S-{rng.randrange(5000)}", f"A-{number}")
            recorder.evaluate(GUIDE, facts, version="1.0.0" if number % 2 else "",
                              subject=subject, equality_group=EQUALITY_GROUPS[number % len(EQUALITY_GROUPS)])

    workers = [threading.Thread(target=work, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    store.close()
    evaluator.close()
    return elapsed


def run_operation(url: str, operation: str, size: int) -> dict[str, Any]:
    """Run one operation against the store (in this, a child, process); return its figures."""
    from fairpath.api import record_convert as audit_convert  # noqa: PLC0415
    from fairpath.audit import monitoring, open_store  # noqa: PLC0415
    from fairpath.audit.records import DecisionFilter  # noqa: PLC0415
    from fairpath.audit.replay import Replayer, ReplayRequest  # noqa: PLC0415
    from fairpath.serving.evaluator import Evaluator  # noqa: PLC0415
    from fairpath.v1 import decision_service_pb2  # noqa: PLC0415
    from fairpath.wire import DecisionWire  # noqa: PLC0415
    from fairpath_client._records import DecisionRecord  # noqa: PLC0415

    evaluator = Evaluator.from_directory(ROOT / "policies")
    wire = DecisionWire()  # as the DecisionService keeps one: entries recurring across records encoded once
    store = open_store(url)
    before = _rss_mib()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        # ru_maxrss would include loading the policies; this is the peak while the operation runs.
        while not done.wait(0.01):
            peak[0] = max(peak[0], _rss_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu = time.process_time()
    began = time.perf_counter()
    count = 0
    if operation.startswith("list"):
        if operation == "list_rule":
            query = DecisionFilter(rule_fired="4a")
        elif operation == "list_staff":
            query = DecisionFilter(staff_ref="S-77")
        else:
            lo, hi = (store.list_decisions(DecisionFilter(), limit=1, after_sequence=int(size * f))[0]
                      for f in (0.45, 0.55))
            query = DecisionFilter(from_time=lo.decision.evaluated_at, to_time=hi.decision.evaluated_at)
            began = time.perf_counter()
        after = 0
        while True:
            page = store.list_decisions(query, limit=PAGE + 1, after_sequence=after)
            records = [audit_convert.record_to_proto(stored, wire) for stored in page[:PAGE]]
            count += len(records)
            if len(page) <= PAGE or operation == "list_staff":
                break
            after = page[PAGE - 1].sequence
    elif operation == "export":
        with open(os.devnull, "w", encoding="utf-8") as out:
            for stored in store.iter_decisions(DecisionFilter(policy=GUIDE)):
                sent = audit_convert.record_to_proto(stored, wire).SerializeToString()
                record = DecisionRecord.from_proto(decision_service_pb2.DecisionRecord.FromString(sent))
                out.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
                count += 1
    elif operation == "replay":
        count = Replayer(evaluator, store).replay(ReplayRequest(DecisionFilter(), "1.1.0", GUIDE)).replayed
    elif operation == "stats":
        slices = monitoring.outcome_figures(store, DecisionFilter(policy=GUIDE), period_name="quarter")
        count = sum(s.total for s in slices)
    elif operation == "verify":
        chain = store.verify_chain()
        if not chain.intact:
            raise SystemExit(f"verify: {chain}")
        count = chain.records_checked
    elapsed = time.perf_counter() - began
    cpu = time.process_time() - cpu
    done.set()
    sampler.join()
    top = max(peak[0], _rss_mib())
    store.close()
    return {"seconds": elapsed, "cpu": cpu, "peak_mib": top, "added_mib": top - before, "count": count}


def measure(url: str, operation: str, size: int) -> dict[str, Any]:
    """Run ``operation`` in a fresh child process and return its figures."""
    child = subprocess.run(
        [sys.executable, __file__, "--child", operation, "--url", url, "--sizes", str(size)],
        check=True, capture_output=True, text=True,
    )
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated trail sizes, ascending")
    parser.add_argument("--fill-threads", type=int, default=8, help="recorder callers while filling")
    parser.add_argument("--store", help="SQLite file to fill (kept; a file already filled is grown, not refilled)")
    parser.add_argument("--only", help="comma-separated operations to measure (default: all)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    options = parser.parse_args()
    sys.path[:0] = [str(ROOT / "service"), str(ROOT / "clients" / "python")]
    sizes = [int(s) for s in options.sizes.split(",")]
    if options.child:
        print(json.dumps(run_operation(options.url, options.child, sizes[0])))
        return 0
    chosen = [op for op in OPERATIONS if not options.only or op[1] in options.only.split(",")]
    with tempfile.TemporaryDirectory(prefix="fairpath-trail-") as directory:
        path = Path(options.store or Path(directory) / "trail.sqlite3").resolve()
        url = f"sqlite:///{path}"
        load = os.getloadavg()
        print(f"fairpath trail benchmark on {os.cpu_count()} cores, Python {sys.version.split()[0]},"
              f" load average {load[0]:.1f} at start; SQLite store {path.name}")
        results: dict[int, dict[str, dict[str, Any]]] = {}
        for size in sizes:
            have = _recorded(url)
            if have < size:
                seconds = fill(url, have, size, options.fill_threads)
                mib = path.stat().st_size / 2**20
                print(f"\nFilled {have:,} -> {size:,} decisions through the recorder in {seconds:.1f} s "
                      f"({(size - have) / seconds:,.0f}/s, {options.fill_threads} callers); file {mib:,.0f} MiB")
            open_store_once(url)  # any migration runs here, not inside the first measurement
            print(f"\n{size:,} decisions:")
            print(f"  {'operation':34} {'records':>9} {'seconds':>9} {'CPU s':>8} {'peak MiB':>9} {'+MiB':>7}")
            results[size] = {}
            for label, operation in chosen:
                figures = measure(url, operation, size)
                results[size][operation] = figures
                print(f"  {label:34} {figures['count']:9,} {figures['seconds']:9.2f} {figures['cpu']:8.2f} "
                      f"{figures['peak_mib']:9.1f} {figures['added_mib']:7.1f}", flush=True)
        for small, large in itertools.pairwise(sizes):
            print(f"\nGrowth {small:,} -> {large:,} (x{large / small:g} decisions); linear time = x{large / small:g}:")
            print(f"  {'operation':34} {'time':>8} {'CPU':>8} {'peak RSS':>9} {'+MiB':>9}")
            for label, operation in chosen:
                a, b = results[small][operation], results[large][operation]
                print(f"  {label:34} {'x%.2f' % (b['seconds'] / max(a['seconds'], 1e-9)):>8}"
                      f" {'x%.2f' % (b['cpu'] / max(a['cpu'], 1e-9)):>8}"
                      f" {'x%.2f' % (b['peak_mib'] / a['peak_mib']):>9}"
                      f" {b['added_mib'] - a['added_mib']:+8.1f}M")
        largest = sizes[-1]
        if "verify" in results[largest]:
            verified = results[largest]["verify"]
            print(f"\nverify of {largest:,} records: {verified['seconds']:.1f} s, {verified['cpu']:.1f} s of CPU"
                  " (target: 10^6 under 60 s)")
    return 0


def open_store_once(url: str) -> None:
    """Open (and so migrate) the store, then close it."""
    from fairpath.audit import open_store  # noqa: PLC0415

    open_store(url).close()


def _recorded(url: str) -> int:
    """How many decisions the store holds already (0 for a new file)."""
    import sqlite3  # noqa: PLC0415

    path = url.removeprefix("sqlite:///")
    if not Path(path).exists():
        return 0
    with sqlite3.connect(path) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM decisions").fetchone()[0])


if __name__ == "__main__":
    sys.exit(main())
