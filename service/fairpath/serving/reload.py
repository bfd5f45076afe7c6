"""Hot reload: re-read the policy directory and swap in what now passes, atomically.

:class:`Reloader` is what the ``Reload`` RPC, SIGHUP and the directory watcher
(:mod:`fairpath.serving.watch`) all call, and what start-up calls first. One reload at a
time: it stages a new state beside the serving one (:mod:`fairpath.serving.staging`:
lock check, compile, the version's own test cases), installs it in the
:class:`~fairpath.serving.evaluator.Evaluator` with one reference assignment, and
records a :class:`ReloadResult` for ``GetStatus``. A refused file never
disturbs what is serving; evaluations in flight finish on the state they
started with, which then unloads the versions nobody serves any more.

Log events: ``policy_loaded`` per version that starts serving;
``policy_refused`` (lock) or ``policy_load_failed`` (anything else) per refused
file, naming what keeps serving from it; ``policy_removed`` per version whose
file is gone; then one ``policies_reloaded`` summary.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import structlog

from fairpath.policy.lock import short
from fairpath.problems import LOCK, Problem
from fairpath.serving.evaluator import Evaluator
from fairpath.serving.staging import Refusal, Staged, stage

TRIGGERS = ("startup", "rpc", "signal", "watch")

_log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ReloadResult:
    """What one reload did (``fairpath.v1.ReloadResult``).

    Attributes:
        trigger: ``startup``, ``rpc``, ``signal`` or ``watch``.
        ok: No file was refused.
        loaded: ``name@version`` of the versions that started serving.
        problems: Every problem found, refusals first, then warnings.
        finished_at: When the new state was installed.
        serving: How many versions serve after it.

    """

    trigger: str
    ok: bool
    loaded: tuple[str, ...]
    problems: tuple[Problem, ...]
    finished_at: datetime
    serving: int = 0


class Reloader:
    """Reloads one policy directory into one evaluator; safe to call from any thread."""

    def __init__(
        self,
        evaluator: Evaluator,
        policies_dir: str | Path,
        *,
        allow_unlocked: bool = False,
        today: Callable[[], date] | None = None,
    ) -> None:
        self.evaluator = evaluator
        self.policies_dir = Path(policies_dir)
        self.allow_unlocked = allow_unlocked
        self._today = today
        self._lock = threading.Lock()
        self._last: ReloadResult | None = None

    @property
    def last(self) -> ReloadResult | None:
        """The result of the most recent reload (``None`` before the first)."""
        return self._last

    def reload(self, trigger: str) -> ReloadResult:
        """Re-read the directory now and serve what passes; waits for a reload already running."""
        if trigger not in TRIGGERS:
            raise ValueError(f"trigger must be one of {', '.join(TRIGGERS)}")
        with self._lock:
            began = time.perf_counter()
            previous = self.evaluator.state
            try:
                staged = stage(
                    self.policies_dir, previous, self.evaluator.engine,
                    allow_unlocked=self.allow_unlocked, today=self._today() if self._today else None,
                )
            except Exception as error:
                # A defect, not a policy problem: keep serving, report it, keep the traceback in the log.
                _log.exception("reload_failed", trigger=trigger)
                message = f"reload failed: {type(error).__name__}"
                problem = Problem(path=str(self.policies_dir), message=message)
                return self._record(trigger, (), (problem,), len(previous.registry.all()))
            self.evaluator.install(staged.state)
            self._log_outcome(staged)
            loaded = tuple(version.policy.key for version in staged.loaded)
            result = self._record(trigger, loaded, tuple(staged.problems), len(staged.state.registry.all()))
            _log.log(
                20 if result.ok else 30,  # info, or warning when something was refused
                "policies_reloaded",
                trigger=trigger,
                ok=result.ok,
                loaded=list(loaded),
                removed=staged.removed,
                refused=len(staged.refused),
                problems=len(result.problems),
                serving=result.serving,
                duration_ms=round((time.perf_counter() - began) * 1000, 1),
            )
            return result

    def _record(
        self, trigger: str, loaded: tuple[str, ...], problems: tuple[Problem, ...], serving: int
    ) -> ReloadResult:
        ok = not any(problem.is_error for problem in problems)
        self._last = ReloadResult(trigger, ok, loaded, problems, datetime.now(UTC), serving)
        return self._last

    def _log_outcome(self, staged: Staged) -> None:
        registry = staged.state.registry
        for version in staged.loaded:
            policy = version.policy
            _log.info(
                "policy_loaded", version=policy.key, digest=short(policy.digest), status=policy.status,
                current=registry.is_current(policy), path=policy.path,
            )
        for refusal in staged.refused:
            _log_refusal(refusal)
        for key in staged.removed:
            _log.info("policy_removed", version=key)


def _log_refusal(refusal: Refusal) -> None:
    kept = refusal.still_serving
    fields: dict[str, object] = {
        "path": refusal.path,
        "version": refusal.version,
        "check": refusal.check,
        "error": str(refusal.problems[0]),
        "problems": len(refusal.problems),
        "still_serving": f"{kept.policy.key} {short(kept.policy.digest)}" if kept else "",
    }
    if refusal.check == LOCK:
        _log.error("policy_refused", expected=short(refusal.locked), actual=short(refusal.digest), **fields)
    else:
        _log.error("policy_load_failed", **fields)

