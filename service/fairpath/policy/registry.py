"""The policy versions a server can evaluate, and which one is current.

Files live at ``policies/<name>/<version>.yaml`` (test cases beside them as
``<version>.tests.yaml``). The current version of a policy is, by an explicit
rule and never by file order: the highest semver among versions whose status
is ``active`` and whose ``effective_from`` date (if any) is not in the future.
Draft and retired versions are evaluable when a request pins them, never current.
"Today" is the server's local date, looked up when a request needs the current
version: a version whose ``effective_from`` arrives becomes current on that day,
without a reload.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from fairpath.errors import PolicyFileError, PolicyNotFoundError
from fairpath.policy.loader import load_file
from fairpath.policy.model import Policy
from fairpath.policy.vocabulary import ADVICE_CODES_FILE
from fairpath.suggest import did_you_mean

TESTS_SUFFIX = ".tests.yaml"
#: Lint findings accepted on review, beside a version (``fairpath.authoring.accepted``); not a policy file.
ACCEPTED_SUFFIX = ".accepted.yaml"


def semver_key(version: str) -> tuple[int, ...]:
    """Sort key for MAJOR.MINOR.PATCH versions."""
    return tuple(int(part) for part in version.split("."))


@dataclass(frozen=True)
class PolicyScan:
    """What a scan of the policy directory found.

    Attributes:
        files: Every policy file (test-case files excluded), sorted.
        outside: Symlinks whose target lies outside the directory, sorted; they are ignored.

    """

    files: list[Path]
    outside: list[Path]


def policy_files(root: str | Path) -> list[Path]:
    """Every policy file under ``root`` (test-case files excluded), sorted; see :func:`scan_policy_files`."""
    return scan_policy_files(root).files


def scan_policy_files(root: str | Path) -> PolicyScan:
    """Every policy file under ``root``, and the symlinks ignored because they lead out of it.

    Hidden files and directories are skipped and symlinked directories followed, because a
    Kubernetes ConfigMap volume holds every file twice: once in a hidden timestamped
    directory (``..2026_01_31_…``) and once as a symlink beside it, which links whole
    directories when the volume maps keys to ``<name>/<version>.yaml`` paths. Those links stay
    inside the directory. A symlink (to a file or a directory) whose target is outside it is
    not followed: the directory is what operators review and lock, and a link out of it could
    make the server read any file it can open.
    """
    top = os.path.realpath(root)
    found: list[Path] = []
    outside: list[Path] = []
    walked: set[str] = set()
    for directory, subdirectories, files in os.walk(root, followlinks=True):
        real = os.path.realpath(directory)
        if real in walked:  # a symlink loop, or a directory linked twice
            subdirectories.clear()
            continue
        walked.add(real)
        kept = []
        for name in subdirectories:
            if name.startswith("."):
                continue
            if _leaves(Path(directory, name), top):
                outside.append(Path(directory, name))
            else:
                kept.append(name)
        subdirectories[:] = kept
        for name in files:
            if (not name.endswith(".yaml") or name.startswith(".") or name.endswith((TESTS_SUFFIX, ACCEPTED_SUFFIX))
                    or name == ADVICE_CODES_FILE):
                continue
            path = Path(directory, name)
            (outside if _leaves(path, top) else found).append(path)
    return PolicyScan(sorted(found), sorted(outside))


def _leaves(path: Path, top: str) -> bool:
    """Whether ``path`` resolves (through any symlinks) to somewhere outside the directory ``top``."""
    return os.path.commonpath([os.path.realpath(path), top]) != top


class PolicyRegistry:
    """An immutable set of loaded policy versions."""

    def __init__(self, policies: Iterable[Policy], today: date | None = None) -> None:
        self._today = today.isoformat() if today else ""  # fixed by tests; otherwise the real date
        self._versions: dict[str, dict[str, Policy]] = {}
        for policy in policies:
            versions = self._versions.setdefault(policy.name, {})
            if policy.version in versions:
                raise PolicyFileError(
                    f"{policy.key} is also defined in {versions[policy.version].path}", path=policy.path
                )
            versions[policy.version] = policy
        self._current_on: tuple[str, dict[str, Policy | None]] = ("", {})

    @classmethod
    def from_directory(cls, root: str | Path, today: date | None = None) -> PolicyRegistry:
        """Load every policy file under ``root``; the first broken file raises :class:`PolicyFileError`."""
        if not Path(root).is_dir():
            raise PolicyFileError("policy directory does not exist", path=str(root))
        return cls((load_file(path) for path in policy_files(root)), today=today)

    def _current(self) -> dict[str, Policy | None]:
        today = self._today or date.today().isoformat()
        day, current = self._current_on
        if day != today:
            # Recomputed at most once a day; a race only computes the same answer twice.
            current = {name: self._choose_current(found, today) for name, found in self._versions.items()}
            self._current_on = (today, current)
        return current

    @staticmethod
    def _choose_current(versions: dict[str, Policy], today: str) -> Policy | None:
        live = [
            p for p in versions.values()
            if p.status == "active" and (not p.effective_from or p.effective_from <= today)
        ]
        return max(live, key=lambda p: semver_key(p.version), default=None)

    def get(self, name: str, version: str = "") -> Policy:
        """Return the pinned version, or the current one when ``version`` is empty."""
        versions = self._versions.get(name)
        if versions is None:
            raise PolicyNotFoundError(name, version, did_you_mean(name, self._versions))
        if not version:
            current = self._current()[name]
            if current is None:
                raise PolicyNotFoundError(name, "(no current version: pin one)")
            return current
        try:
            return versions[version]
        except KeyError:
            raise PolicyNotFoundError(name, version) from None

    def is_current(self, policy: Policy) -> bool:
        """Whether ``policy`` is what an unpinned request gets."""
        return self._current().get(policy.name) is policy

    def why_not_current(self, policy: Policy) -> str:
        """Why an unpinned request does not get ``policy`` ("" when it does), in the words of the rule above."""
        current = self._current().get(policy.name)
        if current is policy:
            return ""
        if policy.status != "active":
            return policy.status  # "draft" or "retired": never current
        today = self._today or date.today().isoformat()
        if policy.effective_from and policy.effective_from > today:
            return f"not yet effective (from {policy.effective_from})"
        return f"superseded by {current.version}" if current is not None else ""

    def all(self) -> list[Policy]:
        """Every loaded version, by name then semver."""
        return [
            policy
            for name in sorted(self._versions)
            for policy in sorted(self._versions[name].values(), key=lambda p: semver_key(p.version))
        ]
