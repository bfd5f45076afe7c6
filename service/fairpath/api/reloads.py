"""``PolicyService.Reload`` and ``GetStatus``: hot reload and what is serving, over gRPC.

The servicer delegates both RPCs here. ``Reload`` runs a reload now (the same
one SIGHUP and the directory watcher run) and returns its result; ``GetStatus``
lists the versions serving right now, with digest and which is current, and
the result of the last reload, whatever triggered it.
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf import timestamp_pb2

from fairpath.api import convert
from fairpath.errors import ReloadUnavailableError
from fairpath.problems import Problem
from fairpath.serving.evaluator import Evaluator
from fairpath.serving.reload import Reloader, ReloadResult
from fairpath.v1 import decision_pb2, policy_service_pb2

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


def reload(reloader: Reloader | None) -> policy_service_pb2.ReloadResponse:
    """Reload now and answer with the result.

    Raises:
        ReloadUnavailableError: The server has no policy directory (no reloader).

    """
    if reloader is None:
        raise ReloadUnavailableError
    return policy_service_pb2.ReloadResponse(result=result_to_proto(reloader.reload("rpc")))


def status(evaluator: Evaluator, reloader: Reloader | None) -> policy_service_pb2.GetStatusResponse:
    """Describe the versions serving now and the last reload (absent before the first)."""
    registry = evaluator.registry  # one snapshot: a reload may swap it while we read
    response = policy_service_pb2.GetStatusResponse(
        versions=[convert.served_summary(registry, p) for p in registry.all()]
    )
    last = reloader.last if reloader is not None else None
    if last is not None:
        response.last_reload.CopyFrom(result_to_proto(last))
    return response
