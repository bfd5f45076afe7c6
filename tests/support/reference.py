"""A direct reading of the policy semantics, used only as a test oracle.

It walks the rules the way the README describes them, in plain Python. The
service never uses it: durable_rules makes every decision. Property tests
check that the engine's decisions and traces agree with this reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fairpath.policy import conditions as cond
from fairpath.policy.model import Policy


@dataclass(frozen=True)
class Expected:
    """What the semantics say one evaluation must produce."""

    status: str
    pathway: str
    sub_reason: str
    missing: tuple[str, ...]
    walk: tuple[tuple[str, str], ...]  # (rule id, FIRED | NOT_FIRED | UNANSWERED) in order
    overlays: frozenset[str]  # advice and check ids that hold


def expected(policy: Policy, facts: Mapping[str, cond.Value]) -> Expected:
    """Walk ``policy`` over normalised ``facts``."""
    walk: list[tuple[str, str]] = []
    rule = policy.start
    while True:
        gaps = tuple(f for f in cond.required_facts(rule.condition) if f not in facts)
        if gaps:
            walk.append((rule.id, "UNANSWERED"))
            outcome: dict[str, cond.Value] = {"individual_directed": False, "status": "NEEDS_INFORMATION"}
            return _finish(policy, facts, outcome, "NEEDS_INFORMATION", "", "", gaps, walk)
        held = cond.holds(rule.condition, facts)
        walk.append((rule.id, "FIRED" if held else "NOT_FIRED"))
        target = rule.then if held else rule.otherwise
        if target.rule:
            rule = policy.rules_by_id[target.rule]
            continue
        pathway = policy.pathways[target.pathway]
        outcome = {
            "pathway": pathway.code, "individual_directed": pathway.individual_directed, "status": "DECIDED"
        }
        return _finish(policy, facts, outcome, "DECIDED", pathway.code, target.sub_reason, (), walk)


def _finish(  # noqa: PLR0917 - a private helper called twice, positionally
    policy: Policy,
    facts: Mapping[str, cond.Value],
    outcome: Mapping[str, cond.Value],
    status: str,
    pathway: str,
    sub_reason: str,
    missing: tuple[str, ...],
    walk: list[tuple[str, str]],
) -> Expected:
    values = {**facts, **outcome}
    overlays = frozenset(
        rule.id for rule in (*policy.advice, *policy.checks) if cond.holds(rule.condition, values)
    )
    return Expected(status, pathway, sub_reason, missing, tuple(walk), overlays)
