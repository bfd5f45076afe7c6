"""The evaluation use case: policy lookup → fact validation → engine → decision.

This is the one object the gRPC layer talks to. It serves one
:class:`~fairpath.serving.state.ServingState` (the compiled form of every loaded
policy version) at a time; durable_rules makes every decision and
:mod:`fairpath.engine.explain` describes it. A reload (:mod:`fairpath.serving.reload`) builds
a new state and :meth:`Evaluator.install` swaps it in with one reference assignment:
an evaluation already running finishes on the state it started with.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fairpath.decisions import Decision, Subject, chain_of
from fairpath.engine.compiler import CompiledPolicy
from fairpath.engine.durable import DurableEngine
from fairpath.engine.protocol import Engine
from fairpath.errors import EngineError
from fairpath.policy.model import Policy
from fairpath.policy.registry import PolicyRegistry
from fairpath.serving.state import ServedVersion, ServingState

_NO_SUBJECT = Subject()  # immutable: one serves every request that names none


@dataclass(frozen=True)
class Evaluated:
    """A decision and the served versions that made it.

    Attributes:
        decision: The decision, with the decisions it required nested in it (chained policies).
        versions: The version that made each decision of ``chain_of(decision)``, in that order
            (one for a policy that requires nothing).

    """

    decision: Decision
    versions: tuple[ServedVersion, ...]


class Evaluator:
    """Evaluates facts against loaded policy versions; safe to share between threads."""

    def __init__(self, registry: PolicyRegistry | None = None, engine: Engine | None = None) -> None:
        """Serve every version of ``registry`` as given (the lock and test gate are :mod:`fairpath.serving.reload`'s).

        With no registry the evaluator serves nothing until a state is installed.
        """
        self._engine = engine or DurableEngine()
        self._install_lock = threading.Lock()
        if registry is None:
            self._state = ServingState.empty(self._engine)
        else:
            versions = [ServedVersion.prepare(policy, self._engine) for policy in registry.all()]
            self._state = ServingState(registry, versions, self._engine)

    @classmethod
    def from_directory(cls, policies_dir: str | Path) -> Evaluator:
        """Load, compile and register every policy under ``policies_dir``."""
        return cls(PolicyRegistry.from_directory(policies_dir))

    @property
    def registry(self) -> PolicyRegistry:
        """The policy versions served right now (read it once per use: a reload replaces it)."""
        return self._state.registry

    @property
    def state(self) -> ServingState:
        """The state served right now."""
        return self._state

    def install(self, state: ServingState) -> None:
        """Serve ``state`` from now on; the previous state closes once its evaluations have finished."""
        with self._install_lock:  # installers take turns; readers never wait
            previous, self._state = self._state, state  # the one assignment readers see
        if previous is not state:
            previous.supersede()

    @property
    def engine(self) -> Engine:
        """The rules engine (exposed for status and tests)."""
        return self._engine

    def compiled(self, policy: Policy) -> CompiledPolicy:
        """Return the compiled form of a served policy version."""
        return self._state.version(policy.name, policy.version).compiled

    def evaluate(
        self,
        policy: str,
        facts: Mapping[str, object],
        *,
        version: str = "",
        subject: Subject | None = None,
        request_id: str = "",
        alone: bool = False,
    ) -> Decision:
        """Evaluate one staff member's action: :meth:`decide` without the versions.

        Raises:
            PolicyNotFoundError: unknown policy or version.
            InvalidFactsError: undeclared facts, wrong types or values.
            EngineBusyError: no engine session free in time.
            EngineError: durable_rules misbehaved.

        """
        state = self._lease()
        try:  # decide() without collecting the versions, which only a recorder needs
            return self._decide(
                state, policy, facts, version=version, subject=subject or _NO_SUBJECT, request_id=request_id,
                alone=alone,
            )[1]
        finally:
            state.leave()

    def decide(
        self,
        policy: str,
        facts: Mapping[str, object],
        *,
        version: str = "",
        subject: Subject | None = None,
        request_id: str = "",
        alone: bool = False,
    ) -> Evaluated:
        """Evaluate one staff member's action (and, for a chained policy, what it requires first).

        The decision comes with the served versions that made it, taken from the same leased state:
        they carry what recording needs (each version's masker and facts), so the recorder never
        looks a version up again and a reload in between cannot change what is masked.

        With ``alone`` a chained version is evaluated by itself, its chained facts taken from
        ``facts`` like any other: what the authors' analysis tools (lint, diff) need, as they
        enumerate those facts' values. A service never evaluates that way.

        Raises:
            PolicyNotFoundError: unknown policy or version.
            InvalidFactsError: undeclared facts, wrong types or values.
            EngineBusyError: no engine session free in time.
            EngineError: durable_rules misbehaved.

        """
        state = self._lease()
        try:
            served, decision = self._decide(
                state, policy, facts, version=version, subject=subject or _NO_SUBJECT, request_id=request_id,
                alone=alone,
            )
            if not decision.requires:
                return Evaluated(decision, (served,))
            # A chained decision: the versions that made the decisions it required, from this same state.
            versions = tuple(state.version(made.policy.name, made.policy.version) for made in chain_of(decision))
            return Evaluated(decision, versions)
        finally:
            state.leave()

    def _decide(
        self, state: ServingState, policy: str, facts: Mapping[str, object], *, version: str, subject: Subject,
        request_id: str, alone: bool,
    ) -> tuple[ServedVersion, Decision]:
        """The version asked for on the leased ``state``, and its decision."""
        served = state.version(policy, version)
        if alone or not served.policy.requires:
            return served, served.decide(self._engine, facts, subject=subject, request_id=request_id)
        # Through the state: a chained version decides what it requires first, on this same state.
        return served, state.decide(self._engine, served, facts, subject=subject, request_id=request_id)

    def _lease(self) -> ServingState:
        while True:
            state = self._state
            if state.enter():
                return state
            # Closed between the read and the lease: a newer state is installed by now.
            if state is self._state:
                raise EngineError("the serving state was closed while still installed")

    def close(self) -> None:
        """Stop serving: every version is released and unloaded once in-flight evaluations end."""
        self.install(ServingState.empty(self._engine))
