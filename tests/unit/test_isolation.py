"""Work run in a child process (ValidatePolicy's), bounded in time and memory, and bounded problem lists.

The work functions are module-level so the child, forked from multiprocessing's
fork server, finds them by name.
"""

from __future__ import annotations

import os
import time

import pytest
from fairpath.api import policy_validation as validation
from fairpath.api.isolation import run_isolated
from fairpath.api.policy_convert import MAX_LISTED_PROBLEMS, MAX_MESSAGE_CHARS, problem_to_proto, problems_to_proto
from fairpath.errors import ValidationBusyError
from fairpath.problems import Problem
from fairpath.v1 import policy_service_pb2 as pb

from tests.conftest import GUIDE, POLICIES
from tests.support.policy_builder import minimal_policy, policy_text


def child_pid(payload: bytes) -> bytes:
    """Answer with the payload and the process it ran in."""
    return payload + b":" + str(os.getpid()).encode()


def allocate(payload: bytes) -> bytes:
    """Try to hold ``payload`` MiB at once."""
    held = bytearray(int(payload) * 2**20)
    return bytes(len(held))


def sleep(payload: bytes) -> bytes:
    """Take ``payload`` seconds."""
    time.sleep(float(payload))
    return b"slept"


def exit_hard(payload: bytes) -> bytes:
    """End the process at once with exit code ``payload``, answering nothing."""
    os._exit(int(payload))


def test_the_work_runs_in_another_process_and_its_answer_comes_back() -> None:
    """run_isolated returns the work's bytes, computed in a process that is not this one."""
    isolated = run_isolated(child_pid, b"hello", seconds=60)
    assert isolated.outcome == "done"
    greeting, pid = isolated.answer.split(b":")
    assert greeting == b"hello"
    assert int(pid) != os.getpid()


def test_work_past_its_memory_cap_fails_in_the_child_only() -> None:
    """Allocating 1 GiB under a 256 MiB cap: outcome ``memory``; this process never held that memory."""
    isolated = run_isolated(allocate, b"1024", seconds=60, memory_bytes=256 * 2**20)
    assert isolated.outcome == "memory"
    assert run_isolated(allocate, b"16", seconds=60, memory_bytes=256 * 2**20).outcome == "done"


def test_work_past_its_time_is_killed() -> None:
    """A child still working when its time is up is killed and reported as ``timeout``."""
    isolated = run_isolated(sleep, b"600", seconds=0.5)
    assert (isolated.outcome, isolated.answer) == ("timeout", b"")


def test_a_child_that_dies_without_answering_is_reported_with_its_exit_code() -> None:
    """A child that exits without an answer is ``died``, with its exit code."""
    isolated = run_isolated(exit_hard, b"7", seconds=60)
    assert (isolated.outcome, isolated.exit_code) == ("died", 7)


def test_a_validation_out_of_time_is_an_answer_with_a_limits_problem() -> None:
    """ValidatePolicy with no time left answers ok=false with one ``limits`` error at the request's path."""
    text = (POLICIES / GUIDE / "1.1.0.yaml").read_text(encoding="utf-8")
    tests = (POLICIES / GUIDE / "1.1.0.tests.yaml").read_text(encoding="utf-8")
    request = pb.ValidatePolicyRequest(policy_text=text, tests_text=tests, path="draft.yaml")
    response = validation.validate_policy(request, seconds=0.0)
    assert not response.ok
    [problem] = response.problems
    assert (problem.path, problem.check, problem.severity) == ("draft.yaml", "limits", "error")
    assert problem.message.startswith("validation stopped after 0 s")


def test_a_validation_answers_as_it_did_in_process() -> None:
    """The isolated answer equals the in-process one, byte for byte."""
    request = pb.ValidatePolicyRequest(policy_text=policy_text(minimal_policy()), path="p.yaml")
    isolated = validation.validate_policy(request)
    assert isolated == pb.ValidatePolicyResponse.FromString(validation.validate_serialized(request.SerializeToString()))
    assert isolated.summary.name == "mini-policy"


def test_a_validation_while_another_runs_is_refused_without_waiting_and_the_next_one_runs() -> None:
    """While the one validation slot is held, validate_policy raises ValidationBusyError; once free, it answers.

    The refusal needs no timing to show it did not wait: had it waited for the slot, held
    by this very thread, it would never return.
    """
    request = pb.ValidatePolicyRequest(policy_text=policy_text(minimal_policy()), path="p.yaml")
    busy = pytest.raises(ValidationBusyError, match="another policy validation is running")
    with validation._running, busy:  # the slot a validation in progress holds
        validation.validate_policy(request)
    assert validation.validate_policy(request).summary.name == "mini-policy"


def _problems(errors: int, warnings: int) -> list[Problem]:
    return [Problem(path=f"e{i}.yaml", message="broken") for i in range(errors)] + [
        Problem(path=f"w{i}.yaml", message="odd", severity="warning") for i in range(warnings)
    ]


def test_problem_lists_are_bounded_with_a_count_of_the_rest() -> None:
    """150 problems: the first MAX_LISTED_PROBLEMS listed, then one entry counting the 50 left out by severity."""
    listed = problems_to_proto(_problems(MAX_LISTED_PROBLEMS - 10, 60))
    assert len(listed) == MAX_LISTED_PROBLEMS + 1
    assert [p.path for p in listed[:3]] == ["e0.yaml", "e1.yaml", "e2.yaml"]
    last = listed[-1]
    assert (last.path, last.severity) == ("", "warning")
    assert last.message == "and 50 more problem(s) not listed (0 error(s), 50 warning(s))"
    errors_left_out = problems_to_proto(list(reversed(_problems(MAX_LISTED_PROBLEMS + 1, 10))))
    assert errors_left_out[-1].severity == "error"
    assert errors_left_out[-1].message == "and 11 more problem(s) not listed (11 error(s), 0 warning(s))"


def test_exactly_the_most_problems_are_listed_without_a_count() -> None:
    """MAX_LISTED_PROBLEMS problems are all listed, with no counting entry."""
    listed = problems_to_proto(_problems(MAX_LISTED_PROBLEMS, 0))
    assert [p.path for p in listed] == [f"e{i}.yaml" for i in range(MAX_LISTED_PROBLEMS)]


def test_a_long_problem_message_is_cut_on_the_wire() -> None:
    """A message longer than MAX_MESSAGE_CHARS is cut to that many characters, ending in an ellipsis."""
    wire = problem_to_proto(Problem(path="x.yaml", message="m" * 5000))
    assert len(wire.message) == MAX_MESSAGE_CHARS
    assert wire.message.endswith("…")
    assert problem_to_proto(Problem(path="x.yaml", message="m" * MAX_MESSAGE_CHARS)).message == "m" * MAX_MESSAGE_CHARS
