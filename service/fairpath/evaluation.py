"""The evaluation use case: policy lookup → fact validation → engine → decision.

This is the one object the gRPC layer talks to. It owns the compiled form of
every loaded policy version; durable_rules makes every decision and
:mod:`fairpath.explain` describes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fairpath.decisions import Decision, Subject
from fairpath.engine.compiler import CompiledPolicy, compile_policy
from fairpath.engine.durable import DurableEngine
from fairpath.explain import Explainer
from fairpath.policy.facts import normalise_facts
from fairpath.policy.model import Policy
from fairpath.policy.registry import PolicyRegistry


class Evaluator:
    """Evaluates facts against loaded policy versions; safe to share between threads."""

    def __init__(self, registry: PolicyRegistry, engine: DurableEngine | None = None) -> None:
        self._registry = registry
        self._engine = engine or DurableEngine()
        self._compiled: dict[tuple[str, str], CompiledPolicy] = {}
        self._explainers: dict[tuple[str, str], Explainer] = {}
        for policy in registry.all():
            compiled = compile_policy(policy)
            self._engine.register(compiled)
            self._compiled[(policy.name, policy.version)] = compiled
            self._explainers[(policy.name, policy.version)] = Explainer(policy)

    @classmethod
    def from_directory(cls, policies_dir: str | Path) -> Evaluator:
        """Load, compile and register every policy under ``policies_dir``."""
        return cls(PolicyRegistry.from_directory(policies_dir))

    @property
    def registry(self) -> PolicyRegistry:
        """The loaded policy versions."""
        return self._registry

    @property
    def engine(self) -> DurableEngine:
        """The rules engine (exposed for status and tests)."""
        return self._engine

    def compiled(self, policy: Policy) -> CompiledPolicy:
        """The compiled form of a loaded policy version."""
        return self._compiled[(policy.name, policy.version)]

    def evaluate(
        self,
        policy: str,
        facts: Mapping[str, object],
        *,
        version: str = "",
        subject: Subject | None = None,
        request_id: str = "",
    ) -> Decision:
        """Evaluate one staff member's action.

        Raises:
            PolicyNotFoundError: unknown policy or version.
            InvalidFactsError: undeclared facts, wrong types or values.
            EngineBusyError: no engine session free in time.
            EngineError: durable_rules misbehaved.
        """
        loaded = self._registry.get(policy, version)
        clean = normalise_facts(loaded, facts)
        outcome = self._engine.evaluate(self.compiled(loaded), clean)
        explainer = self._explainers[(loaded.name, loaded.version)]
        return explainer.decision(clean, outcome, subject=subject or Subject(), request_id=request_id)

    def close(self) -> None:
        """Release resources (durable_rules has none to release while the process lives)."""
