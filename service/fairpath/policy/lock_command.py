"""``fairpath policy lock [DIR]``: record the digests of policy versions not yet locked.

Adds a ``name@version: sha256`` line to ``DIR/policies.lock`` for every version
that loads and is not locked yet. It never rewrites a locked line on its own: a
version whose file no longer matches is reported (exit 1) and left alone until
it is re-locked by name with ``--update NAME@VERSION``, which prints the old and
new digests. ``--check`` writes nothing and fails when the lock is not up to
date, for CI.

Exit codes: 0 the lock matches every file (after writing, unless ``--check``);
1 a file differs from its locked digest, a file does not load, an ``--update``
names no file, or (``--check``) the lock would change; 2 usage error or a
malformed lock file.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TextIO

from fairpath.errors import PolicyFileError
from fairpath.policy.lock import LockPlan, lock_path, plan_lock, short, write_lock

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_USAGE = 2
_DESCRIPTION = (
    "Record in DIR/policies.lock the SHA-256 of every policy version not locked yet. "
    "A locked line is never rewritten on its own: a version whose file differs is reported "
    "(exit 1) until it is re-locked on purpose with --update NAME@VERSION."
)


def add_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``lock`` on the ``fairpath policy`` subcommands."""
    command = subparsers.add_parser(
        "lock",
        help="record the digests of policy versions not yet locked",
        description=_DESCRIPTION,
    )
    command.add_argument(
        "directory", nargs="?", metavar="DIR",
        help="policy directory (default: $FAIRPATH_POLICIES, else ./policies)",
    )
    command.add_argument(
        "--update", action="append", default=[], metavar="NAME@VERSION",
        help="re-lock this version to its file's current digest (repeatable)",
    )
    command.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 unless the lock is up to date (for CI)"
    )
    command.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Plan the new lock, print it, write it (unless ``--check``); return the exit code."""
    out, err = out or sys.stdout, err or sys.stderr
    root = Path(args.directory or os.environ.get("FAIRPATH_POLICIES", "policies"))
    if not root.is_dir():
        err.write(f"fairpath policy lock: error: {root} is not a directory\n")
        return EXIT_USAGE
    try:
        plan = plan_lock(root, args.update)
    except PolicyFileError as error:
        err.write(f"fairpath policy lock: error: {error}\n")
        return EXIT_USAGE
    report(plan, out, dry_run=args.check)
    target = lock_path(root)
    if plan.changed and not args.check:
        write_lock(root, plan.digests)
        out.write(f"wrote {target}\n")
    elif plan.changed:
        out.write(f"{target} is not up to date (--check: nothing written)\n")
        return EXIT_MISMATCH
    elif plan.ok:
        out.write(f"{target} is up to date\n")
    return EXIT_OK if plan.ok else EXIT_MISMATCH


def report(plan: LockPlan, out: TextIO, *, dry_run: bool = False) -> None:
    """Print one line per change or refusal, then a count; with ``dry_run`` (``--check``), what it would do."""
    lock, relock = ("would lock", "would re-lock") if dry_run else ("locked", "re-locked")
    width = len(relock) + 2
    for key, digest in plan.added:
        out.write(f"{lock:<{width}}{key}  sha256 {short(digest)}\n")
    for key, old, new in plan.updated:
        out.write(f"{relock:<{width}}{key}  sha256 {short(old)} -> {short(new)}\n")
    for key, locked, actual in plan.mismatched:
        out.write(
            f"{'DIFFERS':<{width}}{key}  locked sha256 {short(locked)}, file {short(actual)}: left as locked "
            f"(publish a new version, or re-lock on purpose with --update {key})\n"
        )
    for key in plan.missing:
        out.write(f"{'no file':<{width}}{key}  is locked but no policy file defines it (line kept)\n")
    for problem in plan.problems:
        out.write(f"{'error':<{width}}{problem}\n")
    out.write(
        f"{len(plan.added)} {lock}, {len(plan.updated)} {relock}, {plan.unchanged} unchanged, "
        f"{len(plan.mismatched)} differing, {len(plan.problems)} error(s)\n"
    )
