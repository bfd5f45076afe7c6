"""What a server evaluates against: an immutable set of compiled policy versions.

A :class:`ServingState` is built whole (by :class:`~fairpath.serving.evaluator.Evaluator`
or by a reload, :mod:`fairpath.serving.staging`) and never changed afterwards; a reload
makes a new one and the evaluator swaps the reference. Each evaluation *leases*
the state it started on, so when a state is superseded it stays usable until its
last evaluation has finished, and only then gives its compiled versions back to
the engine, which unloads those no other state still holds. This is how memory
stays bounded although durable_rules can only ever add rulesets.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import structlog

from fairpath.decisions import Decision, Subject
from fairpath.engine.compiler import CompiledPolicy, compile_policy
from fairpath.engine.explain import Explainer
from fairpath.engine.protocol import Engine
from fairpath.policy.facts import FactReader
from fairpath.policy.model import Policy
from fairpath.policy.registry import PolicyRegistry
from fairpath.serving.masking import Masker

_log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ServedVersion:
    """One policy version ready to evaluate, with everything that depends only on the version.

    Built once, when the version is compiled (:meth:`prepare`), and dropped with it: nothing of
    a version is cached anywhere else, so nothing outlives a reload.

    Attributes:
        policy: The version's policy.
        compiled: Its durable_rules ruleset and walks.
        reader: Checks and normalises a request's facts against its declarations.
        explainer: Describes the engine's outcome as a decision with its trace (and memoises it).
        masker: What of a request and its trace is sensitive, for the record.

    """

    policy: Policy
    compiled: CompiledPolicy
    reader: FactReader
    explainer: Explainer
    masker: Masker

    @classmethod
    def prepare(cls, policy: Policy, engine: Engine) -> ServedVersion:
        """Compile ``policy`` and register it with ``engine`` (one registration, owned by the caller).

        Raises:
            PolicyFileError: The policy is too large for the engine.
            EngineError: durable_rules refused the ruleset.

        """
        compiled = compile_policy(policy)
        engine.register(compiled)
        return cls(policy, compiled, FactReader(policy), Explainer(policy), Masker.for_policy(policy))

    def decide(
        self, engine: Engine, facts: Mapping[str, object], *, subject: Subject, request_id: str
    ) -> Decision:
        """Validate ``facts``, let the engine decide and explain the outcome.

        Raises:
            InvalidFactsError: undeclared facts, wrong types or values.
            EngineBusyError: no engine session free in time.
            EngineError: durable_rules misbehaved.

        """
        clean = self.reader.read(facts)
        outcome = engine.evaluate(self.compiled, clean)
        return self.explainer.decision(clean, outcome, subject=subject, request_id=request_id)


class ServingState:
    """An immutable registry of served versions, leased by evaluations.

    The state owns one engine registration of each of its versions: whoever
    builds it must have registered each version once on its behalf
    (:meth:`ServedVersion.prepare` does; a version carried over from an older
    state is registered again). The state gives them back once it is superseded
    and no evaluation holds it any more.
    """

    def __init__(
        self, registry: PolicyRegistry, versions: Iterable[ServedVersion], engine: Engine
    ) -> None:
        self.registry = registry
        self._versions = {(v.policy.name, v.policy.version): v for v in versions}
        self._engine = engine
        self._lock = threading.Lock()
        self._leases = 0
        self._superseded = False
        self._closed = False

    @classmethod
    def empty(cls, engine: Engine) -> ServingState:
        """Return a state serving nothing (before the first load)."""
        return cls(PolicyRegistry(()), (), engine)

    def version(self, name: str, version: str = "") -> ServedVersion:
        """Return the pinned version, or the current one when ``version`` is empty.

        Raises:
            PolicyNotFoundError: unknown policy or version, or no current version.

        """
        policy = self.registry.get(name, version)
        return self._versions[(policy.name, policy.version)]

    def versions(self) -> list[ServedVersion]:
        """Every served version, by name then semver."""
        return [self._versions[(p.name, p.version)] for p in self.registry.all()]

    def enter(self) -> bool:
        """Lease the state for one evaluation; ``False`` if it has already been closed."""
        with self._lock:
            if self._closed:
                return False
            self._leases += 1
            return True

    def leave(self) -> None:
        """End one lease; the last lease on a superseded state closes it."""
        with self._lock:
            self._leases -= 1
            close = self._superseded and self._leases == 0 and not self._closed
            self._closed |= close
        if close:
            self._release()

    def supersede(self) -> None:
        """Mark the state replaced: it closes now, or when its last lease ends."""
        with self._lock:
            self._superseded = True
            close = self._leases == 0 and not self._closed
            self._closed |= close
        if close:
            self._release()

    @property
    def closed(self) -> bool:
        """Whether the state has given its versions back to the engine."""
        return self._closed

    def _release(self) -> None:
        # Runs inside leave(), after that evaluation's decision is made: a failure must neither
        # fail the request nor keep the other versions loaded, so each is released on its own.
        for version in self._versions.values():
            try:
                self._engine.release(version.compiled)
            except Exception as error:
                key, error_type = version.policy.key, type(error).__name__
                _log.error("release_failed", version=key, error_type=error_type, exc_info=error)
