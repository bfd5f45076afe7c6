"""Policy directories for the reload tests: small versions with their own cases, locked or not.

:func:`write_version` writes ``mini-policy`` versions (from
:func:`tests.support.policy_builder.minimal_policy`) whose last rule's
threshold tells them apart, each with a tests file whose cases pass, or fail
on purpose. :func:`copy_policies` and :func:`add_version` work on a copy of the
real ``policies/`` directory instead.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import yaml
from fairpath.policy.lock import LOCK_FILE, plan_lock, write_lock

from tests.conftest import POLICIES
from tests.support.policy_builder import minimal_policy, write_policy

NAME = "mini-policy"


def mini_document(version: str, *, threshold: int = 2, status: str = "active", title: str = "Mini") -> Any:
    """Return a valid mini policy: ``years >= threshold`` leads to ACT, below it to LEARN."""
    document = minimal_policy(name=NAME, version=version, status=status, title=title)
    document["rules"][1]["when"] = f"years >= {threshold}"
    return document


def mini_cases(version: str, *, threshold: int = 2, wrong: bool = False) -> dict[str, Any]:
    """Cases for :func:`mini_document` (``wrong`` makes one of them expect the other pathway)."""
    above, below = threshold + 1, threshold - 1
    cases = [
        {"name": "intent", "facts": {"intent_to_harm": "YES"},
         "expect": {"pathway": "ACT", "sub_reason": "intent", "fired": ["r1"], "advice": ["HR_ADVICE"]}},
        {"name": "experienced", "facts": {"intent_to_harm": "NO", "years": above},
         "expect": {"pathway": "LEARN" if wrong else "ACT", "fired": ["r2"], "advice": ["HR_ADVICE"]}},
        {"name": "new", "facts": {"intent_to_harm": "NO", "years": below, "severity": "HIGH"},
         "expect": {"pathway": "LEARN", "warnings": ["c1"]}},
        {"name": "nothing known", "facts": {},
         "expect": {"status": "NEEDS_INFORMATION", "missing": ["intent_to_harm"]}},
        {"name": "years unknown", "facts": {"intent_to_harm": "NO"},
         "expect": {"status": "NEEDS_INFORMATION", "missing": ["years"]}},
    ]
    return {"policy": NAME, "version": version, "cases": cases}


def write_version(
    root: Path,
    version: str,
    *,
    threshold: int = 2,
    status: str = "active",
    title: str = "Mini",
    tests: bool = True,
    wrong: bool = False,
) -> Path:
    """Write ``root/mini-policy/<version>.yaml`` and (if ``tests``) its cases; return the policy path."""
    document = mini_document(version, threshold=threshold, status=status, title=title)
    path = write_policy(root / NAME / f"{version}.yaml", document)
    if tests:
        cases = yaml.safe_dump(mini_cases(version, threshold=threshold, wrong=wrong), sort_keys=False)
        (root / NAME / f"{version}.tests.yaml").write_text(cases, encoding="utf-8")
    return path


def lock(root: Path) -> None:
    """Record every version under ``root`` in its lock file (as ``fairpath policy lock`` does)."""
    write_lock(root, plan_lock(root).digests)


def copy_policies(destination: Path, *names: str) -> Path:
    """Copy the lock file and the named policies (default: all) of ``policies/``; return the copy."""
    destination.mkdir(parents=True)
    shutil.copy2(POLICIES / LOCK_FILE, destination / LOCK_FILE)
    for folder in sorted(POLICIES.iterdir()):
        if folder.is_dir() and (not names or folder.name in names):
            shutil.copytree(folder, destination / folder.name)
    return destination


def add_version(root: Path, name: str, source: str, version: str, *, status: str | None = None) -> Path:
    """Copy ``name``'s ``source`` version (policy and cases) to ``version``; return the new policy path."""
    folder = root / name
    for suffix in (".yaml", ".tests.yaml"):
        text = (folder / f"{source}{suffix}").read_text(encoding="utf-8")
        text = re.sub(r"^version: .*$", f"version: {version}", text, count=1, flags=re.MULTILINE)
        if status is not None and suffix == ".yaml":
            text = re.sub(r"^status: .*$", f"status: {status}", text, count=1, flags=re.MULTILINE)
        (folder / f"{version}{suffix}").write_text(text, encoding="utf-8")
    return folder / f"{version}.yaml"
