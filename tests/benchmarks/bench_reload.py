"""Benchmark: resident memory over 200 hot reloads of a changed policy version, with and without unloading.

Run ``.venv/bin/python tests/benchmarks/bench_reload.py`` (``--reloads N`` to
change the count). durable_rules can only add rulesets, and every changed file
is a new ruleset (its name carries the digest), so without unloading each
reload of a changed version leaves one behind. This script serves a copy of the
guide (1.0.0, locked) plus an unlocked draft copy of it whose text changes
before every reload (a comment line, so its own 69 test cases keep passing),
and prints, for the engine as shipped and with unloading disabled, side by side:
resident memory (VmRSS from /proc/self/status) after the start-up reload and
after the reloads, durable_rules' ruleset count, and the time per reload
(load, lock check, compile, register, the version's own cases, swap).

Each mode runs in a fresh subprocess so neither inherits the other's heap. Not
a test: nothing here asserts a figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GUIDE = "nhs-just-culture-guide"
DRAFT = "9.0.0"
MODES = ("unload", "keep")


def rss_mb() -> float:
    """Resident set size of this process in MiB, from /proc/self/status (VmRSS, in kB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def make_directory(target: Path) -> Path:
    """Write the guide's 1.0.0 with the real lock, and a draft copy (``DRAFT``) with its cases."""
    folder = target / GUIDE
    folder.mkdir(parents=True)
    shutil.copy2(ROOT / "policies" / "policies.lock", target / "policies.lock")
    for suffix in (".yaml", ".tests.yaml"):
        source = (ROOT / "policies" / GUIDE / f"1.0.0{suffix}").read_text(encoding="utf-8")
        shutil.copy2(ROOT / "policies" / GUIDE / f"1.0.0{suffix}", folder / f"1.0.0{suffix}")
        draft = re.sub(r"^version: .*$", f"version: {DRAFT}", source, count=1, flags=re.MULTILINE)
        draft = re.sub(r"^status: .*$", "status: draft", draft, count=1, flags=re.MULTILINE)
        (folder / f"{DRAFT}{suffix}").write_text(draft, encoding="utf-8")
    return folder / f"{DRAFT}.yaml"


def run_mode(mode: str, reloads: int) -> dict[str, Any]:
    """Serve the directory, reload ``reloads`` times with the draft changed each time; return the figures."""
    from fairpath.engine.durable import DurableEngine  # noqa: PLC0415 - imported after argument parsing
    from fairpath.serving.evaluator import Evaluator  # noqa: PLC0415
    from fairpath.serving.reload import Reloader  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as scratch:
        draft = make_directory(Path(scratch))
        text = draft.read_text(encoding="utf-8")
        evaluator = Evaluator(engine=DurableEngine(unload=mode == "unload"))
        reloader = Reloader(evaluator, scratch)
        assert reloader.reload("startup").ok
        gc.collect()
        before = rss_mb()
        durations = []
        checkpoints: dict[int, float] = {}
        for round_ in range(reloads):
            draft.write_text(f"{text}# reload {round_}\n", encoding="utf-8")
            began = time.perf_counter()
            result = reloader.reload("watch")
            durations.append(time.perf_counter() - began)
            if not result.ok or result.loaded != (f"{GUIDE}@{DRAFT}",):
                raise RuntimeError(f"reload {round_} did not load the draft: {result}")
            decision = evaluator.evaluate(GUIDE, {"is_patient_safety_incident": "NO"}, version=DRAFT)
            assert decision.policy.digest == evaluator.registry.get(GUIDE, DRAFT).digest
            if (round_ + 1) % max(1, reloads // 4) == 0:
                gc.collect()
                checkpoints[round_ + 1] = rss_mb()
        gc.collect()
        return {
            "mode": mode,
            "reloads": reloads,
            "rss_before_mb": before,
            "rss_after_mb": rss_mb(),
            "rss_at_mb": checkpoints,
            "rulesets": evaluator.engine.rulesets,
            "reload_ms_mean": statistics.fmean(durations) * 1000,
            "reload_ms_p50": statistics.median(durations) * 1000,
            "reload_ms_max": max(durations) * 1000,
        }


def main() -> int:
    """Run both modes in subprocesses (or one mode, with ``--mode``) and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--reloads", type=int, default=200)
    parser.add_argument("--mode", choices=MODES, help="run one mode in this process and print JSON")
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.reloads)))
        return 0
    rows = []
    for mode in MODES:
        completed = subprocess.run(
            [sys.executable, __file__, "--mode", mode, "--reloads", str(args.reloads)],
            capture_output=True, text=True, check=True, cwd=ROOT,
        )
        rows.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    titles = ["unloading on" if row["mode"] == "unload" else "unloading off" for row in rows]
    header = f"{'':<32}" + "".join(f"{title:>16}" for title in titles)
    print(f"{args.reloads} reloads of a changed draft of {GUIDE} (one new ruleset each)\n")
    print(header)
    for label, key, unit in (
        ("RSS after start-up reload", "rss_before_mb", "MiB"),
        *((f"RSS after {n} reloads", f"rss_at_mb:{n}", "MiB") for n in rows[0]["rss_at_mb"]),
        ("RSS growth", None, "MiB"),
        ("durable_rules rulesets", "rulesets", ""),
        ("reload time, mean", "reload_ms_mean", "ms"),
        ("reload time, p50", "reload_ms_p50", "ms"),
        ("reload time, max", "reload_ms_max", "ms"),
    ):
        cells = []
        for row in rows:
            if key is None:
                value = row["rss_after_mb"] - row["rss_before_mb"]
            elif key.startswith("rss_at_mb:"):
                value = row["rss_at_mb"][key.split(":")[1]]
            else:
                value = row[key]
            shown = f"{value:>12.1f}" if isinstance(value, float) else f"{value:>12}"
            cells.append(f"{shown} {unit:<3}")
        print(f"{label:<32}" + "".join(cells))
    grown = [row["rss_after_mb"] - row["rss_before_mb"] for row in rows]
    if len(grown) == 2 and args.reloads:
        per = (grown[1] - grown[0]) / args.reloads * 1024
        print(f"\nunloading saves about {per:.0f} KiB per superseded version")
    return 0


if __name__ == "__main__":
    sys.exit(main())
