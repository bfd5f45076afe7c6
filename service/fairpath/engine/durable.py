"""durable_rules behind one small interface: register a compiled policy, evaluate facts.

durable_rules 2.0.28 is unmaintained and has traps (measured in
``docs/engine-notes.md``). Each is handled here, and only here:

* its stock ``Host`` runs background dispatcher threads that race request
  threads and crash the process → :class:`_SyncHost` disables them; every action
  runs inside the caller's ``assert_fact`` call;
* sessions are found by a 32-bit hash and at most 1,024 live per ruleset →
  ids come from a :class:`~fairpath.engine.sessions.SessionPool`, and every
  session's state is deleted in ``finally``;
* a rule matching the session state loops forever → every compiled pattern has
  a ``type`` discriminator, and a step budget aborts a runaway evaluation by
  making the state unserialisable (the one error durable_rules propagates);
* a fact matching no rule raises, and deleting that session afterwards
  crashes the process (found here: a segfault in ``delete_state``) → compiled
  walks are exhaustive; if one is not, that is an
  :class:`~fairpath.errors.EngineError`, the session is left alone and its id
  retired, and a ruleset that does this repeatedly is refused;
* exceptions inside actions are swallowed into the state → checked after
  every evaluation;
* it mutates the definition it is given → it only ever gets a deep copy;
* a ruleset cannot be replaced → names carry the file's digest, and a name is
  registered at most once;
* a ruleset cannot be removed either (no API; each costs about 300 KB) →
  registrations are counted, and when the last holder releases one, it is
  unloaded by hand (engine notes §4: drop it from the host's directory
  and list, then ``delete_ruleset`` its handle); holders guarantee that no
  evaluation is still running on it (:mod:`fairpath.serving.state`);
* actions are looked up by name → ``get_action`` refuses every name; actions
  are closures bound at registration from the compiler's closed set.

The GIL is held throughout durable_rules' C calls, so evaluations interleave
only between calls; with distinct session ids that is safe (tested with many
threads). For more throughput, run more processes.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import durable_rules_engine
import orjson
from durable import engine as durable_engine

from fairpath.engine.compiler import CASE, Action, CompiledPolicy, member_field
from fairpath.engine.protocol import EngineOutcome
from fairpath.engine.sessions import SessionPool
from fairpath.errors import EngineError
from fairpath.policy.conditions import Value


class _Json:
    """The two functions durable_rules' Python glue takes from ``json``, done by orjson.

    durable_rules turns the fact, the session state after every action and every
    action's message into JSON text and back: about a third of an evaluation's time
    with the standard library. orjson writes the same JSON (numbers are kept to a
    range written without exponents either way, see ``fairpath.policy.model``) and
    raises a ``TypeError`` subclass on an unserialisable value, which the runaway
    guard relies on.
    """

    @staticmethod
    def dumps(value: Any, ensure_ascii: bool = False) -> str:
        """JSON text of ``value`` (durable_rules always passes ensure_ascii=False)."""
        return orjson.dumps(value).decode()

    loads = staticmethod(orjson.loads)


_patch_lock = threading.Lock()


def patch_durable_rules() -> None:
    """Swap durable_rules' per-action clock and JSON glue for faster equivalents (idempotent).

    durable_rules stamps every action with ``_unix_now()``, which builds two datetimes and calls
    ``datetime.utcfromtimestamp`` (deprecated from Python 3.12, so a warning per action there). The
    stamp only times leases of asynchronous actions, which fairpath never uses; ``time.time`` gives
    the same seconds-since-epoch for a fraction of the cost. Its JSON glue is :class:`_Json`.

    An explicit step rather than an import side effect: :class:`DurableEngine` calls it when
    an engine is made, so merely importing this module changes nothing in durable_rules.
    """
    with _patch_lock:
        durable_engine._unix_now = time.time
        durable_engine.json = _Json

ENGINE_NAME = "durable_rules"
ENGINE_VERSION = metadata.version("durable-rules")
_SESSION_NOT_FOUND = "error code: 309"
_BUDGET_PER_RULE = 64
_STRANDED_LIMIT = 64  # sessions a ruleset may strand (unmatched facts) before it is refused


class _SyncHost(durable_engine.Host):  # type: ignore[misc]
    """A durable_rules host with no background threads and no actions by name."""

    def _run(self) -> None:
        """Start nothing: the stock dispatcher threads crash the process under load."""

    def get_action(self, action_name: str) -> Any:
        """Refuse: actions are bound as closures, never looked up by a name from a file."""
        raise LookupError(f"actions are not looked up by name ({action_name!r})")


@dataclass
class _Run:
    """What the actions of one evaluation reported (kept outside durable's state JSON)."""

    terminals: set[int] = field(default_factory=set)
    overlays: set[str] = field(default_factory=set)
    steps: int = 0


class _Unserialisable:
    """Put into the session state to abort a runaway evaluation (json.dumps fails)."""


class DurableEngine:
    """Evaluates compiled policies with durable_rules; safe to share between threads.

    Implements :class:`fairpath.engine.protocol.Engine`.
    """

    def __init__(self, sessions: int = 256, acquire_timeout: float = 5.0, *, unload: bool = True) -> None:
        patch_durable_rules()
        self._host = _SyncHost()
        self._pool = SessionPool(sessions)
        self._acquire_timeout = acquire_timeout
        self._runs: dict[str, _Run] = {}
        self._compiled: dict[str, CompiledPolicy] = {}
        self._holders: dict[str, int] = {}  # ruleset -> registrations not yet released
        self._unload = unload  # False keeps released rulesets loaded (to measure what unloading saves)
        self._stranded: dict[str, int] = {}  # ruleset -> sessions stranded by unmatched facts
        self._stranded_lock = threading.Lock()  # request threads count strandings concurrently
        self._register_lock = threading.Lock()

    @property
    def name(self) -> str:
        """``durable_rules``."""
        return ENGINE_NAME

    @property
    def version(self) -> str:
        """The installed durable-rules version."""
        return ENGINE_VERSION

    @property
    def sessions(self) -> SessionPool:
        """The session-id pool (exposed for tests and status)."""
        return self._pool

    @property
    def rulesets(self) -> int:
        """How many rulesets durable_rules holds right now (exposed for tests and the benchmark)."""
        return len(self._host._ruleset_list)

    def register(self, compiled: CompiledPolicy) -> None:
        """Register a compiled policy's ruleset, or count one more holder of the same content.

        Each call must be balanced by one :meth:`release` for the ruleset ever to
        be unloaded; registering the same content again never reaches durable_rules.
        """
        with self._register_lock:
            if compiled.ruleset in self._compiled:
                self._holders[compiled.ruleset] = self._holders.get(compiled.ruleset, 0) + 1
                return
            definition: dict[str, Any] = {}
            for name, rule in compiled.rules.items():
                body = copy.deepcopy(dict(rule))  # durable_rules deletes keys from what it is given
                body["run"] = self._bind(compiled, compiled.actions[name])
                definition[name] = body
            try:
                self._host.register_rulesets({compiled.ruleset: definition})
            except Exception as error:  # durable_rules raises bare Exception with a numeric code
                raise EngineError(f"durable_rules refused {compiled.ruleset}: {error}") from error
            self._compiled[compiled.ruleset] = compiled
            self._holders[compiled.ruleset] = 1

    def release(self, compiled: CompiledPolicy) -> None:
        """One holder is done with ``compiled``; the last one out unloads its ruleset.

        The caller guarantees that no evaluation of ``compiled`` is running or
        will start (:class:`fairpath.serving.state.ServingState` leases do): durable_rules
        answers an evaluation of a deleted ruleset with an error, not a crash,
        but it would still be a failed request.
        """
        with self._register_lock:
            holders = self._holders.get(compiled.ruleset, 0) - 1
            if holders > 0:
                self._holders[compiled.ruleset] = holders
                return
            self._holders.pop(compiled.ruleset, None)
            if self._unload:
                self._unload_ruleset(compiled.ruleset)

    def _unload_ruleset(self, name: str) -> None:
        # durable_rules has no unload API (engine notes §4): this is the manual recipe.
        self._compiled.pop(name, None)
        with self._stranded_lock:
            stranded = self._stranded.pop(name, 0)
        ruleset = self._host._ruleset_directory.pop(name, None)
        if ruleset is None:
            return
        self._host._ruleset_list.remove(ruleset)
        if stranded:
            # Sessions left behind by unmatched facts are still alive in it, and deleting a
            # live session is what crashed durable; leak this one ruleset rather than risk it.
            return
        durable_rules_engine.delete_ruleset(ruleset._handle)

    def _bind(self, compiled: CompiledPolicy, action: Action) -> Callable[[Any], None]:
        # A rule fires once per disjunct of an `$or` that holds, so a rule may fire
        # more than once; a loop fires without end. The budget tells them apart.
        budget = _BUDGET_PER_RULE * len(compiled.actions)

        def run_for(closure: Any) -> _Run:
            run = self._runs[closure.s["sid"]]
            run.steps += 1
            if run.steps > budget:
                # Raising here would be swallowed; an unserialisable state is not.
                closure.s["abort"] = _Unserialisable()
            return run

        terminal, overlays = action.terminal, action.overlays

        def on_fire(closure: Any) -> None:
            run = run_for(closure)
            if terminal >= 0:
                run.terminals.add(terminal)
            run.overlays.update(overlays)

        return on_fire

    def evaluate(self, compiled: CompiledPolicy, facts: Mapping[str, Value]) -> EngineOutcome:
        """Evaluate validated, normalised facts (no ``None``, answers without UNKNOWN)."""
        if compiled.ruleset not in self._compiled:
            raise EngineError(f"{compiled.ruleset} is not registered")
        if self._stranded.get(compiled.ruleset, 0) >= _STRANDED_LIMIT:
            raise EngineError(
                f"{compiled.ruleset} is disabled: it left facts unmatched {_STRANDED_LIMIT} times"
            )
        sid = self._pool.acquire(self._acquire_timeout)
        run = _Run()
        self._runs[sid] = run
        message: dict[str, Any] = dict(facts)
        for name, codes in compiled.set_facts.items():
            chosen = facts.get(name)
            if isinstance(chosen, tuple):
                message.update({member_field(name, code): code in chosen for code in codes})
                message[name] = list(chosen)
        message.update(type=CASE, sid=sid)
        unmatched = False
        try:
            state = self._host.assert_fact(compiled.ruleset, message)
            return self._outcome(compiled, run, state)
        except durable_engine.MessageNotHandledException:
            unmatched = True
            reason = f"{compiled.ruleset}: no compiled path matched; the walk is not exhaustive"
            # `from None` throughout: durable's messages quote the whole fact, and a chained
            # exception would carry the facts into the INTERNAL error's logged traceback.
            raise EngineError(reason) from None
        except TypeError:
            if run.steps > _BUDGET_PER_RULE * len(compiled.actions):
                reason = f"{compiled.ruleset}: runaway rules aborted after {run.steps} actions"
                raise EngineError(reason) from None
            raise EngineError(f"{compiled.ruleset}: durable_rules failed: TypeError") from None
        except EngineError:
            raise
        except Exception as error:
            raise EngineError(f"{compiled.ruleset}: durable_rules failed: {type(error).__name__}") from None
        finally:
            del self._runs[sid]
            if unmatched:
                # delete_state on this session segfaults: strand it and retire its id.
                self._strand(compiled.ruleset, sid)
            else:
                self._discard(compiled.ruleset, sid)

    def _outcome(self, compiled: CompiledPolicy, run: _Run, state: Mapping[str, Any] | None) -> EngineOutcome:
        if state is None:
            raise EngineError(f"{compiled.ruleset}: durable_rules returned no state (an action was lost)")
        if "exception" in state:
            raise EngineError(f"{compiled.ruleset}: an action failed inside durable_rules")
        if len(run.terminals) != 1:
            raise EngineError(f"{compiled.ruleset}: {len(run.terminals)} paths matched; expected exactly one")
        terminal = compiled.terminals[next(iter(run.terminals))]
        return EngineOutcome(
            terminal, frozenset(run.overlays) | frozenset(terminal.always_on), ENGINE_NAME, ENGINE_VERSION
        )

    def _strand(self, ruleset: str, sid: str) -> None:
        """Count a session left alive in ``ruleset`` and retire its id for good."""
        with self._stranded_lock:
            self._stranded[ruleset] = self._stranded.get(ruleset, 0) + 1
        self._pool.quarantine(sid)

    def _discard(self, ruleset: str, sid: str) -> None:
        try:
            self._host.delete_state(ruleset, sid)
        except Exception as error:  # durable raises bare Exception
            if _SESSION_NOT_FOUND in str(error):
                self._pool.release(sid)  # nothing was left behind
            else:
                # The session may still be alive: count it, so the ruleset is never deleted under it.
                self._strand(ruleset, sid)
            return
        self._pool.release(sid)
