"""Turn what durable_rules decided into a :class:`~fairpath.decisions.Decision`.

The engine reports which compiled path matched and which overlays fired; the
path carries, from compile time, every walk step with the answer it took. This
module only *describes* that outcome: the trace entry of every rule (fired, not
fired, unanswered, not reached), in words. It decides nothing; the property
tests check that its descriptions agree with the engine for every combination
of answers.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from fairpath.decisions import (
    AdviceItem,
    Decision,
    MissingFact,
    PathwayResult,
    PolicyRef,
    RuleKind,
    RuleResult,
    Status,
    Subject,
    TraceEntry,
    Warning,
)
from fairpath.engine.compiler import CompiledPolicy, Terminal
from fairpath.engine.protocol import EngineOutcome
from fairpath.policy import conditions as cond
from fairpath.policy.model import DECISION_FIELDS, AdviceRule, CheckRule, Rule, Target, outcome_values

_MEMO_LIMIT = 20_000  # walks and overlay parts remembered per policy version before starting afresh
# The last hex digit of a random byte, as the RFC 4122 variant (binary 10xx) needs it.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


# An overlay part of a trace: the advice and check entries, then the advice and warnings they give.
_Part = tuple[tuple[TraceEntry, ...], tuple[AdviceItem, ...], tuple[Warning, ...]]


@dataclass(frozen=True)
class _Path:
    """What the trace of one compiled path needs that depends only on the version, made with it.

    Attributes:
        terminal: The compiled path.
        reads: Every fact its walk's rules read (and the facts its unanswered rule needs), in
            order: its walk entries and missing facts depend on these values only.
        outcome: What advice rules read about its outcome (:func:`outcome_values`).
        outcome_key: The same number for paths with the same outcome: they share overlay entries.
        status: Decided, or waiting for the facts its unanswered rule needs.
        pathway: The pathway reached, in the words of the policy (None when unanswered).
        asks: Every fact its unanswered rule needs, with the question that asks for it.
        unreached: The entries of the rules its walk never reaches.

    """

    terminal: Terminal
    reads: tuple[str, ...]
    outcome: Mapping[str, cond.Value]
    outcome_key: int
    status: Status
    pathway: PathwayResult | None
    asks: tuple[MissingFact, ...]
    unreached: tuple[TraceEntry, ...]


class Explainer:
    """Builds decisions for one policy version, remembering trace entries it has described.

    Everything that depends only on the version is made here, once, when the version is
    compiled (:class:`fairpath.serving.state.ServedVersion`): per compiled path, the facts its
    trace depends on, its pathway, its questions and the entries of the rules it never
    reaches. Per call what is left is reading those facts' values and two lookups: a trace
    entry depends only on the rule, its result, the values it read and where it led, and
    the answers are mostly yes/no codes, so the same walks recur: building each once keeps a
    full 40-rule trace cheap. The entries are immutable and shared between decisions.
    """

    def __init__(self, compiled: CompiledPolicy) -> None:
        policy = compiled.policy
        self.policy = policy
        self._ref = PolicyRef(policy.name, policy.version, policy.digest)
        # Entries by (rule, result, values read): shared by every walk and overlay part that has them.
        self._memo: dict[tuple[object, ...], TraceEntry] = {}
        # (path, its read values...) -> (walk entries, missing facts).
        self._walks: dict[tuple[object, ...], tuple[tuple[TraceEntry, ...], tuple[MissingFact, ...]]] = {}
        # (outcome, fired overlays, overlay fact values...) -> the advice and check entries, the
        # advice and the warnings.
        self._overlay_parts: dict[tuple[object, ...], _Part] = {}
        # Fired overlays -> the advice and warnings: the same objects in every part with that set.
        self._fired_results: dict[frozenset[str], tuple[tuple[AdviceItem, ...], tuple[Warning, ...]]] = {}
        overlays: tuple[AdviceRule | CheckRule, ...] = (*policy.advice, *policy.checks)
        reads = dict.fromkeys(name for rule in overlays for name in rule.reads)
        # The facts overlays read: with the path's outcome, their entries depend on these values only.
        self._overlay_facts = tuple(name for name in reads if name not in DECISION_FIELDS)
        outcomes: dict[tuple[tuple[str, cond.Value], ...], int] = {}
        self._paths = tuple(self._path(terminal, outcomes) for terminal in compiled.terminals)
        if any(path.terminal.index != index for index, path in enumerate(self._paths)):
            raise ValueError(f"{policy.key}: compiled paths are not numbered in order")

    def _path(self, terminal: Terminal, outcomes: dict[tuple[tuple[str, cond.Value], ...], int]) -> _Path:
        policy = self.policy
        target = terminal.target
        rules = [policy.rules_by_id[step.rule_id] for step in terminal.steps]
        asks: tuple[MissingFact, ...] = ()
        needs: tuple[str, ...] = ()
        if terminal.unanswered_rule:
            rule = policy.rules_by_id[terminal.unanswered_rule]
            rules.append(rule)
            needs = rule.needs
            asks = tuple(MissingFact(fact, policy.facts[fact].question, rule.id) for fact in needs)
        pathway = None
        if target is not None:
            spec = policy.pathways[target.pathway]
            pathway = PathwayResult(
                code=spec.code,
                title=spec.title,
                recommendation=spec.recommendation,
                individual_directed=spec.individual_directed,
                sub_reason=target.sub_reason,
                category=spec.category,
            )
        outcome = outcome_values(policy, target)
        return _Path(
            terminal=terminal,
            reads=tuple(dict.fromkeys((*(name for rule in rules for name in rule.reads), *needs))),
            outcome=outcome,
            outcome_key=outcomes.setdefault(tuple(outcome.items()), len(outcomes)),
            status=Status.DECIDED if pathway else Status.NEEDS_INFORMATION,
            pathway=pathway,
            asks=asks,
            unreached=self._unreached(terminal),
        )

    def decision(
        self,
        facts: Mapping[str, cond.Value],
        outcome: EngineOutcome,
        *,
        subject: Subject,
        request_id: str,
    ) -> Decision:
        """The decision for ``facts`` given the engine's ``outcome``.

        ``facts`` are the engine's: validated, unanswered ones absent (never ``None``).
        """
        path = self._paths[outcome.terminal.index]
        fired = outcome.overlays
        get = facts.get  # an absent fact reads as None, which no answer is
        walk_key = (path.terminal.index, *map(get, path.reads))
        walk = self._walks.get(walk_key)
        if walk is None:
            self._make_room()
            walk = self._walks[walk_key] = self._build_walk(facts, path)
        part_key = (path.outcome_key, fired, *map(get, self._overlay_facts))
        part = self._overlay_parts.get(part_key)
        if part is None:
            self._make_room()
            results = self._fired_results.get(fired)
            if results is None:
                results = self._fired_results[fired] = self._results(fired)
            part = self._overlay_parts[part_key] = (self._overlays({**facts, **path.outcome}, fired), *results)
        entries, missing = walk
        overlays, advice, warnings = part
        return Decision(
            decision_id=_ids.new(),
            policy=self._ref,
            status=path.status,
            pathway=path.pathway,
            missing_facts=missing,
            advice=advice,
            trace=entries + overlays,
            warnings=warnings,
            evaluated_at=datetime.now(UTC),
            engine_name=outcome.engine_name,
            engine_version=outcome.engine_version,
            subject=subject,
            request_id=request_id,
        )

    def _make_room(self) -> None:
        """Start afresh once the memo is full (a version's distinct walks are usually far fewer)."""
        if len(self._walks) + len(self._overlay_parts) + len(self._memo) > _MEMO_LIMIT:
            self._memo.clear()
            self._walks.clear()
            self._overlay_parts.clear()
            self._fired_results.clear()

    def _build_walk(
        self, facts: Mapping[str, cond.Value], path: _Path
    ) -> tuple[tuple[TraceEntry, ...], tuple[MissingFact, ...]]:
        terminal = path.terminal
        entries: list[TraceEntry] = []
        for step in terminal.steps:
            rule = self.policy.rules_by_id[step.rule_id]
            seen = _seen(rule.reads, facts)
            key = (rule.id, step.held, *seen.items())
            entry = self._memo.get(key)
            if entry is None:
                target = rule.then if step.held else rule.otherwise
                verdict = "holds" if step.held else "does not hold"
                entry = self._memo[key] = _walk_entry(
                    rule, seen, RuleResult.FIRED if step.held else RuleResult.NOT_FIRED, target,
                    f"{cond.describe_facts(rule.reads, seen)}: the condition {verdict}, so {_going(target)}",
                )
            entries.append(entry)
        missing = tuple(ask for ask in path.asks if ask.fact not in facts)
        if terminal.unanswered_rule:
            rule = self.policy.rules_by_id[terminal.unanswered_rule]
            seen = _seen(rule.reads, facts)
            gaps = [ask.fact for ask in missing]
            entries.append(_walk_entry(
                rule, seen, RuleResult.UNANSWERED, None,
                f"{', '.join(gaps)} unanswered: the walk stops here until "
                f"{'it is' if len(gaps) == 1 else 'they are'} answered",
            ))
        return (*entries, *path.unreached), missing

    def _unreached(self, terminal: Terminal) -> tuple[TraceEntry, ...]:
        reached = {step.rule_id for step in terminal.steps} | {terminal.unanswered_rule}
        end = f"pathway {terminal.target.pathway}" if terminal.target else f"rule {terminal.unanswered_rule}"
        return tuple(
            _walk_entry(rule, {}, RuleResult.NOT_REACHED, None, f"not reached: the walk ended at {end}")
            for rule in self.policy.rules
            if rule.id not in reached
        )

    def _results(self, fired: frozenset[str]) -> tuple[tuple[AdviceItem, ...], tuple[Warning, ...]]:
        return (
            tuple(AdviceItem(a.code, a.text, a.id) for a in self.policy.advice if a.id in fired),
            tuple(Warning(c.id, c.text, c.reads) for c in self.policy.checks if c.id in fired),
        )

    def _overlays(self, values: Mapping[str, cond.Value], fired: frozenset[str]) -> tuple[TraceEntry, ...]:
        return (
            *(self._overlay(a, RuleKind.ADVICE, values, a.id in fired) for a in self.policy.advice),
            *(self._overlay(c, RuleKind.CHECK, values, c.id in fired) for c in self.policy.checks),
        )

    def _overlay(
        self, rule: AdviceRule | CheckRule, kind: RuleKind, values: Mapping[str, cond.Value], fired: bool
    ) -> TraceEntry:
        seen = _seen(rule.reads, values)
        key = (rule.id, fired, *seen.items())
        entry = self._memo.get(key)
        if entry is None:
            produces = f"advice {rule.code}" if isinstance(rule, AdviceRule) else f"warning {rule.id}"
            verdict = f"the condition holds, so {produces}" if fired else "the condition does not hold"
            entry = self._memo[key] = TraceEntry(
                rule_id=rule.id,
                title=rule.title,
                kind=kind,
                condition=rule.condition_text,
                facts_seen=seen,
                result=RuleResult.FIRED if fired else RuleResult.NOT_FIRED,
                reason=f"{cond.describe_facts(rule.reads, seen)}: {verdict}" if rule.reads else verdict,
                leads_to=produces if fired else "",
            )
        return entry


def _seen(names: tuple[str, ...], values: Mapping[str, cond.Value]) -> dict[str, cond.Value]:
    return {name: values[name] for name in names if name in values}


def _walk_entry(
    rule: Rule, seen: Mapping[str, cond.Value], result: RuleResult, target: Target | None, reason: str
) -> TraceEntry:
    return TraceEntry(
        rule_id=rule.id,
        title=rule.title,
        kind=RuleKind.QUESTION,
        condition=rule.condition_text,
        facts_seen=seen,
        result=result,
        reason=reason,
        question=rule.question,
        leads_to=str(target) if target else "",
    )


def _going(target: Target) -> str:
    return f"go to {target}" if target.rule else f"the walk ends at {target}"


class _DecisionIds:
    """New random (version 4) UUIDs in canonical form, as ``str(uuid.uuid4())`` gives, from one system call per batch.

    ``uuid.uuid4`` reads the system's random source once per id, and in a busy server that
    system call cost more than the rest of describing a decision (measured with
    ``tests/benchmarks/bench_evaluate.py``). The bytes still come from ``os.urandom``, a batch
    at a time. A forked child starts with none: it must never hand out the ids its parent will.
    """

    BATCH = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._left: list[str] = []
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()  # another thread may have held it at the fork
        self._left = []

    def new(self) -> str:
        """A decision id no other call (in this process or any other) returns."""
        with self._lock:
            if not self._left:
                digits = os.urandom(16 * self.BATCH).hex()
                self._left = [digits[start:start + 32] for start in range(0, len(digits), 32)]
            hexes = self._left.pop()
        return f"{hexes[:8]}-{hexes[8:12]}-4{hexes[13:16]}-{_VARIANT[hexes[16]]}{hexes[17:20]}-{hexes[20:]}"


_ids = _DecisionIds()
