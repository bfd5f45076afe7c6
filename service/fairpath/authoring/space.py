"""The space of answers a policy can be given, and how to enumerate it without exploding.

Every fact gets a finite :class:`Domain`: its possible values plus ``None``
(*unanswered*). Finite types are taken as declared: an answer is YES, NO or
unanswered; an enum one of its codes or unanswered; a bool true, false or
unanswered. The other types are split into the classes the policy's conditions
can tell apart, which is exact for the condition language, because a condition
can only compare a value with the literals written in it:

* a **set** fact: every subset of the codes some condition tests (``has``,
  ``lacks``), each standing for ``2**untested`` real subsets;
* a **number**: each literal, a point between neighbouring literals, one below
  the lowest and one above the highest;
* **text**: each literal and one other text.

:func:`explore` enumerates *lazily*: a ``decide`` function names the next fact
whose value matters given what is assigned so far, or ``None`` once the
outcome is settled. Each leaf is a partial assignment that stands for every
combination agreeing with it (its ``weight``), so the leaves partition the
whole space exactly while only the facts that matter are ever varied. The
guide's walk reads 14 yes/no questions (4.8 million combinations) yet has a
few dozen leaves.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from fairpath.policy import conditions as cond
from fairpath.policy.model import DECISION_FIELDS, FactSpec, FactType, Policy

# Above this many leaves (classes of combinations) enumeration is refused; callers say so.
MAX_COMBINATIONS = 2_000_000
# Above the bound, diff samples this many full combinations, with this seed (reproducible runs).
SAMPLES = 20_000
SEED = 1
_OTHER_TEXT = "other"

# A fact's value, or None for unanswered; a fact absent from an Assignment is not decided yet.
Assignment = Mapping[str, cond.Value | None]
Decide = Callable[[Assignment], str | None]


class TooManyCombinations(Exception):  # noqa: N818 - a signal to the caller, not an error of the policy
    """Enumeration stopped: more than ``limit`` classes of combinations."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"more than {limit:,} classes of combinations")


@dataclass(frozen=True)
class Domain:
    """The values one fact can take (``None`` = unanswered), each with how many real values it stands for."""

    fact: str
    values: tuple[cond.Value | None, ...]
    weights: tuple[int, ...]

    @property
    def size(self) -> int:
        """How many real values (unanswered included) the domain covers."""
        return sum(self.weights)

    def weight(self, value: cond.Value | None) -> int:
        """How many real values ``value`` stands for."""
        return self.weights[self.values.index(value)]


@dataclass(frozen=True)
class Leaf:
    """A partial assignment whose outcome is settled, and how many full combinations it stands for."""

    assignment: Mapping[str, cond.Value | None]
    weight: int


def conditions_of(policy: Policy) -> Iterable[cond.Condition]:
    """Every condition in a policy: walk rules, advice and checks."""
    yield from (rule.condition for rule in policy.rules)
    yield from (rule.condition for rule in policy.advice)
    yield from (rule.condition for rule in policy.checks)


def fact_domains(policies: Sequence[Policy]) -> dict[str, Domain]:
    """Return the domain of every fact any of ``policies`` declares (the first declaration's type wins)."""
    literals: dict[str, list[cond.Value]] = {}
    for policy in policies:
        for condition in conditions_of(policy):
            for atom in cond.atoms(condition):
                found = atom.values if isinstance(atom, cond.Member) else (
                    (atom.value,) if isinstance(atom, cond.Compare) else ()
                )
                literals.setdefault(atom.fact, []).extend(found)
    specs: dict[str, FactSpec] = {}
    extra: dict[str, list[str]] = {}  # codes a later version adds to an enum or set
    for policy in policies:
        for spec in policy.facts.values():
            first = specs.setdefault(spec.name, spec)
            extra.setdefault(spec.name, []).extend(v for v in spec.values if v not in first.values)
    return {
        name: _domain(spec, (*spec.values, *dict.fromkeys(extra[name])), literals.get(name, []))
        for name, spec in specs.items()
    }


def _domain(spec: FactSpec, codes: tuple[str, ...], literals: list[cond.Value]) -> Domain:
    values: list[cond.Value | None]
    weights: list[int]
    if spec.type is FactType.ANSWER:
        values = ["YES", "NO"]
    elif spec.type is FactType.ENUM:
        values = list(codes)
    elif spec.type is FactType.BOOL:
        values = [True, False]
    elif spec.type is FactType.SET:
        tested = [code for code in codes if code in literals]
        spare = 2 ** (len(codes) - len(tested))
        values = [
            tuple(code for code, chosen in zip(tested, mask, strict=True) if chosen)
            for mask in itertools.product((False, True), repeat=len(tested))
        ]
        return Domain(spec.name, (*values, None), (*[spare] * len(values), 1))
    elif spec.type is FactType.NUMBER:
        values = list(_number_points(sorted({v for v in literals if isinstance(v, float)})))
    else:
        texts = list(dict.fromkeys(v for v in literals if isinstance(v, str)))
        other = _OTHER_TEXT
        while other in texts:
            other += "_"
        values = [*texts, other]
    weights = [1] * len(values)
    return Domain(spec.name, (*values, None), (*weights, 1))


def _number_points(points: list[float]) -> Iterable[float]:
    if not points:
        yield 0.0
        return
    yield points[0] - 1
    for low, high in itertools.pairwise(points):
        yield low
        yield (low + high) / 2
    yield points[-1]
    yield points[-1] + 1


def space_size(domains: Mapping[str, Domain], facts: Iterable[str]) -> int:
    """How many full combinations of ``facts`` there are."""
    return math.prod(domains[fact].size for fact in facts)


def known(assignment: Assignment) -> dict[str, cond.Value]:
    """Return the answered facts of an assignment, as an evaluation request would carry them."""
    return {name: value for name, value in assignment.items() if value is not None}


def explore(
    domains: Mapping[str, Domain], facts: Sequence[str], decide: Decide, limit: int = MAX_COMBINATIONS
) -> list[Leaf]:
    """Enumerate the space of ``facts`` lazily, depth first, values in domain order.

    ``decide`` gets the assignment so far and names an unassigned fact to vary
    next, or returns ``None`` when the outcome no longer depends on the rest.
    Facts it names outside ``facts`` are varied too but not counted in weights.

    Raises:
        TooManyCombinations: more than ``limit`` leaves.

    """
    counted = frozenset(facts)
    leaves: list[Leaf] = []
    stack: list[dict[str, cond.Value | None]] = [{}]
    while stack:
        assignment = stack.pop()
        fact = decide(assignment)
        if fact is None:
            if len(leaves) >= limit:
                raise TooManyCombinations(limit)
            assigned = math.prod(domains[f].weight(v) for f, v in assignment.items() if f in counted)
            free = math.prod(domains[f].size for f in counted if f not in assignment)
            leaves.append(Leaf(assignment, assigned * free))
            continue
        if fact in assignment:
            raise ValueError(f"decide() named {fact!r}, which is already assigned")
        stack.extend({**assignment, fact: value} for value in reversed(domains[fact].values))
    return leaves


def sample(
    domains: Mapping[str, Domain], facts: Sequence[str], count: int, seed: int
) -> list[dict[str, cond.Value | None]]:
    """``count`` full assignments of ``facts`` drawn uniformly from every combination (fixed ``seed``)."""
    generator = random.Random(seed)  # noqa: S311 - reproducible sampling, not security
    return [
        {fact: generator.choices(domains[fact].values, weights=domains[fact].weights)[0] for fact in facts}
        for _ in range(count)
    ]


def satisfying(
    condition: cond.Condition,
    domains: Mapping[str, Domain],
    assignment: Assignment,
    outcome: Mapping[str, cond.Value] | None = None,
    limit: int = MAX_COMBINATIONS,
) -> dict[str, cond.Value | None] | None:
    """Extend ``assignment`` so that the NNF ``condition`` holds; ``None`` when no extension does.

    ``outcome`` gives the walk's outcome fields (``pathway``, ``status``,
    ``individual_directed``), which count as decided; a missing ``pathway``
    is unanswered. Only the facts the condition still depends on are varied.
    """
    settled_outcome = dict(outcome or {})
    stack: list[dict[str, cond.Value | None]] = [dict(assignment)]
    visited = 0
    while stack:
        current = stack.pop()
        visited += 1
        if visited > limit:
            raise TooManyCombinations(limit)
        residual = residual_of(condition, current, settled_outcome)
        if residual is True:
            return current
        if residual is False:
            continue
        fact = next(name for name in cond.facts_read(residual) if name not in current)
        stack.extend({**current, fact: value} for value in reversed(domains[fact].values))
    return None


def residual_of(
    condition: cond.Condition, assignment: Assignment, outcome: Mapping[str, cond.Value] | None = None
) -> cond.Condition | bool:
    """Return what is left of a NNF condition once the assigned facts (and any outcome) are known."""
    values = {**known(assignment), **(outcome or {})}
    decided = frozenset(assignment)
    if outcome is not None:
        decided |= frozenset(DECISION_FIELDS)
    return cond.specialise(condition, values, decided)
