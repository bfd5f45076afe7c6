"""The walk of a policy over a *partial* assignment of answers, in Python.

This is the walk's meaning as the compiler encodes it (see
:mod:`fairpath.engine.compiler`): from the first rule, a rule whose needed
facts are not all answered stops the walk (``NEEDS_INFORMATION``); otherwise
its condition decides between ``then`` and ``else``. Over a partial
assignment the walk may also find that it cannot go on until one more fact is
decided: :func:`walk` then names that fact, which is what
:func:`fairpath.authoring.space.explore` needs to vary only what matters.

The authoring tools use it to steer enumeration and to say what a path
means; the outcomes they report come from the real engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from fairpath.authoring.space import Assignment, residual_of
from fairpath.policy import conditions as cond
from fairpath.policy.model import Policy, Rule, Target, outcome_values

THEN = "then"
ELSE = "else"
UNANSWERED = "unanswered"


@dataclass(frozen=True)
class Step:
    """One rule the walk passed through and which way it went (``then``, ``else`` or ``unanswered``)."""

    rule: Rule
    branch: str

    @property
    def target(self) -> Target | None:
        """Where the step led (``None`` when the walk stopped here for a missing answer)."""
        if self.branch == UNANSWERED:
            return None
        return self.rule.then if self.branch == THEN else self.rule.otherwise


@dataclass(frozen=True)
class WalkEnd:
    """Where a walk ended: a pathway, or a rule that stopped it for missing answers."""

    steps: tuple[Step, ...]

    @property
    def last(self) -> Step:
        """The step that ended the walk."""
        return self.steps[-1]

    @property
    def target(self) -> Target | None:
        """The pathway reached, or ``None`` on ``NEEDS_INFORMATION``."""
        return self.last.target

    @property
    def reads(self) -> tuple[str, ...]:
        """Every fact the rules on the way read, in order."""
        return tuple(dict.fromkeys(fact for step in self.steps for fact in step.rule.reads))

    def outcome(self, policy: Policy) -> dict[str, cond.Value]:
        """Return the outcome fields advice reads, as the compiler sets them (no ``pathway``: undecided)."""
        return outcome_values(policy, self.target)

    def label(self) -> str:
        """``CODE``, ``CODE (sub-reason)`` or ``NEEDS_INFORMATION [facts]``, as an author reads an outcome."""
        target = self.target
        if target is None:
            return f"NEEDS_INFORMATION at {self.last.rule.id}"
        return target.pathway + (f" ({target.sub_reason})" if target.sub_reason else "")


def walk(policy: Policy, assignment: Assignment) -> WalkEnd | str:
    """Walk ``policy`` over ``assignment``; return the end, or a fact that must be decided first."""
    steps: list[Step] = []
    rule = policy.start
    while True:
        needs = rule.needs
        if any(fact in assignment and assignment[fact] is None for fact in needs):
            steps.append(Step(rule, UNANSWERED))
            return WalkEnd(tuple(steps))
        free = next((fact for fact in needs if fact not in assignment), None)
        if free is not None:
            return free
        residual = residual_of(cond.to_nnf(rule.condition), assignment)
        if not isinstance(residual, bool):
            # Only `is answered` tests can be left: the facts they read are not in `needs`.
            return next(fact for fact in cond.facts_read(residual) if fact not in assignment)
        step = Step(rule, THEN if residual else ELSE)
        steps.append(step)
        target = step.target
        assert target is not None  # a THEN/ELSE step always has a target
        if not target.rule:
            return WalkEnd(tuple(steps))
        rule = policy.rules_by_id[target.rule]


def walk_facts(policy: Policy) -> tuple[str, ...]:
    """Every fact some walk rule reads, in file order."""
    return tuple(dict.fromkeys(fact for rule in policy.rules for fact in rule.reads))
