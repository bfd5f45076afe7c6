"""Test cases for :func:`tests.support.policy_builder.minimal_policy`, as data.

:func:`minimal_cases` passes and exercises every coverage item of the minimal
policy (each rule fired, not fired and unanswered, the advice, the check and
both pathways), so a test can break exactly one thing and see only that fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def minimal_cases(name: str = "mini-policy", version: str = "1.2.3") -> dict[str, Any]:
    """Return a tests document for the minimal policy with full coverage."""
    return {
        "policy": name,
        "version": version,
        "cases": [
            {"name": "intent leads to ACT", "facts": {"intent_to_harm": "YES"},
             "expect": {"pathway": "ACT", "sub_reason": "intent", "fired": ["r1"], "advice": ["HR_ADVICE"]}},
            {"name": "experience leads to ACT", "facts": {"intent_to_harm": "NO", "years": 3},
             "expect": {"pathway": "ACT", "fired": ["r2"], "advice": ["HR_ADVICE"]}},
            {"name": "inexperience leads to LEARN",
             "facts": {"intent_to_harm": "NO", "years": 1, "severity": "HIGH"},
             "expect": {"pathway": "LEARN", "fired": [], "warnings": ["c1"]}},
            {"name": "intent unanswered", "facts": {},
             "expect": {"status": "NEEDS_INFORMATION", "missing": ["intent_to_harm"]}},
            {"name": "years unanswered", "facts": {"intent_to_harm": "NO"},
             "expect": {"status": "NEEDS_INFORMATION", "missing": ["years"]}},
        ],
    }


def cases_text(document: Any) -> str:
    """Render a tests document as YAML."""
    return yaml.safe_dump(document, sort_keys=False, width=1000)


def write_cases(policy_path: Path, document: Any) -> Path:
    """Write ``document`` beside ``policy_path`` as ``<version>.tests.yaml``; returns its path."""
    path = policy_path.with_name(policy_path.name.removesuffix(".yaml") + ".tests.yaml")
    path.write_text(cases_text(document), encoding="utf-8")
    return path
