"""A minimal valid policy as data, for unit tests that break one thing at a time.

Tests take :func:`minimal_policy`, change one entry, and write it with
:func:`write_policy`. The written file starts with :data:`HEADER_LINES` comment
lines, so the top-level mapping starts on line ``HEADER_LINES + 1`` (a line
number that cannot be right by accident).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from fairpath.policy.loader import load_bytes
from fairpath.policy.model import Policy

HEADER = "# A minimal policy written by the unit tests.\n# Every test changes one thing.\n"
HEADER_LINES = HEADER.count("\n")


def minimal_policy(name: str = "mini-policy", version: str = "1.2.3", **top: Any) -> dict[str, Any]:
    """Return a small valid policy: one fact of each type, two pathways, two walk rules, advice, a check."""
    document: dict[str, Any] = {
        "policy": name,
        "version": version,
        "title": "Mini policy",
        "status": "active",
        "effective_from": "2020-01-01",
        "facts": [
            {"name": "intent_to_harm", "type": "answer", "question": "Was there intent to harm?"},
            {"name": "severity", "type": "enum", "values": ["LOW", "HIGH"], "question": "How severe?"},
            {"name": "stage", "type": "enum", "values": ["OPEN", "UNKNOWN"], "question": "Which stage?"},
            {"name": "years", "type": "number", "question": "Years qualified?"},
            {"name": "on_duty", "type": "bool", "question": "On duty?"},
            {"name": "note", "type": "string", "question": "Any note?"},
        ],
        "pathways": [
            {"code": "ACT", "title": "Act", "recommendation": "Act on it.", "individual_directed": True},
            {"code": "LEARN", "title": "Learn", "recommendation": "Learn from it.",
             "individual_directed": False},
        ],
        "rules": [
            {"id": "r1", "title": "Intent", "when": "intent_to_harm is YES",
             "then": "pathway ACT (intent)", "else": "go to r2"},
            {"id": "r2", "title": "Experience", "when": "years >= 2",
             "then": "pathway ACT", "else": "pathway LEARN"},
        ],
        "advice": [
            {"id": "a1", "code": "HR_ADVICE", "text": "Ask HR.", "when": "pathway is ACT"},
        ],
        "checks": [
            {"id": "c1", "text": "Severe but no intent.",
             "when": "severity is HIGH and intent_to_harm is NO"},
        ],
    }
    document.update(top)
    return document


def policy_text(document: Any) -> str:
    """Render ``document`` as the YAML text :func:`write_policy` writes."""
    return HEADER + yaml.safe_dump(document, sort_keys=False, width=1000, allow_unicode=True)


def write_policy(path: Path, document: Any) -> Path:
    """Write ``document`` as YAML (after the header comment) to ``path``; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(policy_text(document), encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    """Return the 1-based number of the first line of ``path`` containing ``needle``."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def build_policy(document: Any | None = None) -> Policy:
    """Load ``document`` (default: :func:`minimal_policy`) without touching the disk."""
    return load_bytes(policy_text(minimal_policy() if document is None else document).encode())


#: The codes of the set fact ``parties`` in :func:`set_and_always_policy`.
PARTIES = ["PATIENT", "FAMILY", "STAFF"]


def set_and_always_policy() -> dict[str, Any]:
    """The minimal policy with a set fact ``parties``, ``always`` opening and closing the walk, ``lacks`` overlays.

    Walk: r0 (always) -> r1 "parties lacks PATIENT" -> LEARN (no_patient), else r2 (always) -> ACT.
    """
    document = minimal_policy(name="set-policy")
    document["facts"].append({"name": "parties", "type": "set", "values": PARTIES, "question": "Who was affected?"})
    document["rules"] = [
        {"id": "r0", "title": "Screen every case", "question": "Screen the case?", "when": "always",
         "then": "go to r1", "else": "go to r1"},
        {"id": "r1", "title": "No patient affected", "when": "parties lacks PATIENT",
         "then": "pathway LEARN (no_patient)", "else": "go to r2"},
        {"id": "r2", "title": "A patient was affected", "question": "Act on it?", "when": "always",
         "then": "pathway ACT (patient)", "else": "pathway LEARN"},
    ]
    document["advice"] = [
        {"id": "a1", "code": "FAMILY_LIAISON", "text": "Offer the family a liaison.",
         "when": "parties lacks FAMILY and parties has PATIENT"},
        {"id": "a2", "code": "STAFF_SUPPORT_OFFER", "text": "Offer staff support.", "when": "always"},
    ]
    document["checks"] = [
        {"id": "c1", "text": "Staff named but no family.",
         "when": "not (parties lacks STAFF) and parties lacks FAMILY"},
    ]
    return document
