"""Lint findings accepted on review: ``<version>.accepted.yaml`` beside a policy version.

A lint warning is a question to the author, and sometimes the answer is "yes,
on purpose". Rather than leave the warning for every later reader to puzzle
over (or silence the check everywhere), the reviewer records the answer beside
the version::

    # policies/pre-formal-check/1.0.0.accepted.yaml
    accepted:
      - check: answer-leads-nowhere
        rule: S4
        reason: S4 is asked for the record ...

Each entry names the lint check and the rule of one finding and says why it
stands. ``fairpath policy lint`` then counts that finding as *accepted*, not as
a warning, and lists it with its reason under ``--show-accepted``.

The file sits beside the policy rather than in it because a published version's
file is locked (``policies.lock`` holds the SHA-256 of its bytes): writing the
acceptance into it would change a published policy's digest, which is exactly
what the lock exists to flag. The lock does not cover this file, and no server
reads it: it changes what lint says, never a decision.

Only warnings can be accepted. An entry that matches no finding (the policy
changed, or the check stopped reporting it) is itself reported, as a warning,
so acceptances do not outlive what they accepted.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fairpath.authoring.lint import LintReport
from fairpath.errors import PolicyFileError
from fairpath.policy.registry import ACCEPTED_SUFFIX
from fairpath.problems import Problem

#: The check that reports an acceptance matching no finding, or one naming an error.
STALE = "stale-acceptance"
_KEYS = frozenset({"check", "rule", "reason"})


@dataclass(frozen=True)
class Acceptance:
    """One accepted finding: its lint check, its rule, and why it stands."""

    check: str
    rule: str
    reason: str
    line: int  # in the accepted file, for messages


@dataclass(frozen=True)
class Accepted:
    """A warning lint found and a reviewer accepted, with the reason given."""

    problem: Problem
    reason: str


def accepted_path(policy_path: str | Path) -> Path:
    """Where the accepted findings of the policy file at ``policy_path`` live."""
    path = Path(policy_path)
    return path.with_name(path.name.removesuffix(".yaml") + ACCEPTED_SUFFIX)


def load_accepted(path: Path) -> list[Acceptance]:
    """Read an accepted-findings file; a missing file accepts nothing.

    Raises:
        PolicyFileError: The file is not YAML, or an entry lacks its check, rule or reason.

    """
    if not path.is_file():
        return []
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"))
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise PolicyFileError(f"cannot read accepted lint findings: {error}", path=str(path)) from None
    if not isinstance(data, dict) or set(data) != {"accepted"} or not isinstance(data["accepted"], list):
        raise PolicyFileError("must hold one key, accepted: a list of {check, rule, reason}", path=str(path))
    lines = _entry_lines(node)
    found = []
    for index, entry in enumerate(data["accepted"]):
        line = lines[index] if index < len(lines) else None
        if not isinstance(entry, dict) or set(entry) != _KEYS or not all(
            isinstance(entry[key], str) and entry[key].strip() for key in _KEYS
        ):
            raise PolicyFileError(
                f"accepted[{index}] must give check, rule and reason, each a non-empty string "
                "(a finding is accepted only with its reason)", path=str(path), line=line,
            )
        found.append(Acceptance(entry["check"], entry["rule"], " ".join(entry["reason"].split()), line or 0))
    return found


def apply_accepted(report: LintReport, acceptances: list[Acceptance], path: Path) -> tuple[LintReport, list[Accepted]]:
    """Move the warnings ``acceptances`` name out of ``report``; report the acceptances that match none.

    Returns:
        The report without the accepted warnings (plus one warning per stale acceptance), and
        the accepted findings with their reasons.

    """
    accepted: list[Accepted] = []
    kept: list[Problem] = []
    used: set[Acceptance] = set()
    for problem in report.problems:
        match = next((a for a in acceptances if (a.check, a.rule) == (problem.check, problem.rule_id)), None)
        if match is not None and problem.severity == "warning":
            accepted.append(Accepted(problem, match.reason))
            used.add(match)
        else:
            kept.append(problem)
    for acceptance in acceptances:
        if acceptance not in used:
            kept.append(Problem(
                str(path), f"accepts a {acceptance.check} finding on rule {acceptance.rule}, but lint reports no "
                "such warning (only warnings can be accepted): remove the entry, or check what changed",
                rule_id=acceptance.rule, line=acceptance.line or None, severity="warning", check=STALE,
            ))
    return dataclasses.replace(report, problems=tuple(kept)), accepted


def _entry_lines(node: yaml.Node | None) -> list[int]:
    """The 1-based line of each entry of the ``accepted`` list, for messages."""
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, value in node.value:
        if key.value == "accepted" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []
