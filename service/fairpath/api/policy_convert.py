"""Translations of policies and what is wrong with them into ``fairpath.v1`` messages.

Pure functions, no gRPC: a policy version's summary and detail (facts, rules, pathways, what it
requires), the problems loading, locking, compiling, testing and linting report, and a reload's
result. Enum mappings are written out rather than derived from names so renaming a domain member
cannot silently change the wire.
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf import timestamp_pb2

from fairpath.policy.model import FactType, Policy
from fairpath.policy.registry import PolicyRegistry
from fairpath.problems import Problem
from fairpath.serving.reload import ReloadResult
from fairpath.v1 import decision_pb2, policy_service_pb2
from fairpath.v1 import decision_pb2 as pb

_FACT_TYPE = {
    FactType.ANSWER: pb.ANSWER,
    FactType.ENUM: pb.ENUM,
    FactType.BOOL: pb.BOOL,
    FactType.NUMBER: pb.NUMBER,
    FactType.STRING: pb.STRING,
    FactType.SET: pb.SET,
}


def policy_summary(policy: Policy, *, current: bool, not_current_reason: str = "") -> pb.PolicySummary:
    """Return the one-line description of a policy version.

    Args:
        policy: The loaded version.
        current: Whether an unpinned request gets this version
            (:meth:`fairpath.policy.registry.PolicyRegistry.is_current`).
        not_current_reason: Why not, when it is not
            (:meth:`fairpath.policy.registry.PolicyRegistry.why_not_current`).

    """
    return pb.PolicySummary(
        name=policy.name,
        version=policy.version,
        title=policy.title,
        digest=policy.digest,
        status=policy.status,
        current=current,
        source=policy.source,
        effective_from=policy.effective_from,
        not_current_reason="" if current else not_current_reason,
    )


def served_summary(registry: PolicyRegistry, policy: Policy) -> pb.PolicySummary:
    """Return a served version's summary: whether it is current and, if not, why not."""
    return policy_summary(
        policy, current=registry.is_current(policy), not_current_reason=registry.why_not_current(policy)
    )


def policy_detail(policy: Policy, *, current: bool, not_current_reason: str = "") -> pb.PolicyDetail:
    """Return everything a policy version declares: facts, walk rules and checks, pathways, advice."""
    return pb.PolicyDetail(
        summary=policy_summary(policy, current=current, not_current_reason=not_current_reason),
        description=policy.description,
        facts=[
            pb.FactSpec(
                name=f.name, type=_FACT_TYPE[f.type], allowed_values=f.values,
                question=f.question, description=f.description, sensitive=f.sensitive,
                taken_from=_taken_from(policy, f.name),
            )
            for f in policy.facts.values()
        ],
        requires=[
            pb.RequirementSpec(policy=r.policy, version=r.version, facts=dict(r.facts)) for r in policy.requires
        ],
        pathways=[
            pb.PathwaySpec(
                code=p.code, title=p.title, recommendation=p.recommendation,
                individual_directed=p.individual_directed, category=p.category,
            )
            for p in policy.pathways.values()
        ],
        advice=[
            pb.AdviceSpec(rule_id=a.id, code=a.code, text=a.text, condition=a.condition_text)
            for a in policy.advice
        ],
        rules=[
            *(
                pb.RuleSpec(
                    rule_id=r.id, title=r.title, question=r.question, condition=r.condition_text,
                    then_target=str(r.then), else_target=str(r.otherwise), kind=pb.QUESTION,
                )
                for r in policy.rules
            ),
            *(
                pb.RuleSpec(rule_id=c.id, title=c.title, condition=c.condition_text, kind=pb.CHECK)
                for c in policy.checks
            ),
        ],
    )


def _taken_from(policy: Policy, fact: str) -> str:
    """Where a chained fact comes from (``nhs-just-culture-guide@current pathway``); "" for the caller's facts."""
    chained = policy.chained.get(fact)
    return "" if chained is None else f"{chained[0].label} {chained[1]}"


#: Problems listed in one answer; the rest are counted in one last entry. A directory of thousands
#: of broken files must not make GetStatus, Reload or ValidatePolicy answers unboundedly large.
MAX_LISTED_PROBLEMS = 100


#: Characters of one problem's message on the wire (a failing case can quote long values).
MAX_MESSAGE_CHARS = 1000


def problem_to_proto(problem: Problem) -> decision_pb2.PolicyProblem:
    """Return the wire form of a problem (line 0 when unknown; a long message cut short)."""
    message = problem.message
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    return decision_pb2.PolicyProblem(
        path=problem.path,
        rule_id=problem.rule_id,
        line=problem.line or 0,
        message=message,
        severity=problem.severity,
        check=problem.check,
    )


def problems_to_proto(problems: Sequence[Problem]) -> list[decision_pb2.PolicyProblem]:
    """The first :data:`MAX_LISTED_PROBLEMS` problems, then one entry counting those left out.

    The counting entry has no path; its severity is ``error`` when any problem left out is one.
    """
    listed = [problem_to_proto(problem) for problem in problems[:MAX_LISTED_PROBLEMS]]
    rest = problems[MAX_LISTED_PROBLEMS:]
    if rest:
        errors = sum(problem.is_error for problem in rest)
        listed.append(
            decision_pb2.PolicyProblem(
                message=f"and {len(rest)} more problem(s) not listed ({errors} error(s), "
                f"{len(rest) - errors} warning(s))",
                severity="error" if errors else "warning",
            )
        )
    return listed


def result_to_proto(result: ReloadResult) -> policy_service_pb2.ReloadResult:
    """Return the wire form of a reload's result."""
    finished_at = timestamp_pb2.Timestamp()
    finished_at.FromDatetime(result.finished_at)
    return policy_service_pb2.ReloadResult(
        finished_at=finished_at,
        ok=result.ok,
        loaded=result.loaded,
        problems=problems_to_proto(result.problems),
        trigger=result.trigger,
    )
