"""What a server evaluates against: an immutable set of compiled policy versions.

A :class:`ServingState` is built whole (by :class:`~fairpath.serving.evaluator.Evaluator`
or by a reload, :mod:`fairpath.serving.staging`) and never changed afterwards; a reload
makes a new one and the evaluator swaps the reference. Each evaluation *leases*
the state it started on, so when a state is superseded it stays usable until its
last evaluation has finished, and only then gives its compiled versions back to
the engine, which unloads those no other state still holds. This is how memory
stays bounded although durable_rules can only ever add rulesets.
"""

from __future__ import annotations

import dataclasses
import datetime
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import structlog

from fairpath.decisions import Decision, MissingFact, RequiredDecision, Status, Subject
from fairpath.echo import prefix
from fairpath.engine.compiler import CompiledPolicy, compile_policy
from fairpath.engine.explain import Explainer
from fairpath.engine.protocol import Engine
from fairpath.errors import EngineError, FieldViolation, InvalidFactsError
from fairpath.policy.conditions import Value
from fairpath.policy.facts import MAX_FACT_NAME, MAX_SUGGESTIONS, FactReader
from fairpath.policy.model import Policy, Requirement
from fairpath.policy.registry import PolicyRegistry
from fairpath.policy.requirements import MAX_DEPTH
from fairpath.serving.masking import Masker
from fairpath.suggest import did_you_mean
from fairpath.wire import DecisionWire

_log = structlog.get_logger(__name__)

#: Between a request id and a required policy's name in the request id its required decision records.
REQUIRED_ID_SEPARATOR = ">"


def required_request_id(request_id: str, policy: str) -> str:
    """The request id recorded with the decision of ``policy`` a chained evaluation required ("" without one).

    Ids are unique per caller in the trail, so the required decision gets its own, derived from the
    request's: ``<request id>><policy>`` (``case-77>nhs-just-culture-guide``).
    """
    return f"{request_id}{REQUIRED_ID_SEPARATOR}{policy}" if request_id else ""


@dataclass(frozen=True)
class ServedVersion:
    """One policy version ready to evaluate, with everything that depends only on the version.

    Built once, when the version is compiled (:meth:`prepare`), and dropped with it: serving
    caches nothing of a version anywhere else, so nothing of it outlives a reload here.

    Attributes:
        policy: The version's policy.
        compiled: Its durable_rules ruleset and walks.
        reader: Checks and normalises a request's facts against its declarations.
        explainer: Describes the engine's outcome as a decision with its trace (and memoises it).
        masker: What of a request and its trace is sensitive, for the record.
        wire: Encodes its decisions as ``fairpath.v1.Decision`` bytes, each trace entry once.

    """

    policy: Policy
    compiled: CompiledPolicy
    reader: FactReader
    explainer: Explainer
    masker: Masker
    wire: DecisionWire

    @classmethod
    def prepare(cls, policy: Policy, engine: Engine) -> ServedVersion:
        """Compile ``policy`` and register it with ``engine`` (one registration, owned by the caller).

        Raises:
            PolicyFileError: The policy is too large for the engine.
            EngineError: durable_rules refused the ruleset.

        """
        compiled = compile_policy(policy)
        engine.register(compiled)
        return cls(policy, compiled, FactReader(policy), Explainer(compiled), Masker.for_policy(policy), DecisionWire())

    def decide(
        self, engine: Engine, facts: Mapping[str, object], *, subject: Subject, request_id: str
    ) -> Decision:
        """Validate ``facts``, let the engine decide and explain the outcome.

        Raises:
            InvalidFactsError: undeclared facts, wrong types or values.
            EngineBusyError: no engine session free in time.
            EngineError: durable_rules misbehaved.

        """
        clean = self.reader.read(facts)
        outcome = engine.evaluate(self.compiled, clean)
        return self.explainer.decision(clean, outcome, subject=subject, request_id=request_id)


class ServingState:
    """An immutable registry of served versions, leased by evaluations.

    The state owns one engine registration of each of its versions: whoever
    builds it must have registered each version once on its behalf
    (:meth:`ServedVersion.prepare` does; a version carried over from an older
    state is registered again). The state gives them back once it is superseded
    and no evaluation holds it any more.
    """

    def __init__(
        self, registry: PolicyRegistry, versions: Iterable[ServedVersion], engine: Engine
    ) -> None:
        self.registry = registry
        self._versions = {(v.policy.name, v.policy.version): v for v in versions}
        self._engine = engine
        self._lock = threading.Lock()
        self._leases = 0
        self._superseded = False
        self._closed = False
        # Until when (epoch seconds: the next local midnight), each name's current version.
        self._current: tuple[float, dict[str, ServedVersion]] = (0.0, {})

    @classmethod
    def empty(cls, engine: Engine) -> ServingState:
        """Return a state serving nothing (before the first load)."""
        return cls(PolicyRegistry(()), (), engine)

    def version(self, name: str, version: str = "") -> ServedVersion:
        """Return the pinned version, or the current one when ``version`` is empty.

        Raises:
            PolicyNotFoundError: unknown policy or version, or no current version.

        """
        if not version:
            until, current = self._current
            served = current.get(name)
            if served is not None and time.time() < until:
                return served
            until = _next_midnight()  # taken first: a midnight passing now only ends the memo early
        policy = self.registry.get(name, version)
        served = self._versions[(policy.name, policy.version)]
        if not version:
            # Which version is current changes only with the (local) date: remember it for the
            # day instead of asking the registry, which reads the date, on every request.
            self._current = (until, {**(current if until == self._current[0] else {}), name: served})
        return served

    def decide(
        self,
        engine: Engine,
        served: ServedVersion,
        facts: Mapping[str, object],
        *,
        subject: Subject,
        request_id: str,
    ) -> Decision:
        """Decide ``facts`` with ``served``, first deciding what it requires (chained policies).

        A version with no ``requires`` is :meth:`ServedVersion.decide`. Otherwise each required
        version (pinned, or the current one of this state) is decided first, recursively, on the
        facts of the request it declares, and what the file names of its result (pathway, status, …)
        becomes this version's chained facts; then durable_rules decides this version on its own
        facts plus those. The decision carries each required decision in ``requires``, and each
        of those names it in ``required_by``. A required decision's request id is
        ``<request id>><policy>`` (empty when the request's is).

        Raises:
            InvalidFactsError: Every bad fact of the request, for any policy of the chain: a fact no
                policy of it declares, a wrong value, or a chained fact sent by the caller.
            PolicyNotFoundError: A required policy has no current version (pin one in the file).
            EngineBusyError, EngineError: As :meth:`ServedVersion.decide`.

        """
        return self._decide(engine, served, facts, subject=subject, request_id=request_id, depth=1)

    def _decide(
        self, engine: Engine, served: ServedVersion, facts: Mapping[str, object], *, subject: Subject,
        request_id: str, depth: int,
    ) -> Decision:
        policy = served.policy
        if not policy.requires:
            return served.decide(engine, facts, subject=subject, request_id=request_id)
        if depth > MAX_DEPTH:  # refused at load (fairpath.policy.requirements); never reached
            raise EngineError(f"{policy.key}: chain of requirements deeper than {MAX_DEPTH}")
        required = [(req, self.version(req.policy, req.pinned)) for req in policy.requires]
        own, given, violations = self._route(policy, [version for _, version in required], facts)
        made: list[Decision] = []
        for (requirement, version), chosen in zip(required, given, strict=True):
            derived = required_request_id(request_id, requirement.policy)
            try:
                made.append(self._decide(engine, version, chosen, subject=subject, request_id=derived,
                                         depth=depth + 1))
            except InvalidFactsError as error:
                violations += error.violations
        try:
            served.reader.read(own)  # only to report this policy's bad facts with the others'
        except InvalidFactsError as error:
            violations += error.violations
        if violations:
            raise InvalidFactsError(list(dict.fromkeys(violations)))
        taken: dict[str, object] = {}
        for (requirement, _), decision in zip(required, made, strict=True):
            taken.update(taken_facts(requirement, decision))
        decision = served.decide(engine, {**own, **taken}, subject=subject, request_id=request_id)
        links = tuple(
            RequiredDecision(
                requirement.policy, requirement.version, requirement.facts, made_one.decision_id,
                dataclasses.replace(made_one, required_by=decision.decision_id),
            )
            for (requirement, _), made_one in zip(required, made, strict=True)
        )
        by_requirement = dict(zip(policy.requires, made, strict=True))
        return dataclasses.replace(decision, requires=links, missing_facts=_missing(policy, decision, by_requirement))

    def _route(
        self, policy: Policy, required: list[ServedVersion], facts: Mapping[str, object]
    ) -> tuple[dict[str, object], list[dict[str, object]], list[FieldViolation]]:
        """Split a request's facts: ``policy``'s own, each required version's, and what is refused.

        A fact goes to every policy of the chain that declares it. A chained fact sent by the
        caller is refused, and so is a fact no policy of the chain declares.
        """
        trees = [self.caller_facts(version) for version in required]
        violations: list[FieldViolation] = []
        own: dict[str, object] = {}
        given: list[dict[str, object]] = [{} for _ in required]
        unknown: list[str] = []
        for name, value in facts.items():
            if name in policy.chained:
                requirement, source = policy.chained[name]
                violations.append(FieldViolation(
                    f"facts.{prefix(name, MAX_FACT_NAME)}",
                    f"taken from the decision of {requirement.label} (its {source}): do not send it",
                ))
                continue
            placed = name in policy.facts
            if placed:
                own[name] = value
            for tree, chosen in zip(trees, given, strict=True):
                if name in tree:
                    chosen[name] = value
                    placed = True
            if not placed:
                unknown.append(name)
        return own, given, violations + self._unknown(policy, required, trees, unknown)

    def caller_facts(self, served: ServedVersion, depth: int = 1) -> set[str]:
        """Every fact a request to ``served`` may carry: its own and, transitively, its requirements'."""
        policy = served.policy
        if depth > MAX_DEPTH:  # a cycle in a registry built without the load checks; never served
            raise EngineError(f"{policy.key}: chain of requirements deeper than {MAX_DEPTH}")
        names = {name for name in policy.facts if name not in policy.chained}
        for requirement in policy.requires:
            names |= self.caller_facts(self.version(requirement.policy, requirement.pinned), depth + 1)
        return names

    @staticmethod
    def _unknown(
        policy: Policy, required: list[ServedVersion], trees: list[set[str]], unknown: list[str]
    ) -> list[FieldViolation]:
        everything = {name for tree in trees for name in tree} | set(policy.facts) - set(policy.chained)
        where = f"{policy.key} or of what it requires ({', '.join(v.policy.key for v in required)})"
        return [
            FieldViolation(
                f"facts.{prefix(name, MAX_FACT_NAME)}",
                f"not a fact of {where}" + (f"; {hint}" if index < MAX_SUGGESTIONS and (
                    hint := did_you_mean(name, everything)) else ""),
            )
            for index, name in enumerate(unknown)
        ]

    def versions(self) -> list[ServedVersion]:
        """Every served version, by name then semver."""
        return [self._versions[(p.name, p.version)] for p in self.registry.all()]

    def enter(self) -> bool:
        """Lease the state for one evaluation; ``False`` if it has already been closed."""
        with self._lock:
            if self._closed:
                return False
            self._leases += 1
            return True

    def leave(self) -> None:
        """End one lease; the last lease on a superseded state closes it."""
        with self._lock:
            self._leases -= 1
            close = self._superseded and self._leases == 0 and not self._closed
            self._closed |= close
        if close:
            self._release()

    def supersede(self) -> None:
        """Mark the state replaced: it closes now, or when its last lease ends."""
        with self._lock:
            self._superseded = True
            close = self._leases == 0 and not self._closed
            self._closed |= close
        if close:
            self._release()

    @property
    def closed(self) -> bool:
        """Whether the state has given its versions back to the engine."""
        return self._closed

    def _release(self) -> None:
        # Runs inside leave(), after that evaluation's decision is made: a failure must neither
        # fail the request nor keep the other versions loaded, so each is released on its own.
        for version in self._versions.values():
            try:
                self._engine.release(version.compiled)
            except Exception as error:
                key, error_type = version.policy.key, type(error).__name__
                _log.error("release_failed", version=key, error_type=error_type, exc_info=error)


def _next_midnight() -> float:
    """When (epoch seconds) the local date next changes: the registry's current versions follow it."""
    tomorrow = datetime.datetime.fromtimestamp(time.time()).date() + datetime.timedelta(days=1)
    return datetime.datetime.combine(tomorrow, datetime.time()).timestamp()


def taken_facts(requirement: Requirement, decision: Decision) -> dict[str, Value]:
    """The chained facts ``requirement`` takes from ``decision``; one with nothing to take stays unanswered.

    The decision's pathway, category and whether it is individual-directed exist only when it
    reached a pathway; its status always. These become facts like any other: durable_rules, not
    this function, decides what follows from them.
    """
    values: dict[str, Value] = {}
    pathway = decision.pathway
    for fact, source in requirement.facts:
        if source == "status":
            values[fact] = decision.status.value
        elif pathway is not None and source == "pathway":
            values[fact] = pathway.code
        elif pathway is not None and source == "category" and pathway.category:
            values[fact] = pathway.category
        elif pathway is not None and source == "individual_directed":
            values[fact] = pathway.individual_directed
    return values


def given_facts(policy: Policy, facts: Mapping[str, object], decision: Decision) -> dict[str, object]:
    """The facts ``policy``'s walk was given in ``decision``: its own of the request's, and those it took.

    What the trail records as a decision's facts (a chained decision's record holds the values it
    took, the required decision's record the request's facts that policy declares).
    """
    given = {name: value for name, value in facts.items() if name in policy.facts and name not in policy.chained}
    for link in decision.requires:
        if link.decision is not None:
            requirement = next((r for r in policy.requires if r.policy == link.policy), None)
            if requirement is not None:
                given.update(taken_facts(requirement, link.decision))
    return given


def _missing(
    policy: Policy, decision: Decision, made: Mapping[Requirement, Decision]
) -> tuple[MissingFact, ...]:
    """The questions to ask: a chained fact left unanswered stands for the required decision's own."""
    if decision.status is not Status.NEEDS_INFORMATION:
        return decision.missing_facts
    missing: list[MissingFact] = []
    for item in decision.missing_facts:
        chained = policy.chained.get(item.fact)
        upstream = made[chained[0]].missing_facts if chained is not None else ()
        missing.extend(upstream or (item,))
    return tuple(dict.fromkeys(missing))
