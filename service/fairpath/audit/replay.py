"""Replay: what a candidate policy version would have recommended for decisions already recorded.

The use case behind ``ReplayDecisions``. :meth:`Replayer.replay` walks the
recorded decisions a :class:`~fairpath.audit.records.DecisionFilter` selects
(as ``ListDecisions`` would), restores the true values of their masked facts
from the store's separate table (:meth:`DecisionStore.sensitive_facts`),
re-evaluates them with the real :class:`~fairpath.serving.evaluator.Evaluator`
(durable_rules, as ``Evaluate`` does) and compares each result with the
record. It goes through the evaluator, never the recorder, so it writes
nothing: replaying is a question, not a decision.

The report counts pathway transitions (unchanged ones included), rules whose
firing changed, and lists the decisions that change (pathway or advice), up
to a cap. Decisions the candidate cannot evaluate (facts it does not declare,
or a policy that has no such version) are skipped and counted by reason. The
fairness figures of :mod:`fairpath.audit.fairness` are computed for the
recorded and the replayed outcomes of the same decisions.

Restored values exist only in memory while one decision is evaluated; nothing
here logs facts, their values or equality groups. A skip reason names facts
(e.g. ``facts.x: not a fact of p@2``), never their values.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice

from fairpath.audit import monitoring
from fairpath.audit.fairness import StatsSlice, StatsTally
from fairpath.audit.records import DecisionFilter, StoredDecision
from fairpath.audit.store import DecisionStore
from fairpath.decisions import Decision
from fairpath.errors import (
    DeadlineExpiredError,
    DecisionNotFoundError,
    FieldViolation,
    InvalidFactsError,
    InvalidRequestError,
    PolicyNotFoundError,
)
from fairpath.serving.evaluator import Evaluator

#: How a transition names "no pathway" (the walk stopped for a missing answer).
NO_PATHWAY = "NEEDS_INFORMATION"
#: Changed decisions listed when the request does not say, and the most ever listed.
DEFAULT_MAX_CHANGED = 100
MAX_CHANGED_LIMIT = 1000
#: Decision ids kept per skip reason, as examples.
SKIP_EXAMPLES = 5
#: Decisions read (with their side tables) at a time.
CHUNK = 500
_NOT_KEPT = "the true values of masked facts were not kept, so the decision cannot be re-evaluated"


@dataclass(frozen=True)
class ReplayRequest:
    """What to replay, against what.

    Attributes:
        query: Which recorded decisions.
        version: The candidate version (required).
        policy: The candidate policy; "" for each decision's own policy.
        max_changed: Most changed decisions to list; 0 for :data:`DEFAULT_MAX_CHANGED`.
        period: Periods of the fairness figures ("" or ``all``, ``year``, ``quarter``, ``month``).
        reference_group: Reference equality group of the relative likelihoods; "" for the largest.

    """

    query: DecisionFilter
    version: str
    policy: str = ""
    max_changed: int = 0
    period: str = "all"
    reference_group: str = ""


@dataclass(frozen=True)
class Transition:
    """How many replayed decisions went from one pathway to another (or stayed on it)."""

    from_pathway: str
    to_pathway: str
    count: int


@dataclass(frozen=True)
class RuleChange:
    """A rule whose firing changed in at least one replayed decision.

    Attributes:
        fired_before: Replayed decisions in which it fired as recorded.
        fired_after: Replayed decisions in which it fires as replayed.
        started_firing: Decisions in which it fires now but did not.
        stopped_firing: Decisions in which it fired but does not now.

    """

    rule_id: str
    fired_before: int
    fired_after: int
    started_firing: int
    stopped_firing: int


@dataclass(frozen=True)
class ChangedDecision:
    """A decision whose pathway or advice the candidate changes."""

    decision_id: str
    from_version: str
    from_pathway: str
    to_pathway: str
    advice_added: tuple[str, ...]
    advice_removed: tuple[str, ...]
    missing_facts: tuple[str, ...]  # what the candidate still needs, when it stops for it


@dataclass(frozen=True)
class SkipReason:
    """Why some decisions could not be replayed, how many, and the first few."""

    reason: str
    count: int
    decision_ids: tuple[str, ...]


@dataclass(frozen=True)
class ReplayReport:
    """The impact of a candidate version on recorded decisions."""

    replayed: int
    changed: int
    skipped: int
    transitions: tuple[Transition, ...]
    rule_changes: tuple[RuleChange, ...]
    changed_decisions: tuple[ChangedDecision, ...]
    skip_reasons: tuple[SkipReason, ...]
    candidate_stats: tuple[StatsSlice, ...]
    recorded_stats: tuple[StatsSlice, ...]


class Replayer:
    """Replays recorded decisions against candidate versions; safe to share between threads.

    Args:
        evaluator: Evaluates the candidate (the server's own: the versions it serves now).
        store: Where the decisions are read from; never written to.

    """

    def __init__(self, evaluator: Evaluator, store: DecisionStore) -> None:
        self._evaluator = evaluator
        self._store = store

    def replay(
        self, request: ReplayRequest, *, cancelled: Callable[[], bool] = lambda: False
    ) -> ReplayReport:
        """Re-evaluate the selected decisions against the candidate and report what changes.

        Args:
            request: What to replay against what.
            cancelled: Polled between decisions; True stops the replay (the caller went away).

        Raises:
            InvalidRequestError: No version, an unknown period, or a negative ``max_changed``.
            PolicyNotFoundError: The candidate policy is named and that version of it is not loaded.
            DeadlineExpiredError: ``cancelled`` said so before the replay finished.
            EngineBusyError, EngineError: as the evaluator.
            StoreUnavailableError: The store cannot be read now.

        """
        period = _check(request)
        query = request.query
        if request.policy:
            self._evaluator.registry.get(request.policy, request.version)  # NOT_FOUND before any work
            if not query.policy:  # another policy's facts would only be skipped as undeclared
                query = dataclasses.replace(query, policy=request.policy)
        tally = _Tally(min(request.max_changed or DEFAULT_MAX_CHANGED, MAX_CHANGED_LIMIT), period)
        for chunk in _chunks(self._store.iter_decisions(query), CHUNK):
            ids = [stored.decision.decision_id for stored in chunk]
            sensitive = self._store.sensitive_facts(ids)
            groups = self._store.equality_groups(ids)
            for stored in chunk:
                if cancelled():
                    raise DeadlineExpiredError("the replay was cancelled before it finished")
                decision_id = stored.decision.decision_id
                self._replay_one(
                    request, stored, sensitive.get(decision_id, {}), groups.get(decision_id, ""), tally
                )
        return tally.report(request.reference_group)

    def _replay_one(
        self,
        request: ReplayRequest,
        stored: StoredDecision,
        sensitive: Mapping[str, object],
        equality_group: str,
        tally: _Tally,
    ) -> None:
        recorded = stored.decision
        facts = restore(stored, sensitive)
        if facts is None:
            tally.skip(_NOT_KEPT, recorded.decision_id)
            return
        name, version = request.policy or recorded.policy.name, request.version
        if recorded.requires and self._chained(name, version):
            # A chained decision against a chained candidate: send the request's facts again (its own
            # and those its required decisions' records hold); the candidate takes the chained ones.
            facts = self._request_facts(stored, facts)
            if facts is None:
                tally.skip(_NOT_KEPT, recorded.decision_id)
                return
        try:
            candidate = self._evaluator.evaluate(name, facts, version=version, subject=recorded.subject)
        except InvalidFactsError as error:
            tally.skip(_invalid_reason(error), recorded.decision_id)
            return
        except PolicyNotFoundError as error:
            tally.skip(str(error), recorded.decision_id)
            return
        tally.add(stored, candidate, equality_group)


    def _chained(self, name: str, version: str) -> bool:
        """Whether the candidate requires other policies' decisions (False if it is not loaded: skipped later)."""
        try:
            return bool(self._evaluator.registry.get(name, version).requires)
        except PolicyNotFoundError:
            return False

    def _request_facts(self, stored: StoredDecision, facts: dict[str, object]) -> dict[str, object] | None:
        """The facts of a chained decision's request: its own, plus its required records'.

        Masked values are restored; None when a required record, or a masked value of one, is no longer kept.
        """
        request: dict[str, object] = {}
        for link in stored.decision.requires:
            try:
                required = self._store.get_decision(link.decision_id)
            except DecisionNotFoundError:
                return None
            restored = restore(required, self._store.sensitive_facts([link.decision_id]).get(link.decision_id, {}))
            restored = None if restored is None else self._request_facts(required, restored)
            if restored is None:
                return None
            request.update(restored)
        chained = {fact for link in stored.decision.requires for fact, _ in link.facts}
        request.update({name: value for name, value in facts.items() if name not in chained})
        return request


def restore(stored: StoredDecision, sensitive: Mapping[str, object]) -> dict[str, object] | None:
    """Return the recorded facts with the true values of the masked ones; None if any was not kept."""
    facts = dict(stored.facts)
    for name in stored.masked_facts:
        if name not in sensitive:
            return None
        facts[name] = sensitive[name]
    return facts


def pathway_of(decision: Decision) -> str:
    """Return the decision's pathway code, or :data:`NO_PATHWAY` when the walk stopped for an answer."""
    return decision.pathway.code if decision.pathway else NO_PATHWAY


@dataclass
class _Tally:
    """What the replay has seen so far: counts, the first changed decisions, never every decision."""

    max_changed: int
    period: str
    replayed: int = 0
    changed: int = 0
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    fired_before: Counter[str] = field(default_factory=Counter)
    fired_after: Counter[str] = field(default_factory=Counter)
    started: Counter[str] = field(default_factory=Counter)
    stopped: Counter[str] = field(default_factory=Counter)
    changed_decisions: list[ChangedDecision] = field(default_factory=list)
    skips: dict[str, list[str]] = field(default_factory=dict)
    skip_counts: Counter[str] = field(default_factory=Counter)
    recorded_stats: StatsTally = field(init=False)
    candidate_stats: StatsTally = field(init=False)

    def __post_init__(self) -> None:
        # The fairness figures are counted as decisions go by, so memory does not grow with the trail.
        self.recorded_stats, self.candidate_stats = StatsTally(self.period), StatsTally(self.period)

    def skip(self, reason: str, decision_id: str) -> None:
        self.skip_counts[reason] += 1
        examples = self.skips.setdefault(reason, [])
        if len(examples) < SKIP_EXAMPLES:
            examples.append(decision_id)

    def add(self, stored: StoredDecision, candidate: Decision, equality_group: str) -> None:
        recorded = stored.decision
        self.replayed += 1
        before, after = pathway_of(recorded), pathway_of(candidate)
        self.transitions[(before, after)] += 1
        fired_before, fired_after = set(recorded.fired), set(candidate.fired)
        self.fired_before.update(fired_before)
        self.fired_after.update(fired_after)
        self.started.update(fired_after - fired_before)
        self.stopped.update(fired_before - fired_after)
        advice_before = {item.code for item in recorded.advice}
        advice_after = {item.code for item in candidate.advice}
        if before != after or advice_before != advice_after:
            self.changed += 1
            if len(self.changed_decisions) < self.max_changed:
                self.changed_decisions.append(
                    ChangedDecision(
                        decision_id=recorded.decision_id,
                        from_version=recorded.policy.version,
                        from_pathway=before,
                        to_pathway=after,
                        advice_added=tuple(sorted(advice_after - advice_before)),
                        advice_removed=tuple(sorted(advice_before - advice_after)),
                        missing_facts=tuple(missing.fact for missing in candidate.missing_facts),
                    )
                )
        # Both rows from the recorded (masked) facts: the professional group is what a reviewer sees.
        when = recorded.evaluated_at
        for stats, decision in ((self.recorded_stats, recorded), (self.candidate_stats, candidate)):
            stats.add(monitoring.decision_row(decision, stored.facts, equality_group, evaluated_at=when))

    def report(self, reference_group: str) -> ReplayReport:
        changed_rules = sorted(set(self.started) | set(self.stopped))
        return ReplayReport(
            replayed=self.replayed,
            changed=self.changed,
            skipped=sum(self.skip_counts.values()),
            transitions=tuple(Transition(a, b, n) for (a, b), n in sorted(self.transitions.items())),
            rule_changes=tuple(
                RuleChange(rule, self.fired_before[rule], self.fired_after[rule], self.started[rule],
                           self.stopped[rule])
                for rule in changed_rules
            ),
            changed_decisions=tuple(self.changed_decisions),
            skip_reasons=tuple(
                SkipReason(reason, count, tuple(self.skips[reason]))
                for reason, count in sorted(self.skip_counts.items(), key=lambda item: (-item[1], item[0]))
            ),
            candidate_stats=tuple(self.candidate_stats.figures(reference_group)),
            recorded_stats=tuple(self.recorded_stats.figures(reference_group)),
        )


def _check(request: ReplayRequest) -> str:
    violations = []
    if not request.version:
        violations.append(FieldViolation("version", "is required: the candidate version to replay against"))
    if request.max_changed < 0:
        violations.append(FieldViolation("max_changed", "must not be negative"))
    if violations:
        raise InvalidRequestError(violations)
    return monitoring.period(request.period)


def _invalid_reason(error: InvalidFactsError) -> str:
    # Field names and the rule broken, never the values: the same reason groups many decisions.
    return "; ".join(sorted(f"{v.field}: {v.description}" for v in error.violations))


def _chunks(items: Iterable[StoredDecision], size: int) -> Iterator[Sequence[StoredDecision]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
