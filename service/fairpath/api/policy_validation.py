"""``PolicyService.ValidatePolicy``: lint and test draft policy text without loading it into the server.

The text is parsed with the same loader as policy files, linted
(:mod:`fairpath.authoring.lint`) and its cases run
(:mod:`fairpath.serving.gate`) on a throwaway
:class:`~fairpath.serving.evaluator.Evaluator` with an engine of its own, which is
closed — its ruleset unloaded — before the answer goes back: nothing the
server serves is touched, and memory does not grow with each draft. A draft
that does not parse is an ordinary answer (``ok`` false, with the problem's
path, rule and line), never an RPC error.

Each validation runs in a child process of its own (:mod:`fairpath.api.isolation`),
for at most :data:`VALIDATION_SECONDS` (less if the call's deadline is nearer)
and within :data:`~fairpath.api.isolation.MEMORY_BYTES`: compiling and
enumerating a draft holds the GIL, which in the server's process would hold up
every ``Evaluate`` meanwhile. A draft that runs out of either is an answer with
a ``limits`` problem. At most one validation runs at a time in a server
process, so at most one core and one handler thread work on them: a call that
arrives while another runs is refused at once
(:class:`~fairpath.errors.ValidationBusyError`, ``RESOURCE_EXHAUSTED``), never
queued, because calls waiting for their turn would each hold a handler thread,
and a few of them would leave ``Evaluate`` none. The loader's and compiler's
own limits (file size, condition size, engine groups) refuse hostile text long
before those caps. The enumeration is bounded more tightly than on the command
line (:data:`MAX_COMBINATIONS`); a larger draft gets a ``gap`` warning saying
the enumeration was not done.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from fairpath.api import policy_convert
from fairpath.api.isolation import MEMORY_BYTES, Isolated, run_isolated
from fairpath.api.policy_convert import problem_to_proto, problems_to_proto
from fairpath.authoring.lint import lint_policy
from fairpath.errors import PolicyFileError, ValidationBusyError
from fairpath.policy.cases import CasesReport, cases_file, load_cases
from fairpath.policy.loader import load_bytes, load_file
from fairpath.policy.model import Policy
from fairpath.policy.requirements import closure, requirement_problems
from fairpath.policy.vocabulary import advice_codes_file, load_advice_codes
from fairpath.problems import LIMITS, TESTS, Problem, finding
from fairpath.serving.evaluator import Evaluator
from fairpath.serving.gate import case_problems, run_cases, trial_evaluator
from fairpath.v1 import policy_service_pb2 as pb

# Classes of answers lint may enumerate per request (the command line allows 2,000,000).
MAX_COMBINATIONS = 100_000
DEFAULT_PATH = "<policy>"
# The most one validation may take; the guide with its 69 cases takes about 1 s.
VALIDATION_SECONDS = 30.0
# Held by the one validation running in this process; taken without waiting (see the module docstring).
_running = threading.Lock()
# Imported once by the fork server (with lint, analysis, the compiler and the engine), so no child imports them again.
_PRELOAD = (__name__,)


def validate_policy(
    request: pb.ValidatePolicyRequest, seconds: float = VALIDATION_SECONDS, served: Sequence[str] = ()
) -> pb.ValidatePolicyResponse:
    """Lint the request's policy text and run its cases; return the problems and the test report.

    ``served`` are the files of the versions this server serves: a chained draft's cases run through
    the versions it requires, read from them.

    The work runs in a child process for at most ``seconds``.

    Raises:
        ValidationBusyError: another validation is running in this process; nothing was done.

    """
    path = request.path or DEFAULT_PATH
    if not _running.acquire(blocking=False):
        raise ValidationBusyError("another policy validation is running on this server; retry shortly")
    # A chained draft's cases need the versions it requires: the child reads the served versions' files.
    files = "\n".join(served).encode("utf-8")
    payload = b"%d\n%s%s" % (len(files), files, request.SerializeToString())
    try:
        isolated = run_isolated(validate_payload, payload, seconds, preload=_PRELOAD)
    finally:
        _running.release()
    if isolated.outcome == "done":
        return pb.ValidatePolicyResponse.FromString(isolated.answer)
    return pb.ValidatePolicyResponse(ok=False, problems=[problem_to_proto(_stopped(isolated, path, seconds))])


def validate_serialized(request: bytes, served: Sequence[str] = ()) -> bytes:
    """:func:`validate_policy`'s work on a serialized request (``served``: as there)."""
    parsed = pb.ValidatePolicyRequest.FromString(request)
    return _validate(parsed.policy_text, parsed.tests_text, parsed.path or DEFAULT_PATH, served).SerializeToString()


def validate_payload(payload: bytes) -> bytes:
    """:func:`validate_serialized` on :func:`validate_policy`'s payload (served files, then the request)."""
    size, _, rest = payload.partition(b"\n")
    files, request = rest[: int(size)], rest[int(size):]
    return validate_serialized(request, [name for name in files.decode("utf-8").split("\n") if name])


def _stopped(isolated: Isolated, path: str, seconds: float) -> Problem:
    """The problem that says why a validation gave no answer."""
    if isolated.outcome == "timeout":
        message = f"validation stopped after {seconds:.3g} s, the most it may take: simplify the policy or its cases"
    elif isolated.outcome == "memory":
        message = f"validation stopped: it needed more than {MEMORY_BYTES // 2**20} MiB, the most it may use"
    else:
        message = f"validation stopped unexpectedly (exit code {isolated.exit_code})"
    return Problem(path=path, message=message, check=LIMITS)


def _validate(policy_text: str, tests_text: str, path: str, served: Sequence[str] = ()) -> pb.ValidatePolicyResponse:
    try:
        policy = load_bytes(policy_text.encode("utf-8"), path=path)
        chain = _with_required(policy, served)
    except PolicyFileError as error:
        problem = Problem.from_error(error, path=path)
        return pb.ValidatePolicyResponse(ok=False, problems=[problem_to_proto(problem)])
    evaluator = trial_evaluator(policy, required=chain)
    if isinstance(evaluator, Problem):
        return _response(policy, [evaluator], None)
    try:
        linted = lint_policy(
            policy, policy_text, evaluator=evaluator, limit=MAX_COMBINATIONS, known_codes=_known_codes(served)
        )
        problems = list(linted.problems)
        report = _run_tests(policy, tests_text, evaluator, problems)
    finally:
        evaluator.close()
    return _response(policy, problems, report)


def _known_codes(served: Sequence[str]) -> frozenset[str] | None:
    """The advice codes listed beside the served policies (None when there is no such file)."""
    for file in served:
        found = advice_codes_file(file)
        if found is not None:
            try:
                return load_advice_codes(found)
            except PolicyFileError:
                return None  # `fairpath policy lint` reports the broken file; a draft is not to blame
    return None


def _with_required(policy: Policy, served: Sequence[str]) -> list[Policy]:
    """The draft and the served versions it requires (read from their files), checked as a reload would.

    Raises:
        PolicyFileError: The draft's requirements cannot be met (not served, a cycle, values it cannot take).

    """
    if not policy.requires:
        return [policy]
    candidates = []
    for file in served:
        try:
            loaded = load_file(file)
        except PolicyFileError:
            continue  # changed on disk since it was served into something that does not load
        if loaded.key != policy.key:
            candidates.append(loaded)
    chain = closure(policy, candidates)
    problem = requirement_problems(chain).get(policy.key)
    if problem is not None:
        raise PolicyFileError(problem.message, path=policy.path, line=problem.line)
    return chain


def _run_tests(
    policy: Policy, tests_text: str, evaluator: Evaluator, problems: list[Problem]
) -> CasesReport | None:
    """Run the cases in ``tests_text``, adding what is wrong with them to ``problems``."""
    tests_path = _tests_path(policy.path)
    if not tests_text.strip():
        # An error, as the reload gate makes it: a version is valid only once its cases pass.
        problems.append(finding(tests_path, "", None, "no test cases given: a version is valid only once its "
                                "cases pass and exercise every rule outcome, advice, check and pathway",
                                "error", TESTS))
        return None
    try:
        cases = load_cases(tests_text, policy, tests_path)
    except PolicyFileError as error:
        problems.append(Problem.from_error(error, check=TESTS, path=tests_path))
        return None
    report = run_cases(
        evaluator.compiled(policy),
        cases,
        lambda facts: evaluator.evaluate(policy.name, facts, version=policy.version),
    )
    problems.extend(case_problems(report, tests_path))
    return report


def _tests_path(path: str) -> str:
    """Name the tests like the file beside the policy: ``x/1.0.0.yaml`` → ``x/1.0.0.tests.yaml``."""
    if path.endswith(".yaml") and path != DEFAULT_PATH:
        return cases_file(path).as_posix()
    return "<tests>"


def _response(
    policy: Policy, problems: list[Problem], report: CasesReport | None
) -> pb.ValidatePolicyResponse:
    ok = report is not None and report.ok and not any(problem.is_error for problem in problems)
    response = pb.ValidatePolicyResponse(
        ok=ok,
        summary=policy_convert.policy_summary(policy, current=False),
        problems=problems_to_proto(problems),
    )
    if report is not None:
        response.tests.CopyFrom(
            pb.TestReport(
                passed=report.passed,
                failed=report.failed,
                cases=[
                    pb.TestCaseResult(name=c.name, passed=c.passed, failures=c.failures) for c in report.cases
                ],
                coverage=[pb.CoverageItem(item=i.item, kind=i.kind, hits=i.hits) for i in report.coverage],
            )
        )
    return response
