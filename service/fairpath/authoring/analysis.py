"""The lint checks that need the answers: they enumerate the walk's fact space.

One enumeration (:func:`fairpath.authoring.space.explore` steered by
:func:`fairpath.authoring.walks.walk`) yields every class of answers the walk
can be given — each class fixes only the facts its path reads — and the checks
read it:

* **dead-branch / unreachable-rule / unreachable-pathway**: which branches,
  rules and pathways some class takes;
* **answer-leads-nowhere**: a rule *asks* for a fact when some class reaches
  it with that fact unanswered (the walk stops there). If, among the classes
  that answer it, no two that differ only in that fact go different ways, the
  answer leads nowhere: asking it can only stop the walk. The plainest case
  is ``then`` and ``else`` naming the same target;
* **gap**: every class goes through the real engine, once with the facts off
  the path unanswered and once with them filled in at random (fixed seed), and
  must reach the pathway, or stop at the rule, that the walk says;
* **never-fires / overlapping-conditions**: advice and checks are specialised
  by each class and its outcome, and what is left is solved over the
  remaining facts' domains.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from fairpath.authoring.space import (
    Domain,
    Leaf,
    TooManyCombinations,
    explore,
    fact_domains,
    known,
    residual_of,
    satisfying,
    space_size,
)
from fairpath.authoring.walks import ELSE, THEN, UNANSWERED, WalkEnd, walk, walk_facts
from fairpath.decisions import Decision
from fairpath.engine.compiler import complement
from fairpath.errors import FairpathError
from fairpath.policy import conditions as cond
from fairpath.policy.model import AdviceRule, CheckRule, Policy
from fairpath.problems import Problem, finding
from fairpath.serving.evaluator import Evaluator

MAX_GAPS_SHOWN = 10
_SEED = 20180301  # the guide's publication date: any fixed seed makes runs reproducible
_FREE = object()  # a fact the class leaves open


@dataclass(frozen=True)
class Analysis:
    """The problems found, and what was enumerated (in words)."""

    problems: tuple[Problem, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class _Class:
    leaf: Leaf
    end: WalkEnd


def analyse(
    policy: Policy, evaluator: Evaluator, lines: Mapping[tuple[str, str], int], limit: int
) -> Analysis:
    """Run every enumeration check on ``policy``; ``evaluator`` must serve it (for the ``gap`` check)."""
    domains = fact_domains([policy])
    facts = walk_facts(policy)
    total = space_size(domains, facts)

    def decide(assignment: Mapping[str, cond.Value | None]) -> str | None:
        found = walk(policy, assignment)
        return found if isinstance(found, str) else None

    try:
        leaves = explore(domains, facts, decide, limit)
    except TooManyCombinations:
        message = (f"not enumerated: the walk has more than {limit:,} classes of answers, so gaps, dead "
                   "branches, overlaps and advice that never fires were not checked")
        return Analysis((finding(policy.path, "", None, message, "warning", "gap"),), ())
    classes = []
    for leaf in leaves:
        end = walk(policy, leaf.assignment)
        assert isinstance(end, WalkEnd)  # explore stops only once the walk has ended
        classes.append(_Class(leaf, end))
    gaps, disagreed = _gaps(policy, evaluator, classes, domains)
    problems = [
        *_branches(policy, classes, lines),
        *_leads_nowhere(policy, classes),
        *gaps,
        *_never_fires(policy, classes, domains, limit),
        *_overlapping_advice(policy, classes, domains, limit),
        *_identical_checks(policy, domains, limit),
    ]
    note = (f"walk: {len(leaves):,} classes of answers cover all {total:,} combinations of the "
            f"{len(facts)} facts the walk reads; ")
    agreed = "the engine agreed with the walk on every one"
    note += f"the engine disagreed on {disagreed}" if disagreed else agreed
    return Analysis(tuple(problems), (note,))


def _branches(
    policy: Policy, classes: Sequence[_Class], lines: Mapping[tuple[str, str], int]
) -> Iterator[Problem]:
    taken: dict[str, set[str]] = defaultdict(set)
    for item in classes:
        for step in item.end.steps:
            taken[step.rule.id].add(step.branch)
    for rule in policy.rules:
        seen = taken.get(rule.id)
        if not seen:
            yield finding(policy.path, rule.id, rule.line,
                          "no combination of answers reaches this rule: every branch leading to it is dead",
                          "error", "unreachable-rule")
            continue
        if THEN not in seen:
            yield finding(policy.path, rule.id, rule.line,
                          f"'then: {rule.then}' is never taken: given the answers that reach this rule, "
                          "its condition can never hold", "error", "dead-branch")
        # `always` has an `else` only because the format asks for one.
        if ELSE not in seen and not isinstance(rule.condition, cond.Always):
            yield finding(policy.path, rule.id, rule.line,
                          f"'else: {rule.otherwise}' is never taken: given the answers that reach this rule, "
                          "its condition holds whenever its facts are answered", "error", "dead-branch")
    targeted = {t.pathway for rule in policy.rules for t in (rule.then, rule.otherwise) if t.pathway}
    reached = {item.end.target.pathway for item in classes if item.end.target is not None}
    for code in policy.pathways:
        if code not in reached:
            why = "only dead branches lead to it" if code in targeted else "no rule leads to it"
            yield finding(policy.path, "", lines.get(("pathways", code)),
                          f"pathway {code} is never reached: {why}", "warning", "unreachable-pathway")


def _leads_nowhere(policy: Policy, classes: Sequence[_Class]) -> Iterator[Problem]:
    # Per rule: the distinct (values of the facts it reads, where it led) over every class through it.
    records: dict[str, set[tuple[tuple[object, ...], str]]] = defaultdict(set)
    for item in classes:
        for step in item.end.steps:
            key = tuple(item.leaf.assignment.get(fact, _FREE) for fact in step.rule.reads)
            records[step.rule.id].add((key, str(step.target) if step.target else UNANSWERED))
    for rule in policy.rules:
        seen = records.get(rule.id, set())
        idle = [
            fact for index, fact in enumerate(rule.reads)
            if fact in rule.needs
            and any(key[index] is None for key, _ in seen)  # the rule asks for it
            and not _decides(seen, index)
        ]
        if not idle:
            continue
        names = ", ".join(idle)
        stops = f"yet the walk stops here while {names} {'is' if len(idle) == 1 else 'are'} unanswered"
        if rule.then == rule.otherwise:
            message = f"'then' and 'else' both lead to {rule.then}: no answer changes the way, {stops}"
        else:
            message = f"given the answers that reach it, no answer to {names} changes where it leads; {stops}"
        yield finding(policy.path, rule.id, rule.line, message, "warning", "answer-leads-nowhere")


def _decides(records: set[tuple[tuple[object, ...], str]], index: int) -> bool:
    """Whether two answered records that differ only in fact ``index`` lead to different places."""
    answered = [(key, target) for key, target in records if target != UNANSWERED]
    for (first, one), (second, other) in itertools.combinations(answered, 2):
        if one != other and first[index] != second[index] and all(
            a == b or a is _FREE or b is _FREE
            for position, (a, b) in enumerate(zip(first, second, strict=True)) if position != index
        ):
            return True
    return False


def _gaps(
    policy: Policy, evaluator: Evaluator, classes: Sequence[_Class], domains: Mapping[str, Domain]
) -> tuple[list[Problem], int]:
    """Run every class through the engine; return the problems to show and how many classes disagreed."""
    generator = random.Random(_SEED)  # noqa: S311 - reproducible filling, not security
    walk_only = walk_facts(policy)
    problems: list[Problem] = []
    disagreed = 0
    for item in classes:
        filled = {
            fact: generator.choices(domains[fact].values, weights=domains[fact].weights)[0]
            for fact in walk_only if fact not in item.leaf.assignment
        }
        for assignment in (item.leaf.assignment, {**item.leaf.assignment, **filled}):
            message = _engine_disagrees(policy, evaluator, item.end, assignment)
            if message is None:
                continue
            disagreed += 1
            if disagreed <= MAX_GAPS_SHOWN:
                rule = item.end.last.rule
                problems.append(finding(policy.path, rule.id, rule.line, message, "error", "gap"))
            break
    if disagreed > MAX_GAPS_SHOWN:
        more = disagreed - MAX_GAPS_SHOWN
        message = f"... and {more} more classes like these"
        problems.append(finding(policy.path, "", None, message, "error", "gap"))
    return problems, disagreed


def _engine_disagrees(
    policy: Policy, evaluator: Evaluator, end: WalkEnd, assignment: Mapping[str, cond.Value | None]
) -> str | None:
    answers = describe(assignment, tuple(assignment))
    try:
        decision = evaluator.evaluate(policy.name, known(assignment), version=policy.version, alone=True)
    except FairpathError as error:
        return f"for {answers} the engine reached no outcome ({error})"
    got = _label(decision)
    if got != end.label():
        return f"for {answers} the engine reached {got}, but the walk leads to {end.label()}"
    return None


def _label(decision: Decision) -> str:
    if decision.pathway is None:
        return f"NEEDS_INFORMATION at {decision.missing_facts[0].rule_id}" if decision.missing_facts else \
            "NEEDS_INFORMATION"
    sub = decision.pathway.sub_reason
    return decision.pathway.code + (f" ({sub})" if sub else "")


def _residuals(
    condition: cond.Condition, policy: Policy, classes: Sequence[_Class]
) -> dict[cond.Condition | bool, _Class]:
    """Map what is left of a NNF condition in each class (given its outcome) to one class leaving it."""
    found: dict[cond.Condition | bool, _Class] = {}
    for item in classes:
        found.setdefault(residual_of(condition, item.leaf.assignment, item.end.outcome(policy)), item)
    return found


def _witness(
    condition: cond.Condition,
    policy: Policy,
    classes: Sequence[_Class],
    domains: Mapping[str, Domain],
    limit: int,
) -> tuple[_Class, dict[str, cond.Value | None]] | None:
    """Find a class and answers under which the NNF condition holds, or ``None`` when there are none.

    Raises:
        TooManyCombinations: the facts left open have too many combinations to try.

    """
    for residual, item in _residuals(condition, policy, classes).items():
        if residual is False:
            continue
        if residual is True:
            return item, dict(item.leaf.assignment)
        extension = satisfying(residual, domains, {}, limit=limit)
        if extension is not None:
            return item, {**item.leaf.assignment, **extension}
    return None


def _never_fires(
    policy: Policy, classes: Sequence[_Class], domains: Mapping[str, Domain], limit: int
) -> Iterator[Problem]:
    overlays: tuple[AdviceRule | CheckRule, ...] = (*policy.advice, *policy.checks)
    for rule in overlays:
        try:
            witness = _witness(cond.to_nnf(rule.condition), policy, classes, domains, limit)
        except TooManyCombinations:
            continue  # cannot tell: say nothing rather than guess
        if witness is None:
            what = f"advice {rule.code}" if isinstance(rule, AdviceRule) else "this check"
            yield finding(policy.path, rule.id, rule.line,
                          f"{what} can never be given: no combination of answers that reaches an outcome "
                          "makes its condition hold", "warning", "never-fires")


def _overlapping_advice(
    policy: Policy, classes: Sequence[_Class], domains: Mapping[str, Domain], limit: int
) -> Iterator[Problem]:
    by_code: dict[str, list[AdviceRule]] = defaultdict(list)
    for rule in policy.advice:
        by_code[rule.code].append(rule)
    for code, rules in by_code.items():
        for first, second in itertools.combinations(rules, 2):
            both = cond.All((cond.to_nnf(first.condition), cond.to_nnf(second.condition)))
            try:
                found = _witness(both, policy, classes, domains, limit)
            except TooManyCombinations:
                continue  # cannot tell: say nothing rather than guess
            if found is None:
                continue
            item, answers = found
            names = tuple(n for n in (*first.reads, *second.reads) if n in policy.facts)
            when = describe(answers, tuple(dict.fromkeys(names)))
            if any(n not in policy.facts for n in (*first.reads, *second.reads)):
                when += f", outcome {item.end.label()}"
            yield finding(policy.path, second.id, second.line,
                          f"advice {first.id} and {second.id} both give {code}, and both hold when {when}: "
                          f"make their conditions exclusive so {code} is given once", "warning",
                          "overlapping-conditions")


def _identical_checks(policy: Policy, domains: Mapping[str, Domain], limit: int) -> Iterator[Problem]:
    for first, second in itertools.combinations(policy.checks, 2):
        one, other = cond.to_nnf(first.condition), cond.to_nnf(second.condition)
        try:
            differ = any(
                satisfying(cond.All((a, complement(b))), domains, {}, limit=limit) is not None
                for a, b in ((one, other), (other, one))
            )
        except TooManyCombinations:
            differ = one != other
        if not differ:
            yield finding(policy.path, second.id, second.line,
                          f"check {second.id} holds for exactly the same answers as check {first.id}",
                          "warning", "overlapping-conditions")


def describe(assignment: Mapping[str, cond.Value | None], names: Iterable[str]) -> str:
    """Describe the facts ``names`` that the assignment decides: ``a = YES, b unanswered``."""
    decided = [name for name in names if name in assignment]
    return cond.describe_facts(decided, known(assignment)) if decided else "any answers"
