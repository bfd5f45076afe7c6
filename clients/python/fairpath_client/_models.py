"""Plain, frozen values mirroring the ``fairpath.v1`` messages callers receive.

Callers of :class:`fairpath_client.FairpathClient` get these instead of protobuf
messages, so their code does not depend on generated classes and reads like
ordinary Python: enums become their names as strings (``"DECIDED"``,
``"FIRED"``), timestamps become aware :class:`~datetime.datetime` objects,
``google.protobuf.Value`` facts become ``str``, ``float`` or ``bool``, and
repeated fields become tuples.

Every model has a ``from_proto`` classmethod (the only place that reads the
wire types) and a ``to_dict()`` method giving JSON-ready values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from fairpath.v1 import decision_pb2
from google.protobuf import json_format, struct_pb2

#: A fact's value as the service reports it: answers and codes are strings,
#: numbers are doubles on the wire.
FactValue = str | float | bool | tuple[str, ...]  # a tuple is the value of a set fact

#: Whether the walk reached a pathway. ``"UNSPECIFIED"`` only appears if a
#: newer server sends a status this client does not know.
DecisionStatus = Literal["DECIDED", "NEEDS_INFORMATION", "UNSPECIFIED"]

#: What happened to one rule in one evaluation.
RuleResult = Literal["FIRED", "NOT_FIRED", "NOT_REACHED", "UNANSWERED", "UNSPECIFIED"]

#: Which part of the policy a rule belongs to.
RuleKind = Literal["QUESTION", "ADVICE", "CHECK", "UNSPECIFIED"]

#: How a policy declares a fact.
FactType = Literal["ANSWER", "ENUM", "BOOL", "NUMBER", "STRING", "SET", "UNSPECIFIED"]

# A fact name as it appears in a rule's condition text.
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Explicit tables rather than ``Enum.Name()``: an enum value added by a newer
# server must degrade to "UNSPECIFIED", not raise inside the client.
_STATUSES: dict[int, DecisionStatus] = {
    decision_pb2.DECIDED: "DECIDED",
    decision_pb2.NEEDS_INFORMATION: "NEEDS_INFORMATION",
}
_RESULTS: dict[int, RuleResult] = {
    decision_pb2.FIRED: "FIRED",
    decision_pb2.NOT_FIRED: "NOT_FIRED",
    decision_pb2.NOT_REACHED: "NOT_REACHED",
    decision_pb2.UNANSWERED: "UNANSWERED",
}
_KINDS: dict[int, RuleKind] = {
    decision_pb2.QUESTION: "QUESTION",
    decision_pb2.ADVICE: "ADVICE",
    decision_pb2.CHECK: "CHECK",
}
_FACT_TYPES: dict[int, FactType] = {
    decision_pb2.ANSWER: "ANSWER",
    decision_pb2.ENUM: "ENUM",
    decision_pb2.BOOL: "BOOL",
    decision_pb2.NUMBER: "NUMBER",
    decision_pb2.STRING: "STRING",
    decision_pb2.SET: "SET",
}


def _fact_value(value: struct_pb2.Value) -> FactValue | None:
    """Convert one ``google.protobuf.Value`` to a Python fact value (``None`` for null)."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "number_value":
        return value.number_value
    if kind is None or kind == "null_value":
        return None
    if kind == "list_value" and all(item.WhichOneof("kind") == "string_value" for item in value.list_value.values):
        return tuple(item.string_value for item in value.list_value.values)  # a set fact's codes
    # Structs are not fact values the contract defines; keep them visible as
    # compact JSON rather than silently dropping them.
    return json_format.MessageToJson(value, indent=None)


def _jsonable(value: object) -> Any:
    """Turn model values into what :func:`json.dumps` accepts."""
    if isinstance(value, _Model):
        return value.to_dict()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    return value


class _Model:
    """Shared behaviour of the frozen dataclasses below."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """Return the model as JSON-ready values.

        Nested models become dicts, tuples become lists and datetimes become
        ISO 8601 strings; field names are kept as they are.

        Returns:
            A new dict that :func:`json.dumps` can serialise.

        """
        return {name: _jsonable(getattr(self, name)) for name in self.__dataclass_fields__}


@dataclass(frozen=True, kw_only=True)
class Subject(_Model):
    """Pseudonymous ids of what one evaluation is about; never names or staff numbers."""

    incident_ref: str = ""
    staff_ref: str = ""
    action_ref: str = ""
    #: Pseudonymous equality-monitoring group (e.g. "G1"), for fairness statistics only: the
    #: service stores it apart from the facts, never evaluates it and never sends it back.
    equality_group: str = ""

    @classmethod
    def from_proto(cls, message: decision_pb2.Subject) -> Subject:
        """Build from a ``fairpath.v1.Subject`` message."""
        return cls(
            incident_ref=message.incident_ref, staff_ref=message.staff_ref, action_ref=message.action_ref,
            equality_group=message.equality_group,
        )

    def to_proto(self) -> decision_pb2.Subject:
        """Return the ``fairpath.v1.Subject`` message for a request."""
        return decision_pb2.Subject(
            incident_ref=self.incident_ref, staff_ref=self.staff_ref, action_ref=self.action_ref,
            equality_group=self.equality_group,
        )


@dataclass(frozen=True, kw_only=True)
class PolicyRef(_Model):
    """The exact policy file that answered: name, version and sha256 of its bytes."""

    name: str
    version: str
    digest: str

    @classmethod
    def from_proto(cls, message: decision_pb2.PolicyRef) -> PolicyRef:
        """Build from a ``fairpath.v1.PolicyRef`` message."""
        return cls(name=message.name, version=message.version, digest=message.digest)


@dataclass(frozen=True, kw_only=True)
class Pathway(_Model):
    """The recommended response and the branch of the walk that led to it."""

    code: str
    title: str
    recommendation: str
    individual_directed: bool
    sub_reason: str = ""
    category: str = ""

    @classmethod
    def from_proto(cls, message: decision_pb2.Pathway) -> Pathway:
        """Build from a ``fairpath.v1.Pathway`` message."""
        return cls(
            code=message.code,
            title=message.title,
            recommendation=message.recommendation,
            individual_directed=message.individual_directed,
            sub_reason=message.sub_reason,
            category=message.category,
        )


@dataclass(frozen=True, kw_only=True)
class MissingFact(_Model):
    """A question the walk reached but could not answer, and the rule that asked it."""

    fact: str
    question: str
    rule_id: str

    @classmethod
    def from_proto(cls, message: decision_pb2.MissingFact) -> MissingFact:
        """Build from a ``fairpath.v1.MissingFact`` message."""
        return cls(fact=message.fact, question=message.question, rule_id=message.rule_id)


@dataclass(frozen=True, kw_only=True)
class Advice(_Model):
    """An advice overlay added to the recommendation by one advice rule."""

    code: str
    text: str
    rule_id: str

    @classmethod
    def from_proto(cls, message: decision_pb2.Advice) -> Advice:
        """Build from a ``fairpath.v1.Advice`` message."""
        return cls(code=message.code, text=message.text, rule_id=message.rule_id)


@dataclass(frozen=True, kw_only=True)
class TraceEntry(_Model):
    """One rule of the policy and what happened to it in this evaluation.

    Attributes:
        rule_id: The policy author's id for the rule, e.g. ``"2a"``.
        title: The rule's title.
        kind: ``"QUESTION"``, ``"ADVICE"`` or ``"CHECK"``.
        condition: The condition as written in the policy file.
        facts_seen: The value of each fact the condition reads; unanswered
            facts are absent.
        result: ``"FIRED"``, ``"NOT_FIRED"``, ``"NOT_REACHED"`` or ``"UNANSWERED"``.
        reason: Why, in words.
        question: The question wording (question rules only).
        leads_to: Where the rule led, e.g. ``"rule 2a"`` or ``"pathway JCG_A"``.

    """

    rule_id: str
    title: str
    kind: RuleKind
    condition: str
    facts_seen: dict[str, FactValue]
    result: RuleResult
    reason: str = ""
    question: str = ""
    leads_to: str = ""

    @classmethod
    def from_proto(cls, message: decision_pb2.TraceEntry) -> TraceEntry:
        """Build from a ``fairpath.v1.TraceEntry`` message; null facts are dropped as unanswered."""
        seen = {name: _fact_value(value) for name, value in sorted(message.facts_seen.items())}
        return cls(
            rule_id=message.rule_id,
            title=message.title,
            kind=_KINDS.get(message.kind, "UNSPECIFIED"),
            condition=message.condition,
            facts_seen={name: value for name, value in seen.items() if value is not None},
            result=_RESULTS.get(message.result, "UNSPECIFIED"),
            reason=message.reason,
            question=message.question,
            leads_to=message.leads_to,
        )


@dataclass(frozen=True, kw_only=True)
class DecisionWarning(_Model):
    """A combination of answers that looks contradictory; evaluation went on regardless."""

    code: str
    text: str
    facts: tuple[str, ...] = ()

    @classmethod
    def from_proto(cls, message: decision_pb2.Warning) -> DecisionWarning:
        """Build from a ``fairpath.v1.Warning`` message."""
        return cls(code=message.code, text=message.text, facts=tuple(message.facts))


@dataclass(frozen=True, kw_only=True)
class Decision(_Model):
    """The service's answer for one action of one staff member, with its full trace.

    Attributes:
        decision_id: Unique id the service gave this decision.
        policy: The policy version that answered.
        status: ``"DECIDED"`` or ``"NEEDS_INFORMATION"``.
        pathway: The recommended pathway; ``None`` while information is missing.
        missing_facts: Unanswered questions the walk stopped at.
        advice: Advice overlays added to the recommendation.
        trace: Every rule in evaluation order: reached walk rules, unreached
            walk rules, advice rules, then checks.
        warnings: Contradictory-looking answers.
        evaluated_at: When the service evaluated, in UTC (the Unix epoch if
            the service did not say).
        engine_name: The rules engine used.
        engine_version: Its version.
        subject: The pseudonymous ids sent with the request.
        request_id: The correlation id of the request.
        caller: Who asked, as the service identified them (``token:<name>`` or
            ``subject:<certificate CN>``); empty when the service runs without auth.
        dry_run: True when the request asked not to record the decision (nothing was recorded).
        required: For a chained policy, the decisions it took facts from (each evaluated first, on
            the same facts), in full in an evaluation's reply; read back from the trail, each
            names its own record (``decision`` is then None).
        required_by: For a decision made because another policy required it, that decision's id.

    """

    decision_id: str
    policy: PolicyRef
    status: DecisionStatus
    pathway: Pathway | None
    missing_facts: tuple[MissingFact, ...]
    advice: tuple[Advice, ...]
    trace: tuple[TraceEntry, ...]
    warnings: tuple[DecisionWarning, ...]
    evaluated_at: datetime
    engine_name: str
    engine_version: str
    subject: Subject
    request_id: str
    caller: str = ""
    dry_run: bool = False
    required: tuple[RequiredDecision, ...] = ()
    required_by: str = ""

    @classmethod
    def from_proto(cls, message: decision_pb2.Decision) -> Decision:
        """Build from a ``fairpath.v1.Decision`` message."""
        # proto3 cannot tell "no pathway" from an empty one; an empty code is
        # what the service sends when the walk stopped at a question.
        has_pathway = message.HasField("pathway") and bool(message.pathway.code)
        return cls(
            decision_id=message.decision_id,
            policy=PolicyRef.from_proto(message.policy),
            status=_STATUSES.get(message.status, "UNSPECIFIED"),
            pathway=Pathway.from_proto(message.pathway) if has_pathway else None,
            missing_facts=tuple(MissingFact.from_proto(item) for item in message.missing_facts),
            advice=tuple(Advice.from_proto(item) for item in message.advice),
            trace=tuple(TraceEntry.from_proto(item) for item in message.trace),
            warnings=tuple(DecisionWarning.from_proto(item) for item in message.warnings),
            evaluated_at=message.evaluated_at.ToDatetime(tzinfo=UTC),
            engine_name=message.engine.name,
            engine_version=message.engine.version,
            subject=Subject.from_proto(message.subject),
            request_id=message.request_id,
            caller=message.caller,
            dry_run=message.dry_run,
            required=tuple(RequiredDecision.from_proto(item) for item in message.required),
            required_by=message.required_by,
        )


@dataclass(frozen=True, kw_only=True)
class RequiredDecision(_Model):
    """A decision a chained policy took facts from.

    Attributes:
        policy: The required policy, as the requiring policy's file names it.
        version: The version it requires: ``"current"`` or a pinned one (the version that
            answered is ``decision.policy.version``).
        facts: Which facts were taken from it: fact name -> ``pathway``, ``status``,
            ``individual_directed`` or ``category``.
        decision_id: The required decision's id.
        decision: The required decision, walk included; None when read back from the trail
            (look it up with ``get_decision(decision_id)``).

    """

    policy: str
    version: str
    facts: dict[str, str]
    decision_id: str
    decision: Decision | None = None

    @classmethod
    def from_proto(cls, message: decision_pb2.RequiredDecision) -> RequiredDecision:
        """Build from a ``fairpath.v1.RequiredDecision`` message."""
        return cls(
            policy=message.policy, version=message.version, facts=dict(message.facts),
            decision_id=message.decision_id,
            decision=Decision.from_proto(message.decision) if message.HasField("decision") else None,
        )


@dataclass(frozen=True, kw_only=True)
class PolicySummary(_Model):
    """One loaded policy version, as listed by the service.

    Attributes:
        name: The policy's name, e.g. ``"nhs-just-culture-guide"``.
        version: Its semver.
        title: Human title.
        digest: sha256 of the policy file, hex encoded.
        status: ``"active"``, ``"draft"`` or ``"retired"``.
        current: True for the version served when a request names none.
        source: Where the policy text comes from.
        effective_from: Date the version takes effect, as written in the file.
        not_current_reason: Why a request naming no version does not get this one ("" when it
            does): ``"draft"``, ``"retired"``, ``"not yet effective (from DATE)"``,
            ``"superseded by VERSION"`` or ``"not locked"``.

    """

    name: str
    version: str
    title: str
    digest: str
    status: str
    current: bool
    source: str = ""
    effective_from: str = ""
    not_current_reason: str = ""

    @classmethod
    def from_proto(cls, message: decision_pb2.PolicySummary) -> PolicySummary:
        """Build from a ``fairpath.v1.PolicySummary`` message."""
        return cls(
            name=message.name,
            version=message.version,
            title=message.title,
            digest=message.digest,
            status=message.status,
            current=message.current,
            source=message.source,
            effective_from=message.effective_from,
            not_current_reason=message.not_current_reason,
        )


@dataclass(frozen=True, kw_only=True)
class FactSpec(_Model):
    """A fact the policy declares: its type, allowed values and the question asking it.

    Attributes:
        taken_from: For a chained policy's fact taken from a required decision, where from
            (``"nhs-just-culture-guide@current pathway"``): never send it. Empty for the caller's facts.

    """

    name: str
    type: FactType
    allowed_values: tuple[str, ...]
    question: str
    description: str
    sensitive: bool
    taken_from: str = ""

    @classmethod
    def from_proto(cls, message: decision_pb2.FactSpec) -> FactSpec:
        """Build from a ``fairpath.v1.FactSpec`` message."""
        return cls(
            name=message.name,
            type=_FACT_TYPES.get(message.type, "UNSPECIFIED"),
            allowed_values=tuple(message.allowed_values),
            question=message.question,
            description=message.description,
            sensitive=message.sensitive,
            taken_from=message.taken_from,
        )


@dataclass(frozen=True, kw_only=True)
class PathwaySpec(_Model):
    """A pathway the policy can recommend."""

    code: str
    title: str
    recommendation: str
    individual_directed: bool
    category: str

    @classmethod
    def from_proto(cls, message: decision_pb2.PathwaySpec) -> PathwaySpec:
        """Build from a ``fairpath.v1.PathwaySpec`` message."""
        return cls(
            code=message.code,
            title=message.title,
            recommendation=message.recommendation,
            individual_directed=message.individual_directed,
            category=message.category,
        )


@dataclass(frozen=True, kw_only=True)
class AdviceSpec(_Model):
    """An advice rule: the advice it adds and the condition that triggers it."""

    rule_id: str
    code: str
    text: str
    condition: str

    @classmethod
    def from_proto(cls, message: decision_pb2.AdviceSpec) -> AdviceSpec:
        """Build from a ``fairpath.v1.AdviceSpec`` message."""
        return cls(rule_id=message.rule_id, code=message.code, text=message.text, condition=message.condition)


@dataclass(frozen=True, kw_only=True)
class RuleSpec(_Model):
    """A rule of the walk (or a check) with where it goes when its condition holds or not."""

    rule_id: str
    title: str
    question: str
    condition: str
    then_target: str
    else_target: str
    kind: RuleKind

    @classmethod
    def from_proto(cls, message: decision_pb2.RuleSpec) -> RuleSpec:
        """Build from a ``fairpath.v1.RuleSpec`` message."""
        return cls(
            rule_id=message.rule_id,
            title=message.title,
            question=message.question,
            condition=message.condition,
            then_target=message.then_target,
            else_target=message.else_target,
            kind=_KINDS.get(message.kind, "UNSPECIFIED"),
        )


@dataclass(frozen=True, kw_only=True)
class RequirementSpec(_Model):
    """A decision a chained policy requires: the policy, the version (``"current"`` or pinned), the facts taken."""

    policy: str
    version: str
    facts: dict[str, str]

    @classmethod
    def from_proto(cls, message: decision_pb2.RequirementSpec) -> RequirementSpec:
        """Build from a ``fairpath.v1.RequirementSpec`` message."""
        return cls(policy=message.policy, version=message.version, facts=dict(message.facts))


@dataclass(frozen=True, kw_only=True)
class PolicyDetail(_Model):
    """Everything one policy version declares: facts, pathways, advice and rules.

    Attributes:
        requires: For a chained policy, the decisions it requires (each evaluated first, on the
            same request's facts): send their facts too.

    """

    summary: PolicySummary
    description: str
    facts: tuple[FactSpec, ...]
    pathways: tuple[PathwaySpec, ...]
    advice: tuple[AdviceSpec, ...]
    rules: tuple[RuleSpec, ...]
    requires: tuple[RequirementSpec, ...] = ()

    @classmethod
    def from_proto(cls, message: decision_pb2.PolicyDetail) -> PolicyDetail:
        """Build from a ``fairpath.v1.PolicyDetail`` message."""
        return cls(
            summary=PolicySummary.from_proto(message.summary),
            description=message.description,
            facts=tuple(FactSpec.from_proto(item) for item in message.facts),
            pathways=tuple(PathwaySpec.from_proto(item) for item in message.pathways),
            advice=tuple(AdviceSpec.from_proto(item) for item in message.advice),
            rules=tuple(RuleSpec.from_proto(item) for item in message.rules),
            requires=tuple(RequirementSpec.from_proto(item) for item in message.requires),
        )

    def facts_in_walk_order(self) -> list[FactSpec]:
        """The facts in the order the walk first asks them (its question rules in order), then the rest as declared.

        This is the order a person answers them in, so the CLI and the console list them this way.
        """
        by_name = {fact.name: fact for fact in self.facts}
        order: list[str] = []
        for rule in self.rules:
            if rule.kind == "QUESTION":
                order.extend(w for w in _WORD.findall(rule.condition) if w in by_name and w not in order)
        order.extend(name for name in by_name if name not in order)
        return [by_name[name] for name in order]
