"""``policies/policies.lock``: the digest each published policy version must keep.

A published version never changes silently. The lock file, committed beside
the policies, maps ``name@version`` to the SHA-256 of the policy file's bytes,
so any change to a published file shows up in review as a changed lock line.
The server checks every file against it at start-up and on every reload:

* digest equal to the locked one: served;
* digest different: refused (and the version, if it was serving, keeps
  serving exactly as before);
* not in the lock: refused, unless the version is a ``draft`` (drafts are never
  current by themselves, so authors may iterate on them) or the server runs
  with ``--allow-unlocked`` (development and tests).

The file is YAML, one quoted ``"name@version": "<sha256 hex>"`` line per
version, sorted, written only by ``fairpath policy lock``
(:func:`plan_lock` and :func:`write_lock`), which adds versions not yet
locked and changes an existing line only when asked to by name.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fairpath.errors import PolicyFileError
from fairpath.policy.loader import load_bytes
from fairpath.policy.model import Policy
from fairpath.policy.registry import policy_files
from fairpath.problems import LOCK, Problem

LOCK_FILE = "policies.lock"
_KEY = re.compile(r"^[a-z][a-z0-9-]{1,62}@(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_HEADER = """\
# fairpath policy lock: the SHA-256 of each published policy file, by name@version.
#
# The server refuses a policy file whose digest differs from its line here, and an
# active or retired version with no line (drafts may stay unlocked). Review every
# change to this file: a changed line means a published policy changed.
#
# Written by `fairpath policy lock` (adds versions not yet locked). To re-lock one
# version on purpose: `fairpath policy lock --update NAME@VERSION`.
"""


def lock_path(root: str | Path) -> Path:
    """Where the lock file of a policy directory lives."""
    return Path(root) / LOCK_FILE


def short(digest: str) -> str:
    """Return the digest prefix used in messages and logs."""
    return digest[:12]


@dataclass(frozen=True)
class PolicyLock:
    """The locked digests of one policy directory.

    Attributes:
        path: The lock file (it may not exist).
        digests: ``name@version`` → SHA-256 hex of the file's bytes.
        exists: Whether the lock file was there.

    """

    path: str
    digests: Mapping[str, str] = field(default_factory=dict)
    exists: bool = True

    def verify(self, policy: Policy, *, allow_unlocked: bool = False) -> Problem | None:
        """Return the lock's objection to serving ``policy``, or ``None`` when it has none."""
        locked = self.digests.get(policy.key)
        if locked is None:
            if policy.status == "draft":
                return None
            if allow_unlocked:
                return Problem(
                    path=policy.path, check=LOCK, severity="warning",
                    message=f"{policy.key} is not in {self.path}; served only because unlocked versions "
                    "are allowed (--allow-unlocked)",
                )
            return Problem(
                path=policy.path, check=LOCK,
                message=f"{policy.key} is not in {self.path}: record it with `fairpath policy lock` "
                "(only drafts may be served unlocked)",
            )
        if locked != policy.digest:
            return Problem(
                path=policy.path, check=LOCK,
                message=f"{policy.key} differs from its locked digest (locked sha256 {short(locked)}, "
                f"file {short(policy.digest)}): a published version never changes; publish a new "
                f"version, or re-lock on purpose with `fairpath policy lock --update {policy.key}`",
            )
        return None


def read_lock(root: str | Path) -> PolicyLock:
    """Read the lock file of ``root``; a missing file is an empty lock.

    Raises:
        PolicyFileError: The file exists but is not a valid lock file.

    """
    path = lock_path(root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return PolicyLock(str(path), {}, exists=False)
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyFileError(f"cannot read the lock file: {error}", path=str(path)) from error
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise PolicyFileError(f"the lock file is not valid YAML: {error}", path=str(path)) from error
    document = {} if document is None else document
    if not isinstance(document, dict):
        raise PolicyFileError('the lock file must be a mapping of "name@version": digest', path=str(path))
    digests: dict[str, str] = {}
    for key, digest in document.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise PolicyFileError(f"{key!r} is not name@MAJOR.MINOR.PATCH", path=str(path))
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            raise PolicyFileError(f"{key}: {digest!r} is not a SHA-256 hex digest", path=str(path))
        digests[key] = digest
    return PolicyLock(str(path), digests)


def render_lock(digests: Mapping[str, str]) -> str:
    """Return the text of a lock file: the header, then one sorted, quoted line per version."""
    lines = [f'"{key}": "{digests[key]}"\n' for key in sorted(digests)]
    return _HEADER + "\n" + "".join(lines)


def write_lock(root: str | Path, digests: Mapping[str, str]) -> Path:
    """Write the lock file atomically (a reader never sees half a file); returns its path."""
    path = lock_path(root)
    handle, temporary = tempfile.mkstemp(prefix=".policies.lock.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(render_lock(digests))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


@dataclass
class LockPlan:
    """What ``fairpath policy lock`` would write, and what it refuses to touch.

    Attributes:
        digests: The complete new lock content.
        added: Versions locked for the first time, with their digest.
        updated: Versions re-locked on request: (key, old digest, new digest).
        mismatched: Locked versions whose file now differs, left as they were: (key, locked, file).
        unchanged: How many locked versions still match their file.
        missing: Locked versions with no file (their lines are kept).
        problems: Files that do not load (they cannot be locked) and ``--update`` names with no file.

    """

    digests: dict[str, str]
    added: list[tuple[str, str]] = field(default_factory=list)
    updated: list[tuple[str, str, str]] = field(default_factory=list)
    mismatched: list[tuple[str, str, str]] = field(default_factory=list)
    unchanged: int = 0
    missing: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether the lock file needs writing."""
        return bool(self.added or self.updated)

    @property
    def ok(self) -> bool:
        """Whether every policy file now matches the lock."""
        return not self.mismatched and not self.problems


def plan_lock(root: str | Path, update: Iterable[str] = ()) -> LockPlan:
    """Work out the new lock for ``root``: lock new versions, re-lock only the ``update`` keys.

    Raises:
        PolicyFileError: The existing lock file is malformed (fix it by hand first).

    """
    lock = read_lock(root)
    plan = LockPlan(digests=dict(lock.digests))
    files: dict[str, list[Policy]] = {}
    for path in policy_files(root):
        try:
            policy = load_bytes(path.read_bytes(), str(path))
        except OSError as error:
            plan.problems.append(Problem(path=str(path), message=f"cannot read: {error.strerror}"))
            continue
        except PolicyFileError as error:
            plan.problems.append(Problem.from_error(error))
            continue
        files.setdefault(policy.key, []).append(policy)
    wanted = set(update)
    for key in sorted(wanted - set(files)):
        message = f"--update {key}: no policy file defines it"
        plan.problems.append(Problem(path=lock.path, check=LOCK, message=message))
    for key in sorted(files):
        defined = files[key]
        if len({policy.digest for policy in defined}) > 1:
            paths = ", ".join(policy.path for policy in defined)
            message = f"{key} is defined by several files: {paths}"
            plan.problems.append(Problem(path=defined[0].path, message=message))
            continue
        digest = defined[0].digest
        locked = lock.digests.get(key)
        if locked is None:
            plan.digests[key] = digest
            plan.added.append((key, digest))
        elif locked == digest:
            plan.unchanged += 1
        elif key in wanted:
            plan.digests[key] = digest
            plan.updated.append((key, locked, digest))
        else:
            plan.mismatched.append((key, locked, digest))
    plan.missing = sorted(set(lock.digests) - set(files))
    return plan

