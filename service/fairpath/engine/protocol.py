"""The engine as the rest of fairpath sees it: register a compiled policy, evaluate facts, release it.

Serving, staging and the author tools depend on :class:`Engine`, never on durable_rules;
:class:`fairpath.engine.durable.DurableEngine` is the implementation, and the only module that
imports durable_rules. The engine decides; :mod:`fairpath.engine.explain` describes its decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from fairpath.engine.compiler import CompiledPolicy, Terminal
from fairpath.policy.conditions import Value


@dataclass(frozen=True)
class EngineOutcome:
    """What the engine decided for one set of facts.

    Attributes:
        terminal: The one compiled walk that matched.
        overlays: The ids of the advice and checks whose condition held.
        engine_name: The engine that decided (recorded with the decision).
        engine_version: Its version.

    """

    terminal: Terminal
    overlays: frozenset[str]
    engine_name: str
    engine_version: str


class Engine(Protocol):
    """Evaluates compiled policies; implementations are safe to share between threads."""

    @property
    def name(self) -> str:
        """The engine's name, recorded with every decision."""

    @property
    def version(self) -> str:
        """The engine's version, recorded with every decision."""

    def register(self, compiled: CompiledPolicy) -> None:
        """Make ``compiled`` evaluable; each call is balanced by one :meth:`release`."""

    def release(self, compiled: CompiledPolicy) -> None:
        """One holder is done with ``compiled``; the last may unload it."""

    def evaluate(self, compiled: CompiledPolicy, facts: Mapping[str, Value]) -> EngineOutcome:
        """Decide for validated, normalised facts.

        Raises:
            EngineError: The engine failed or misbehaved.
            EngineBusyError: No engine session was free in time.

        """
