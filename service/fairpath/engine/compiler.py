"""Compile a policy into one durable_rules ruleset.

The walk of a policy is a finite, forward-only graph, so every way it can end
is a *path*: a sequence of rules with the answer each gave, ending at a pathway
or at a rule whose facts are unanswered. Each path becomes one durable_rules
rule whose pattern is the conjunction of its steps (flat rules: one action per
walk, the fastest shape durable_rules has). Exactly one of them matches any set
of facts, because each step splits the facts three ways: a fact it needs is
unanswered, the condition holds, or it does not.

Advice rules and checks (together: *overlays*) are compiled with the walk's
outcome known per path. An overlay whose condition is decided by the outcome
alone (``always``, ``individual_directed is true``) is bound to the paths where
it holds; one that reads only facts becomes its own rule on the case fact; one
that reads both is specialised per path, and the path's rule is split into
variants, one per combination of those residual conditions holding or not
(each variant names the overlays it implies). Either way durable_rules matches
every condition that depends on the facts, and a walk costs one action.

The compiler returns data only: a ruleset definition and, for each durable rule
name, an :class:`Action` from a closed set. :mod:`fairpath.engine.durable` binds
those to closures; nothing in a policy file can name code.

What a policy may cost is bounded as it is compiled, each refusal a
:class:`PolicyFileError` naming the rule (and its line) where the limit was
crossed: building one condition's pattern stops after :data:`MAX_PATTERN_STEPS`;
a path's engine rule may hold :data:`MAX_GROUPS` ``$and``/``$or`` groups
(durable_rules' own limit, counted as the path grows); the walk stops once its
paths would need more than :data:`MAX_RULES` engine rules. The loader has
already bounded the file, the number of rules and each condition's size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from fairpath.errors import PolicyFileError
from fairpath.policy import conditions as cond
from fairpath.policy.model import DECISION_FIELDS, FactType, Policy, Rule, Target, outcome_values

CASE = "case"
MAX_RULES = 400  # durable_rules misbehaves from roughly 480 rules per ruleset (error 303)
MAX_SPLIT = 4  # outcome-and-fact overlays per path: a path's rule splits into 2**n variants
# durable_rules keeps the `$and`/`$or` groups of one rule's pattern in a fixed array of 32 entries,
# two per group, and refuses a 16th with "error code: 113" (rete.c, MAX_SEQUENCE_EXPRESSIONS). The
# count includes the `$and` every rule starts with; the shipped policies need at most 12.
MAX_GROUPS = 15
# Work spent turning one condition into a pattern (calls of pattern() and complement()). Nested
# and/or alternations grow exponentially through the exclusive alternatives below (about 3x per
# two levels); the shipped policies spend at most ~60, and past a few hundred a pattern would
# exceed MAX_GROUPS anyway. Counting stops a hostile one early instead of building millions of nodes.
MAX_PATTERN_STEPS = 5_000


class PatternTooLargeError(ValueError):
    """A condition's pattern would cost more than :data:`MAX_PATTERN_STEPS` to build."""


class _Budget:
    """Steps left for building one pattern; spending past zero raises :class:`PatternTooLargeError`."""

    def __init__(self, steps: int = MAX_PATTERN_STEPS) -> None:
        self.left = steps

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise PatternTooLargeError(f"the condition needs more than {MAX_PATTERN_STEPS} steps to compile")


@dataclass(frozen=True)
class Step:
    """One decided step of a walk: the rule and whether its condition held."""

    rule_id: str
    held: bool


@dataclass(frozen=True)
class Terminal:
    """One way the walk can end, with what is known about the outcome there."""

    index: int
    steps: tuple[Step, ...]
    target: Target | None  # the pathway reached; None when the walk stopped on unanswered facts
    unanswered_rule: str = ""
    always_on: tuple[str, ...] = ()  # overlays whose condition holds whatever the facts, on this path


@dataclass(frozen=True)
class Action:
    """What a durable rule does when it fires; the only actions there are."""

    kind: Literal["terminal", "overlay"]
    terminal: int = -1
    overlays: tuple[str, ...] = ()  # overlays whose condition this rule's pattern includes (and so held)


@dataclass(frozen=True)
class CompiledPolicy:
    """A policy ready to register: durable rules (without ``run``) and their actions."""

    policy: Policy
    ruleset: str
    rules: Mapping[str, Mapping[str, Any]]
    actions: Mapping[str, Action]
    terminals: tuple[Terminal, ...]
    set_facts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # set fact -> its codes


def ruleset_name(policy: Policy) -> str:
    """Unique per file content: a changed file never collides with the ruleset it replaces."""
    return f"{policy.key}#{policy.digest[:16]}"


def compile_policy(policy: Policy) -> CompiledPolicy:
    """Compile ``policy``; raises :class:`PolicyFileError` if it is too large for the engine."""
    return _Compiler(policy).run()


# --- durable_rules patterns -----------------------------------------------------


def pattern(condition: cond.Condition, budget: _Budget | None = None) -> list[dict[str, Any]]:
    """The durable_rules expressions for a condition in negation normal form (to be ANDed).

    Raises :class:`PatternTooLargeError` past ``budget`` (default: :data:`MAX_PATTERN_STEPS`).
    """
    budget = budget or _Budget()
    budget.spend()
    if isinstance(condition, cond.Always):
        return []
    if isinstance(condition, cond.All):
        return [expr for item in condition.items for expr in pattern(item, budget)]
    if isinstance(condition, cond.AnyOf):
        # durable_rules fires a rule once per alternative of an `$or` that holds, and
        # every firing is a Python action: make the alternatives exclusive
        # (A or B  ->  A or (not A and B)) so a match fires exactly once.
        branches = []
        for index, item in enumerate(condition.items):
            exclusive = cond.All((*(complement(prior, budget) for prior in condition.items[:index]), item))
            branches.append(_single(pattern(exclusive if index else item, budget)))
        return [{"$or": branches}] if len(branches) != 1 else [branches[0]]
    if isinstance(condition, cond.Answered):
        return [{"$nex" if condition.negated else "$ex": {condition.fact: 1}}]
    if isinstance(condition, cond.Member):
        if condition.negated:
            return [{"$neq": {condition.fact: v}} for v in condition.values]
        equals = [{condition.fact: v} for v in condition.values]
        return [equals[0]] if len(equals) == 1 else [{"$or": equals}]
    if isinstance(condition, cond.Compare) and condition.op in cond.SET_OPS:
        # A set fact reaches the engine as one true/false field per declared code.
        return [{member_field(condition.fact, str(condition.value)): condition.op == "has"}]
    if isinstance(condition, cond.Compare):
        operator = {
            "is": None, "=": None, "is not": "$neq", "!=": "$neq",
            "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte",
        }[condition.op]
        leaf = {condition.fact: condition.value}
        return [leaf if operator is None else {operator: leaf}]
    raise TypeError(f"not in negation normal form: {condition!r}")


def complement(condition: cond.Condition, budget: _Budget | None = None) -> cond.Condition:
    """The exact negation of ``holds`` for a NNF condition, unanswered facts included.

    Plain NNF negation is not enough: ``x is YES`` and ``x is not YES`` are both
    false when ``x`` is unanswered, so the complement of a comparison is "its
    negation, or the fact is unanswered".
    """
    budget = budget or _Budget()
    budget.spend()
    if isinstance(condition, cond.Always):
        return cond.AnyOf(())
    if isinstance(condition, cond.All):
        return cond.AnyOf(tuple(complement(item, budget) for item in condition.items))
    if isinstance(condition, cond.AnyOf):
        return cond.All(tuple(complement(item, budget) for item in condition.items))
    if isinstance(condition, cond.Answered):
        return cond.Answered(condition.fact, negated=not condition.negated)
    if isinstance(condition, cond.Not):
        raise TypeError("complement() needs a condition in negation normal form")
    negated = cond.to_nnf(condition, negate=True)
    return cond.AnyOf((cond.Answered(condition.fact, negated=True), negated))


def member_field(fact: str, code: str) -> str:
    """The engine field that says whether set fact ``fact`` contains ``code`` (fact names are lower case)."""
    return f"{fact}__{code}"


def groups(expressions: list[dict[str, Any]]) -> int:
    """How many ``$and``/``$or`` groups ``expressions`` hold (durable_rules takes :data:`MAX_GROUPS` per rule)."""
    return sum(_groups(expression) for expression in expressions)


def _groups(node: Any) -> int:
    if isinstance(node, dict):
        return sum((key in ("$and", "$or")) + _groups(value) for key, value in node.items())
    if isinstance(node, list):
        return sum(_groups(item) for item in node)
    return 0


def _single(expressions: list[dict[str, Any]]) -> dict[str, Any]:
    if not expressions:
        # An empty conjunction always holds; {"$ex": {"type": 1}} is true of every case/decided fact.
        return {"$ex": {"type": 1}}
    return expressions[0] if len(expressions) == 1 else {"$and": expressions}


def _rule(kind: str, expressions: list[dict[str, Any]]) -> dict[str, Any]:
    # Every pattern starts with a positive discriminator, so no rule can match the
    # session state fact and loop (durable_rules re-matches state after each action).
    return {"all": [{"m": {"$and": [{"type": kind}, *expressions]}}]}


# --- the compiler ---------------------------------------------------------------


class _Compiler:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.rules: dict[str, dict[str, Any]] = {}
        self.actions: dict[str, Action] = {}
        self.terminals: list[Terminal] = []
        self.overlays = [(a.id, cond.to_nnf(a.condition)) for a in policy.advice] + [
            (c.id, cond.to_nnf(c.condition)) for c in policy.checks
        ]
        self.lines: dict[str, int | None] = {rule.id: rule.line for rule in policy.rules}
        self.lines |= {advice.id: advice.line for advice in policy.advice}
        self.lines |= {check.id: check.line for check in policy.checks}
        # A rule's answer has the same pattern on every path through it: built once.
        self.branches: dict[tuple[str, bool], tuple[list[dict[str, Any]], int]] = {}

    def error(self, message: str, rule_id: str = "") -> PolicyFileError:
        return PolicyFileError(message, path=self.policy.path, rule_id=rule_id, line=self.lines.get(rule_id))

    def run(self) -> CompiledPolicy:
        self.walk(self.policy.start.id, [], [])
        self.fact_overlays()
        if len(self.rules) > MAX_RULES:
            raise self.error(f"the policy compiles to {len(self.rules)} engine rules (at most {MAX_RULES}); split it")
        return CompiledPolicy(
            policy=self.policy,
            ruleset=ruleset_name(self.policy),
            rules=self.rules,
            actions=self.actions,
            terminals=tuple(self.terminals),
            set_facts={f.name: f.values for f in self.policy.facts.values() if f.type is FactType.SET},
        )

    def pattern(self, condition: cond.Condition, rule_id: str) -> tuple[list[dict[str, Any]], int]:
        """The expressions for ``condition`` and their group count, or an error naming ``rule_id``."""
        try:
            expressions = pattern(condition)
        except PatternTooLargeError:
            raise self.error("the condition is too complex to compile: simplify its nested and/or", rule_id) from None
        return expressions, groups(expressions)

    def check_groups(self, count: int, rule_id: str) -> None:
        """Refuse an engine rule with more groups than durable_rules takes (``count`` excludes its own ``$and``)."""
        if count + 1 > MAX_GROUPS:
            raise self.error(
                f"a path through this rule combines {count + 1} and/or groups in one engine rule (durable_rules "
                f"takes at most {MAX_GROUPS}): write alternatives of one fact as 'in [..]', or split the rule",
                rule_id,
            )

    def branch(self, rule: Rule, held: bool) -> tuple[list[dict[str, Any]], int] | None:
        """The pattern of ``rule``'s condition holding (or not) and its groups; None when no facts take it."""
        key = (rule.id, held)
        if key not in self.branches:
            branch = cond.to_nnf(rule.condition, negate=not held)
            if cond.specialise(branch, {}, frozenset()) is False:
                return None  # e.g. the 'else' of `always`: no facts take it
            self.branches[key] = self.pattern(branch, rule.id)
        return self.branches[key]

    def walk(
        self,
        rule_id: str,
        steps: list[Step],
        expressions: list[dict[str, Any]],
        known: frozenset[str] = frozenset(),
        grouped: int = 0,
    ) -> None:
        """Emit every path from ``rule_id``; ``known`` are facts earlier steps already needed (so answered).

        ``grouped`` counts the and/or groups of ``expressions``, checked against the engine's limit as
        the path grows so the refusal names the rule that crossed it.
        """
        rule = self.policy.rules_by_id[rule_id]
        required = cond.required_facts(rule.condition)
        unknown = [fact for fact in required if fact not in known]
        if unknown:
            # The walk can stop here only on a fact no earlier step has needed.
            gaps, gap_groups = self.pattern(
                cond.AnyOf(tuple(cond.Answered(fact, negated=True) for fact in unknown)), rule.id
            )
            self.check_groups(grouped + gap_groups, rule.id)
            self.terminal(steps, [*expressions, *gaps], grouped + gap_groups, None, unanswered=rule.id)
        for held, target in ((True, rule.then), (False, rule.otherwise)):
            branch = self.branch(rule, held)
            if branch is None:
                continue
            branch_expressions, branch_groups = branch
            implied = cond.implied_facts(cond.to_nnf(rule.condition, negate=not held))
            present = [{"$ex": {f: 1}} for f in unknown if f not in implied]
            next_expressions = [*expressions, *present, *branch_expressions]
            next_steps = [*steps, Step(rule.id, held)]
            self.check_groups(grouped + branch_groups, rule.id)
            if target.rule:
                self.walk(target.rule, next_steps, next_expressions, known | set(required), grouped + branch_groups)
            else:
                self.terminal(next_steps, next_expressions, grouped + branch_groups, target)

    def terminal(
        self,
        steps: list[Step],
        expressions: list[dict[str, Any]],
        grouped: int,
        target: Target | None,
        unanswered: str = "",
    ) -> None:
        index = len(self.terminals)
        last = steps[-1].rule_id if steps else unanswered
        always_on: list[str] = []
        split: list[tuple[str, cond.Condition]] = []
        known, decided = self.outcome(target)
        for overlay_id, condition in self.overlays:
            residual = cond.specialise(condition, known, decided)
            if residual is True:
                always_on.append(overlay_id)
            elif residual is not False and _reads_outcome(condition):
                split.append((overlay_id, residual))
            # otherwise: never on this path, or fact-only (matched once, on the case fact)
        if len(self.rules) + 2 ** min(len(split), MAX_SPLIT) > MAX_RULES:
            # Checked while paths are built: a walk whose paths multiply (each rule sending both
            # answers on to the next) would otherwise take minutes to enumerate before failing.
            raise self.error(
                f"the walk has more paths than the engine takes (at most {MAX_RULES} rules); split it", last
            )
        if len(split) > MAX_SPLIT:
            raise self.error(
                f"{len(split)} advice rules read both the outcome and facts on one path (at most {MAX_SPLIT})", last
            )
        held = [self.pattern(residual, overlay_id) for overlay_id, residual in split]
        failed = [self.pattern(complement(residual), overlay_id) for overlay_id, residual in split]
        for mask in range(2 ** len(split)):
            chosen = tuple(overlay_id for bit, (overlay_id, _) in enumerate(split) if mask >> bit & 1)
            parts = [held[bit] if mask >> bit & 1 else failed[bit] for bit in range(len(split))]
            variant = [expr for part, _ in parts for expr in part]
            self.check_groups(grouped + sum(count for _, count in parts), split[0][0] if split else last)
            name = f"path-{index}" + (f".{mask}" if split else "")
            self.rules[name] = _rule(CASE, [*expressions, *variant])
            self.actions[name] = Action("terminal", terminal=index, overlays=chosen)
        self.terminals.append(Terminal(index, tuple(steps), target, unanswered, tuple(always_on)))

    def outcome(self, target: Target | None) -> tuple[dict[str, cond.Value], frozenset[str]]:
        return outcome_values(self.policy, target), frozenset(DECISION_FIELDS)

    def fact_overlays(self) -> None:
        for overlay_id, condition in self.overlays:
            if _reads_outcome(condition) or isinstance(cond.specialise(condition, {}, frozenset()), bool):
                continue  # outcome overlays are per path; constant ones are bound to every path
            expressions, count = self.pattern(condition, overlay_id)
            self.check_groups(count, overlay_id)
            name = f"overlay-{overlay_id}"
            self.rules[name] = _rule(CASE, expressions)
            self.actions[name] = Action("overlay", overlays=(overlay_id,))


def _reads_outcome(condition: cond.Condition) -> bool:
    return any(name in DECISION_FIELDS for name in cond.facts_read(condition))
