"""Turn what durable_rules decided into a :class:`~fairpath.decisions.Decision`.

The engine reports which compiled path matched and which overlays fired; the
path carries, from compile time, every walk step with the answer it took. This
module only *describes* that outcome: the trace entry of every rule (fired, not
fired, unanswered, not reached), in words. It decides nothing; the property
tests check that its descriptions agree with the engine for every combination
of answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
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
from fairpath.engine.compiler import Terminal
from fairpath.engine.protocol import EngineOutcome
from fairpath.policy import conditions as cond
from fairpath.policy.model import AdviceRule, CheckRule, Policy, Rule, Target, outcome_values

_MEMO_LIMIT = 20_000  # trace entries remembered per policy version before starting afresh
_UNANSWERED = object()


class Explainer:
    """Builds decisions for one policy version, remembering trace entries it has described.

    A trace entry depends only on the rule, its result, the values it read and
    where it led, and the answers are mostly yes/no codes, so the same entries
    recur: building each once keeps a full 40-rule trace cheap.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._memo: dict[tuple[object, ...], TraceEntry] = {}
        self._not_reached: dict[int, tuple[TraceEntry, ...]] = {}
        self._overlay_parts: dict[tuple[object, ...], tuple[TraceEntry, ...]] = {}
        self._walks: dict[tuple[object, ...], tuple[TraceEntry, ...]] = {}
        self._fired_results: dict[frozenset[str], tuple[tuple[AdviceItem, ...], tuple[Warning, ...]]] = {}
        self._path_reads: dict[int, tuple[str, ...]] = {}
        # Every name an overlay reads: their trace entries depend on these values only.
        overlays: tuple[AdviceRule | CheckRule, ...] = (*policy.advice, *policy.checks)
        self._overlay_reads = tuple(dict.fromkeys(name for rule in overlays for name in rule.reads))

    def decision(
        self,
        facts: Mapping[str, cond.Value],
        outcome: EngineOutcome,
        *,
        subject: Subject,
        request_id: str,
    ) -> Decision:
        """The decision for ``facts`` given the engine's ``outcome``."""
        policy = self.policy
        terminal = outcome.terminal
        target = terminal.target
        pathway = None
        missing: tuple[MissingFact, ...] = ()
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
        else:
            rule = policy.rules_by_id[terminal.unanswered_rule]
            missing = tuple(
                MissingFact(fact, policy.facts[fact].question, rule.id) for fact in rule.needs if fact not in facts
            )
        if len(self._memo) + len(self._overlay_parts) + len(self._walks) > _MEMO_LIMIT:
            self._memo.clear()
            self._overlay_parts.clear()
            self._walks.clear()
            self._fired_results.clear()
        fired = outcome.overlays
        trace = (*self._walk(facts, terminal), *self._overlays({**facts, **outcome_values(policy, target)}, fired))
        advice, warnings = self._results(fired)
        return Decision(
            decision_id=str(uuid.uuid4()),
            policy=PolicyRef(policy.name, policy.version, policy.digest),
            status=Status.DECIDED if pathway else Status.NEEDS_INFORMATION,
            pathway=pathway,
            missing_facts=missing,
            advice=advice,
            trace=trace,
            warnings=warnings,
            evaluated_at=datetime.now(UTC),
            engine_name=outcome.engine_name,
            engine_version=outcome.engine_version,
            subject=subject,
            request_id=request_id,
        )

    def _walk(self, facts: Mapping[str, cond.Value], terminal: Terminal) -> tuple[TraceEntry, ...]:
        # The walk's entries depend only on the path and the values its rules read: one lookup.
        names = self._path_reads.get(terminal.index)
        if names is None:
            names = self._path_reads[terminal.index] = tuple(dict.fromkeys(
                name
                for rule_id in (*(step.rule_id for step in terminal.steps), terminal.unanswered_rule)
                if rule_id
                for name in self.policy.rules_by_id[rule_id].reads
            ))
        key = (terminal.index, *(facts.get(name, _UNANSWERED) for name in names))
        walk = self._walks.get(key)
        if walk is None:
            walk = self._walks[key] = self._build_walk(facts, terminal)
        return walk

    def _build_walk(self, facts: Mapping[str, cond.Value], terminal: Terminal) -> tuple[TraceEntry, ...]:
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
        if terminal.unanswered_rule:
            rule = self.policy.rules_by_id[terminal.unanswered_rule]
            seen = _seen(rule.reads, facts)
            gaps = [f for f in rule.needs if f not in facts]
            entries.append(_walk_entry(
                rule, seen, RuleResult.UNANSWERED, None,
                f"{', '.join(gaps)} unanswered: the walk stops here until "
                f"{'it is' if len(gaps) == 1 else 'they are'} answered",
            ))
        entries.extend(self._unreached(terminal))
        return tuple(entries)

    def _unreached(self, terminal: Terminal) -> tuple[TraceEntry, ...]:
        entries = self._not_reached.get(terminal.index)
        if entries is None:
            reached = {step.rule_id for step in terminal.steps} | {terminal.unanswered_rule}
            end = f"pathway {terminal.target.pathway}" if terminal.target else f"rule {terminal.unanswered_rule}"
            entries = self._not_reached[terminal.index] = tuple(
                _walk_entry(rule, {}, RuleResult.NOT_REACHED, None, f"not reached: the walk ended at {end}")
                for rule in self.policy.rules
                if rule.id not in reached
            )
        return entries

    def _results(self, fired: frozenset[str]) -> tuple[tuple[AdviceItem, ...], tuple[Warning, ...]]:
        results = self._fired_results.get(fired)
        if results is None:
            results = self._fired_results[fired] = (
                tuple(AdviceItem(a.code, a.text, a.id) for a in self.policy.advice if a.id in fired),
                tuple(Warning(c.id, c.text, c.reads) for c in self.policy.checks if c.id in fired),
            )
        return results

    def _overlays(self, values: Mapping[str, cond.Value], fired: frozenset[str]) -> tuple[TraceEntry, ...]:
        key = (fired, *(values.get(name, _UNANSWERED) for name in self._overlay_reads))
        part = self._overlay_parts.get(key)
        if part is None:
            part = self._overlay_parts[key] = (
                *(self._overlay(a, RuleKind.ADVICE, values, a.id in fired) for a in self.policy.advice),
                *(self._overlay(c, RuleKind.CHECK, values, c.id in fired) for c in self.policy.checks),
            )
        return part

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
