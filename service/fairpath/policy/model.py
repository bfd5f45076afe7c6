"""A loaded policy version, as plain immutable values.

Built by :mod:`fairpath.policy.loader` from a YAML file; read by the compiler,
the decision builder and the gRPC API. Nothing here knows about durable_rules
or protobuf.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from functools import cached_property

from fairpath.policy.conditions import Condition, Value, facts_read, required_facts

# Names an advice rule may read besides the policy's facts: the walk's outcome.
DECISION_FIELDS = ("pathway", "individual_directed", "status")


class FactType(enum.Enum):
    """How a fact's value is written in a request."""

    ANSWER = "answer"  # "YES" | "NO" | "UNKNOWN" (UNKNOWN = unanswered)
    ENUM = "enum"  # one of the declared codes
    BOOL = "bool"
    NUMBER = "number"
    STRING = "string"
    SET = "set"  # a list of distinct declared codes, e.g. parties_affected: [PATIENT, FAMILY]


ANSWER_VALUES = ("YES", "NO", "UNKNOWN")

# durable_rules cannot read a JSON number in exponent form without a decimal point
# ("1e-05", "1e+16": Python writes those for magnitudes below 1e-4 or from 1e16), so
# numbers, in requests and in conditions, are kept to a range written without one.
NUMBER_RANGE = "0, or a magnitude from 0.0001 to below 10^15"


def number_in_range(value: float) -> bool:
    """Whether ``value`` is a number the engine can be given (see :data:`NUMBER_RANGE`)."""
    return value == 0 or 1e-4 <= abs(value) < 1e15


@dataclass(frozen=True)
class FactSpec:
    """A fact the policy reads: its type, allowed values and the question that asks for it."""

    name: str
    type: FactType
    question: str
    values: tuple[str, ...] = ()
    description: str = ""
    sensitive: bool = False


@dataclass(frozen=True)
class Target:
    """Where a walk rule leads: the next rule, or a pathway (with an optional sub-reason)."""

    rule: str = ""
    pathway: str = ""
    sub_reason: str = ""

    def __str__(self) -> str:
        if self.rule:
            return f"rule {self.rule}"
        return f"pathway {self.pathway}" + (f" ({self.sub_reason})" if self.sub_reason else "")


class _ReadsCondition:
    """Gives a rule with a ``condition`` the names that condition reads, worked out once.

    ``cached_property`` works on the frozen dataclasses below because it writes the instance
    ``__dict__`` directly, never through the ``__setattr__`` that freezing forbids.
    """

    condition: Condition

    @cached_property
    def reads(self) -> tuple[str, ...]:
        """The names the condition reads, in order: facts (and, in advice rules, outcome fields)."""
        return facts_read(self.condition)


@dataclass(frozen=True)
class Rule(_ReadsCondition):
    """One step of the ordered walk: a question (or gate) and where each answer leads."""

    id: str
    title: str
    question: str
    condition: Condition
    condition_text: str
    then: Target
    otherwise: Target
    source: str = ""
    line: int | None = None

    @cached_property
    def needs(self) -> tuple[str, ...]:
        """The facts that must be answered for this step to decide."""
        return required_facts(self.condition)


@dataclass(frozen=True)
class Pathway:
    """A recommended response, in the policy's own words."""

    code: str
    title: str
    recommendation: str
    individual_directed: bool
    category: str = ""


@dataclass(frozen=True)
class AdviceRule(_ReadsCondition):
    """An overlay added to the result when its condition holds (may read the walk's outcome)."""

    id: str
    code: str
    title: str
    text: str
    condition: Condition
    condition_text: str
    line: int | None = None


@dataclass(frozen=True)
class CheckRule(_ReadsCondition):
    """A consistency check over the facts; when it holds, the decision carries a warning."""

    id: str
    title: str
    text: str
    condition: Condition
    condition_text: str
    line: int | None = None


#: The version a requirement names to mean "whatever version is current when evaluating".
CURRENT = "current"
#: What a chained fact may be taken from in the required decision, and the fact types that can hold it.
REQUIREMENT_SOURCES: dict[str, tuple[FactType, ...]] = {
    "pathway": (FactType.ENUM, FactType.STRING),  # the pathway code; unanswered when there is none
    "category": (FactType.ENUM, FactType.STRING),  # the pathway's category; unanswered when none
    "individual_directed": (FactType.BOOL,),  # unanswered when there is no pathway
    "status": (FactType.ENUM, FactType.STRING),  # DECIDED or NEEDS_INFORMATION
}


@dataclass(frozen=True)
class Requirement:
    """Another policy's decision this policy needs: evaluated first, and some of its result fed in as facts.

    Attributes:
        policy: The required policy's name.
        version: :data:`CURRENT`, or a pinned ``MAJOR.MINOR.PATCH``.
        facts: ``(fact of this policy, what of the required decision)`` pairs, in file order; the
            second is one of :data:`REQUIREMENT_SOURCES`.
        line: Where the requirement is written in the file.

    """

    policy: str
    version: str
    facts: tuple[tuple[str, str], ...]
    line: int | None = None

    @property
    def pinned(self) -> str:
        """The version to ask the registry for: "" (the current one) or the pinned version."""
        return "" if self.version == CURRENT else self.version

    @property
    def label(self) -> str:
        """``name@version`` as written (``nhs-just-culture-guide@current``)."""
        return f"{self.policy}@{self.version}"


@dataclass(frozen=True)
class Policy:
    """One version of one policy file, validated."""

    name: str
    version: str
    title: str
    status: str
    effective_from: str
    source: str
    description: str
    facts: dict[str, FactSpec]
    rules: tuple[Rule, ...]
    pathways: dict[str, Pathway]
    advice: tuple[AdviceRule, ...]
    checks: tuple[CheckRule, ...]
    digest: str
    path: str = ""
    requires: tuple[Requirement, ...] = ()
    rules_by_id: dict[str, Rule] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules_by_id", {rule.id: rule for rule in self.rules})

    @property
    def key(self) -> str:
        """``name@version``: how logs and errors name this version."""
        return f"{self.name}@{self.version}"

    @cached_property
    def chained(self) -> dict[str, tuple[Requirement, str]]:
        """Each fact taken from a required decision: fact name -> (its requirement, what of the decision)."""
        return {fact: (req, source) for req in self.requires for fact, source in req.facts}

    @property
    def start(self) -> Rule:
        """The walk starts at the first rule in the file."""
        return self.rules[0]


def outcome_values(policy: Policy, target: Target | None) -> dict[str, Value]:
    """What advice rules read about a walk's outcome (:data:`DECISION_FIELDS`), for ``target``.

    ``None`` is a walk that stopped at an unanswered question (no pathway). The compiler binds
    these values into each compiled path and the explainer reports them: one definition for both.
    """
    if target is None:
        return {"individual_directed": False, "status": "NEEDS_INFORMATION"}
    pathway = policy.pathways[target.pathway]
    return {"pathway": pathway.code, "individual_directed": pathway.individual_directed, "status": "DECIDED"}
