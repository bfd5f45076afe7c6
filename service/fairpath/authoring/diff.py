"""``fairpath policy diff``: every combination of answers on which two versions decide differently.

Both versions are loaded side by side in one :class:`~fairpath.serving.evaluator.Evaluator`
(two rulesets in one engine) and every class of answers is evaluated by both.
The classes come from :func:`fairpath.authoring.space.explore` over the union of
the two versions' facts, steered so that only what can make a difference is
varied: first the facts each walk reads, then, for each advice code, the facts
its conditions still read — but only while the two versions' conditions for
that code differ once each walk's outcome is known (where they are identical,
they cannot make the results differ, whatever the answers) — and last the
facts the two versions declare differently (a new enum value, say).

Above the enumeration bound the space is *sampled* instead: a fixed number of
full combinations drawn uniformly with a fixed seed, and the counts become
estimates. A fact one version does not declare is simply never asked by it; a
value one version does not allow makes that version refuse the facts, shown as
``INVALID_FACTS``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from fairpath.authoring.space import (
    MAX_COMBINATIONS,
    SAMPLES,
    SEED,
    Assignment,
    TooManyCombinations,
    explore,
    fact_domains,
    known,
    residual_of,
    sample,
    space_size,
)
from fairpath.authoring.walks import WalkEnd, walk
from fairpath.decisions import Decision
from fairpath.errors import InvalidFactsError, PolicyFileError
from fairpath.policy import conditions as cond
from fairpath.policy.model import Policy
from fairpath.policy.registry import PolicyRegistry
from fairpath.serving.evaluator import Evaluator

EXAMPLES = 2
INVALID = "INVALID_FACTS"
#: What a walk changed to when B reaches the same pathway but with other advice.
SAME_PATHWAY = "other advice only"


@dataclass
class DiffGroup:
    """Combinations on which version A reached pathway ``before`` and B ``after``, and B's advice changes.

    ``before`` and ``after`` are pathway codes, ``NEEDS_INFORMATION`` or ``INVALID_FACTS``; the
    examples give the full outcomes (sub-reasons, missing facts).
    """

    before: str
    after: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    combinations: int = 0  # full combinations of answers (an estimate when sampled)
    classes: int = 0  # classes (or samples) evaluated
    # (outcome A → outcome B in full, the answers that matter: "fact = VALUE" or "fact unanswered")
    examples: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)


@dataclass(frozen=True)
class PathwayWalks:
    """The distinct walks of version A that end at one outcome, and where they end under version B.

    A *walk* is one route through A's questions (each rule passed and which way it went): what a
    reviewer reads as one line of the flowchart, however many answers to other facts share it.

    Attributes:
        pathway: A's outcome: a pathway code or ``NEEDS_INFORMATION``.
        walks: How many distinct walks of A end there.
        changed: How many of them end differently under B (another outcome, or other advice), for
            some answers.
        now: B's outcome for the changed walks and how many walks reach it, most first (a walk
            counts under each outcome it reaches; ``other advice only`` when only advice changed).

    """

    pathway: str
    walks: int
    changed: int
    now: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class PolicyDiff:
    """The differences between two versions of one policy."""

    name: str
    old: str
    new: str
    facts: tuple[str, ...]
    total: int  # every combination of answers of ``facts``
    evaluated: int  # classes enumerated, or samples drawn
    sampled: bool
    groups: tuple[DiffGroup, ...]
    seed: int = SEED
    by_pathway: tuple[PathwayWalks, ...] = ()

    @property
    def differing(self) -> int:
        """How many combinations (estimated when sampled) differ."""
        return sum(group.combinations for group in self.groups)


def diff_policies(
    old: Policy, new: Policy, *, limit: int = MAX_COMBINATIONS, samples: int = SAMPLES, seed: int = SEED
) -> PolicyDiff:
    """Compare two versions of one policy over their whole fact space.

    Raises:
        PolicyFileError: the versions cannot be compared (different policies, the same version) or
            do not compile.
        EngineError: durable_rules refused one of them.

    """
    if old.name != new.name or old.version == new.version:
        raise PolicyFileError(f"diff compares two versions of one policy, not {old.key} and {new.key}",
                              path=new.path)
    versions = (old, new)
    domains = fact_domains(versions)
    facts = tuple(dict.fromkeys((*old.facts, *new.facts)))
    codes = tuple(dict.fromkeys(rule.code for policy in versions for rule in policy.advice))
    advice = [{code: _advice_condition(policy, code) for code in codes} for policy in versions]
    # Facts both declare but with other types or values: one version may refuse an answer the other takes.
    contested = [
        name for name in facts
        if name in old.facts and name in new.facts
        and (old.facts[name].type, old.facts[name].values) != (new.facts[name].type, new.facts[name].values)
    ]

    def decide(assignment: Assignment) -> str | None:
        ends = []
        for policy in versions:
            end = walk(policy, assignment)
            if isinstance(end, str):
                return end
            ends.append(end)
        for code in codes:
            left, right = (
                residual_of(conditions[code], assignment, end.outcome(policy))
                for conditions, end, policy in zip(advice, ends, versions, strict=True)
            )
            if left == right or (isinstance(left, bool) and isinstance(right, bool)):
                continue  # identical conditions cannot make the versions differ, whatever the answers
            undecided = right if isinstance(left, bool) else left
            assert not isinstance(undecided, bool)
            return next(fact for fact in cond.facts_read(undecided) if fact not in assignment)
        return next((name for name in contested if name not in assignment), None)

    total = space_size(domains, facts)
    try:
        cases = [(leaf.assignment, leaf.weight) for leaf in explore(domains, facts, decide, limit)]
        sampled = False
    except TooManyCombinations:
        share = total // samples  # each sample stands for an equal share of the space
        cases = [(assignment, share) for assignment in sample(domains, facts, samples, seed)]
        sampled = True
    groups: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], DiffGroup] = {}
    # A's walks by outcome, and for each walk the outcomes B reaches where it differs.
    walks: dict[str, dict[tuple[tuple[str, str], ...], set[str]]] = {}
    evaluator = Evaluator(PolicyRegistry(versions))
    try:
        for assignment, weight in cases:
            (before, had), (after, has) = (_outcome(evaluator, policy, assignment) for policy in versions)
            changes = walks.setdefault(_code(before), {}).setdefault(_route(old, assignment), set())
            if before == after and had == has:
                continue
            changes.add(_code(after) if _code(after) != _code(before) else SAME_PATHWAY)
            # Grouped by pathway code; sub-reasons and missing facts show in the examples.
            refused = INVALID in (before, after)  # a refusal has no advice to compare
            added, removed = ((), ()) if refused else (tuple(sorted(has - had)), tuple(sorted(had - has)))
            key = (_code(before), _code(after), added, removed)
            group = groups.setdefault(key, DiffGroup(*key))
            group.combinations += weight
            group.classes += 1
            example = (f"{before} → {after}", _example(versions, assignment, added + removed, contested))
            if len(group.examples) < EXAMPLES and example not in group.examples:
                group.examples.append(example)
    finally:
        evaluator.close()  # unloads both rulesets
    # Pathway changes first (what a reviewer acts on), then advice-only changes; never by combination count,
    # which weighs a change by how many unlikely combinations share its route.
    ordered = sorted(groups.values(), key=lambda g: (g.before == g.after, g.before, g.after, g.added, g.removed))
    return PolicyDiff(
        old.name, old.version, new.version, facts, total, len(cases), sampled, tuple(ordered), seed,
        _by_pathway(walks),
    )


def _route(policy: Policy, assignment: Assignment) -> tuple[tuple[str, str], ...]:
    """The walk ``policy`` takes on ``assignment``: each rule passed and which way it went."""
    end = walk(policy, assignment)
    return tuple((step.rule.id, step.branch) for step in end.steps) if isinstance(end, WalkEnd) else ()


def _by_pathway(walks: dict[str, dict[tuple[tuple[str, str], ...], set[str]]]) -> tuple[PathwayWalks, ...]:
    """Per outcome of A: its walks, how many change, and to what (walks per outcome of B)."""
    found = []
    for pathway, routes in walks.items():
        changed = [now for now in routes.values() if now]
        destinations = Counter(outcome for now in changed for outcome in now)
        found.append(PathwayWalks(
            pathway, len(routes), len(changed),
            tuple(sorted(destinations.items(), key=lambda item: (-item[1], item[0]))),
        ))
    return tuple(sorted(found, key=lambda p: (-p.changed, p.pathway)))


def _advice_condition(policy: Policy, code: str) -> cond.Condition:
    return cond.AnyOf(tuple(cond.to_nnf(rule.condition) for rule in policy.advice if rule.code == code))


def _outcome(evaluator: Evaluator, policy: Policy, assignment: Assignment) -> tuple[str, frozenset[str]]:
    facts = {name: value for name, value in known(assignment).items() if name in policy.facts}
    try:
        decision = evaluator.evaluate(policy.name, facts, version=policy.version, alone=True)
    except InvalidFactsError:
        return INVALID, frozenset()
    return label(decision), frozenset(item.code for item in decision.advice)


def _code(label: str) -> str:
    return label.split(" ", 1)[0]


def label(decision: Decision) -> str:
    """Return a decision's outcome in brief: ``CODE``, ``CODE (sub)`` or ``NEEDS_INFORMATION [facts]``."""
    if decision.pathway is None:
        return f"NEEDS_INFORMATION [{', '.join(m.fact for m in decision.missing_facts)}]"
    sub = decision.pathway.sub_reason
    return decision.pathway.code + (f" ({sub})" if sub else "")


def _example(
    versions: Sequence[Policy], assignment: Assignment, codes: Sequence[str], contested: Sequence[str]
) -> tuple[str, ...]:
    """Describe the answers that matter: read by either walk or the differing advice, or contested."""
    names: list[str] = [*contested]
    for policy in versions:
        end = walk(policy, assignment)
        if isinstance(end, WalkEnd):
            names.extend(end.reads)
        names.extend(fact for rule in policy.advice if rule.code in codes for fact in rule.reads)
    answers = known(assignment)
    return tuple(cond.describe_facts([name], answers) for name in dict.fromkeys(names) if name in assignment)
