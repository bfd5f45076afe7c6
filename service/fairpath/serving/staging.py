"""Stage a new serving state from the policy directory, next to the one serving now.

:func:`stage` reads every policy file and decides, file by file, what the new
state serves from it:

1. content unchanged since the serving state loaded it (same path, same
   digest): carried over as it is, compiled ruleset and explainer included;
2. otherwise the file is loaded, checked against ``policies.lock``
   (:mod:`fairpath.policy.lock`), compiled and registered with the engine, and
   its own test cases (``<version>.tests.yaml``) are run through the real
   engine; only if all of that succeeds does it serve;
3. if any step refuses it, whatever was serving from that path keeps serving,
   exactly as it was, and the reasons are returned as
   :class:`~fairpath.problems.Problem` values.

A version that appears in two files never serves from the newcomer: the one
already serving stays, and two new ones are both refused (no winner by file
order). A file that disappeared stops serving.

Chained policies (``requires:``) are then checked against everything that
would serve (:mod:`fairpath.policy.requirements`): a version whose required
policy or version is not served, whose requirements form a cycle, or that
cannot take the required decision's values, is refused with a ``requires``
problem naming its file and line (of a cycle, the changed files are refused,
so what was serving keeps serving); versions requiring a refused one follow.
A chained version's own test cases run only then, through the versions it
requires, as a server would evaluate it; a serving chained version's cases run
again when a version of a policy it requires changed. Nothing here touches the state
that is serving: the caller installs the result, or drops it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from fairpath.decisions import Decision, Subject
from fairpath.engine.protocol import Engine
from fairpath.errors import EngineError, PolicyFileError
from fairpath.policy.cases import cases_file, load_cases
from fairpath.policy.loader import MAX_POLICY_BYTES, MAX_TESTS_BYTES, load_bytes, read_limited
from fairpath.policy.lock import PolicyLock, read_lock
from fairpath.policy.registry import PolicyRegistry, scan_policy_files
from fairpath.policy.requirements import requirement_problems
from fairpath.problems import DUPLICATE, LOAD, LOCK, REQUIRES, TESTS, Problem
from fairpath.serving.gate import case_problems, compile_problem, run_cases
from fairpath.serving.state import ServedVersion, ServingState


@dataclass(frozen=True)
class Refusal:
    """A file that did not (newly) serve: why, and what keeps serving from it."""

    path: str
    problems: tuple[Problem, ...]
    version: str = ""  # name@version when the file got far enough to say
    still_serving: ServedVersion | None = None
    digest: str = ""  # the file's SHA-256, when it could be read
    locked: str = ""  # the digest policies.lock records for ``version``, if any

    @property
    def check(self) -> str:
        """The stage that refused the file."""
        return self.problems[0].check


@dataclass
class Staged:
    """A new state, ready to install, and what went into it.

    Attributes:
        state: Serves every accepted and carried-over version.
        loaded: ``name@version`` of the versions that start serving with it (new or changed).
        removed: ``name@version`` served before and not any more (their file is gone).
        refused: Files refused, with their problems.
        warnings: Problems that did not refuse a file (e.g. uncovered rules).

    """

    state: ServingState
    loaded: list[ServedVersion] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def problems(self) -> list[Problem]:
        """Every problem found, refusals first."""
        return [problem for refusal in self.refused for problem in refusal.problems] + self.warnings


def stage(
    root: str | Path,
    previous: ServingState,
    engine: Engine,
    *,
    allow_unlocked: bool = False,
    today: date | None = None,
) -> Staged:
    """Build the state ``root`` describes now, reusing what ``previous`` already serves.

    The returned state holds its own engine registrations; if it is never
    installed, :meth:`ServingState.supersede` it to give them back.
    """
    return _Stager(Path(root), previous, engine, allow_unlocked).run(today)


class _RefusedError(Exception):
    """A changed file may not serve (control flow inside :class:`_Stager`, never raised out of it)."""

    def __init__(self, problems: list[Problem], version: str = "") -> None:
        super().__init__(version)
        self.problems = problems
        self.version = version


class _Stager:
    def __init__(
        self, root: Path, previous: ServingState, engine: Engine, allow_unlocked: bool
    ) -> None:
        self.root = root
        self.engine = engine
        self.allow_unlocked = allow_unlocked
        self.previous = {version.policy.path: version for version in previous.versions()}
        self.previous_keys = {version.policy.key: version.policy.path for version in previous.versions()}
        self.listed: set[str] = set()  # every policy file found this time
        self.kept: dict[str, ServedVersion] = {}  # path -> carried over from the previous state
        self.fresh: dict[str, ServedVersion] = {}  # path -> newly prepared (one registration held here)
        self.refused: list[Refusal] = []
        self.warnings: list[Problem] = []
        self.lock = PolicyLock("", {})
        self.ungated: set[str] = set()  # paths of fresh chained versions whose cases wait for what they require

    def run(self, today: date | None) -> Staged:
        try:
            self.lock = self.read_lock()
            files = self.files()
            self.listed = {str(path) for path in files}
            for path in files:
                self.take(path)
            served = self.resolve_requirements(self.resolve_duplicates(), today)
            registry = PolicyRegistry((v.policy for v in served), today=today)
        except BaseException:
            for version in self.fresh.values():
                self.engine.release(version.compiled)
            raise
        for version in self.kept.values():
            self.engine.register(version.compiled)  # the new state's own registration
        state = ServingState(registry, served, self.engine)
        now = {version.policy.key for version in served}
        return Staged(
            state=state,
            loaded=sorted(self.fresh.values(), key=lambda v: v.policy.key),
            removed=sorted({v.policy.key for v in self.previous.values()} - now),
            refused=self.refused,
            warnings=self.warnings,
        )

    def read_lock(self) -> PolicyLock:
        try:
            return read_lock(self.root)
        except PolicyFileError as error:
            # Every new version not a draft is then refused (or, with --allow-unlocked, warned about).
            self.refused.append(Refusal(error.path, (Problem.from_error(error, check=LOCK),)))
            return PolicyLock(error.path, {}, exists=False)

    def files(self) -> list[Path]:
        if not self.root.is_dir():
            problem = Problem(path=str(self.root), message="policy directory does not exist")
            self.refused.append(Refusal(str(self.root), (problem,)))
            return []
        scan = scan_policy_files(self.root)
        ignored = "ignored: a symlink leading outside the policy directory"
        self.warnings += [Problem(path=str(link), severity="warning", message=ignored) for link in scan.outside]
        return scan.files

    def refuse(self, path: str, problems: list[Problem], version: str = "", digest: str = "") -> None:
        previous = self.previous.get(path)
        if previous is not None:
            self.kept[path] = previous
        locked = self.lock.digests.get(version, "")
        self.refused.append(Refusal(path, tuple(problems), version, previous, digest, locked))

    def take(self, file: Path) -> None:
        path = str(file)
        try:
            data = read_limited(file, MAX_POLICY_BYTES)
        except PolicyFileError as error:
            self.refuse(path, [Problem.from_error(error)])
            return
        digest = hashlib.sha256(data).hexdigest()
        previous = self.previous.get(path)
        if previous is not None and previous.policy.digest == digest:
            self.kept[path] = previous
            problem = self.lock.verify(previous.policy, allow_unlocked=self.allow_unlocked)
            if problem is not None and problem.is_error:
                # The lock changed under a serving version: say so, and keep serving it.
                self.refuse(path, [problem], previous.policy.key, digest)
            elif problem is not None:
                self.warnings.append(problem)
            return
        try:
            self.fresh[path], warnings = self.admit(path, data)
        except _RefusedError as refused:
            self.refuse(path, refused.problems, refused.version, digest)
            return
        except Exception as error:
            problem = Problem(path=path, check=LOAD, message=f"could not be loaded: {type(error).__name__}")
            self.refuse(path, [problem], "", digest)
            return
        self.warnings += warnings

    def admit(self, path: str, data: bytes) -> tuple[ServedVersion, list[Problem]]:
        """Load, lock-check, compile, register and test one changed file; raises :class:`_RefusedError`."""
        try:
            policy = load_bytes(data, path)
        except PolicyFileError as error:
            raise _RefusedError([Problem.from_error(error)]) from None
        serving_from = self.previous_keys.get(policy.key, path)
        if serving_from != path and serving_from in self.listed:
            # Refused before compiling: the version is served from its own file already.
            message = f"{policy.key} is also defined in {serving_from}, which serves it"
            raise _RefusedError([Problem(path=path, check=DUPLICATE, message=message)], policy.key)
        warnings = []
        problem = self.lock.verify(policy, allow_unlocked=self.allow_unlocked)
        if problem is not None:
            if problem.is_error:
                raise _RefusedError([problem], policy.key)
            warnings.append(problem)
        try:
            version = ServedVersion.prepare(policy, self.engine)
        except (PolicyFileError, EngineError) as error:
            raise _RefusedError([compile_problem(error, path)], policy.key) from None
        if policy.requires:
            # Its cases need the versions it requires, known only once every file is read.
            self.ungated.add(path)
            return version, warnings
        gate = gate_problems(version, self.engine)
        if any(problem.is_error for problem in gate):
            self.engine.release(version.compiled)
            raise _RefusedError(gate, policy.key)
        return version, warnings + gate

    def resolve_duplicates(self) -> list[ServedVersion]:
        # Carried-over versions were unique in the previous state. A new version whose key is
        # carried over, or that another new file also defines, is refused; its path falls back
        # to what it served before, which may clash with another new one: repeat until stable.
        while True:
            kept = {version.policy.key: path for path, version in self.kept.items()}
            paths: dict[str, list[str]] = {}
            for path, version in self.fresh.items():
                paths.setdefault(version.policy.key, []).append(path)
            clashes = [
                (path, version) for path, version in self.fresh.items()
                if version.policy.key in kept or len(paths[version.policy.key]) > 1
            ]
            if not clashes:
                return sorted([*self.kept.values(), *self.fresh.values()], key=lambda v: v.policy.key)
            for path, version in clashes:
                key = version.policy.key
                elsewhere = [*([kept[key]] if key in kept else []), *(p for p in paths[key] if p != path)]
                del self.fresh[path]
                self.engine.release(version.compiled)
                message = f"{key} is also defined in {', '.join(elsewhere)}"
                self.refuse(path, [Problem(path=path, check=DUPLICATE, message=message)], key)


    def resolve_requirements(self, served: list[ServedVersion], today: date | None) -> list[ServedVersion]:
        """Refuse what chained policies make unservable, then gate the chained versions; repeat until stable."""
        previous_keys = {version.policy.key for version in self.previous.values()}
        gated: set[str] = set()
        while True:
            by_key = {version.policy.key: version for version in served}
            refused = requirement_problems(
                [version.policy for version in served], blame=lambda policy: policy.path in self.fresh, once=True
            )
            for key, error in refused.items():
                self.drop(by_key[key], [Problem.from_error(error, check=REQUIRES)])
            if refused:
                served = self.current_versions()
                continue
            changed = {v.policy.name for v in self.fresh.values()} | {
                key.split("@")[0] for key in previous_keys - set(by_key)
            }
            pending = [
                version for version in served
                if version.policy.requires and version.policy.path not in gated and (
                    version.policy.path in self.ungated
                    or any(req.policy in changed for req in version.policy.requires)
                )
            ]
            if not pending:
                return served
            trial = ServingState(PolicyRegistry((v.policy for v in served), today=today), served, self.engine)
            failed = False
            for version in pending:
                gated.add(version.policy.path)
                gate = gate_problems(version, self.engine, trial)
                if any(problem.is_error for problem in gate):
                    self.drop(version, gate)
                    failed = True
                else:
                    self.warnings += gate
            if failed:
                served = self.current_versions()

    def current_versions(self) -> list[ServedVersion]:
        """What would serve now: carried over and fresh, by key."""
        return sorted([*self.kept.values(), *self.fresh.values()], key=lambda v: v.policy.key)

    def drop(self, version: ServedVersion, problems: list[Problem]) -> None:
        """Refuse ``version`` for what it requires; a fresh one falls back to what its file served before."""
        path = version.policy.path
        if self.fresh.get(path) is version:
            del self.fresh[path]
            self.ungated.discard(path)
            self.engine.release(version.compiled)
            self.refuse(path, problems, version.policy.key, version.policy.digest)
            return
        # A carried-over version that can no longer serve (what it requires is gone): it stops.
        self.kept.pop(path, None)
        self.refused.append(Refusal(path, tuple(problems), version.policy.key, None, version.policy.digest))


def gate_problems(version: ServedVersion, engine: Engine, state: ServingState | None = None) -> list[Problem]:
    """Run a prepared version's own test cases through ``engine``; errors mean it must not serve.

    A chained version's cases are evaluated through ``state``, which serves what it requires.
    A version with no tests file, no cases or a failing case is refused; cases
    that leave a rule, advice, check or pathway unexercised are a warning
    (``fairpath policy test`` is where coverage fails a build). The problems are made by
    :func:`fairpath.serving.gate.case_problems`, as ``ValidatePolicy``'s are.
    """
    policy = version.policy
    tests = cases_file(policy.path)
    if not tests.exists():
        message = f"{policy.key} has no test cases ({tests.name}); a version serves only once its cases pass"
        return [Problem(path=str(tests), check=TESTS, message=message)]
    try:
        text = read_limited(tests, MAX_TESTS_BYTES)
    except PolicyFileError as error:
        return [Problem.from_error(error, check=TESTS)]
    try:
        cases = load_cases(text, policy, str(tests))
    except PolicyFileError as error:
        return [Problem.from_error(error, check=TESTS)]
    if not cases:
        return [Problem(path=str(tests), check=TESTS, message=f"{policy.key}: the tests file has no cases")]

    def evaluate(facts: Mapping[str, object]) -> Decision:
        if state is not None:  # a chained version: what it requires is decided first, from ``state``
            return state.decide(engine, version, facts, subject=Subject(), request_id="")
        return version.decide(engine, facts, subject=Subject(), request_id="")

    return case_problems(run_cases(version.compiled, cases, evaluate), str(tests))
