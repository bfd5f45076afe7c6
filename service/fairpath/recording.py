"""Evaluate and record: the use case behind ``EvaluationService.Evaluate`` and ``EvaluateIncident``.

:meth:`DecisionRecorder.evaluate` evaluates, masks the sensitive facts, and
appends the decision to the store *before* returning it: when the record
cannot be written the caller gets :class:`~fairpath.errors.StoreUnavailableError`
(UNAVAILABLE on the wire) and no decision. A ``dry_run`` evaluates and records
nothing. A request id the same caller already recorded returns the first
decision recorded under it, as recorded (sensitive values masked), when the
request is the same, and is refused (:class:`~fairpath.errors.RequestIdReusedError`)
when it is not; either way nothing is appended (:mod:`fairpath.audit.requests`).

:meth:`DecisionRecorder.evaluate_incident` does the same for every action of
one incident (``EvaluateIncident``): every action is evaluated first, so a bad
one refuses the call before anything is recorded, then the incident's decisions
go to the store as one group, recorded all or none in one transaction even when
that transaction also carries other requests' decisions.

Nothing here logs facts or the equality group: they are clinical, HR and
equality-monitoring data.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence

from fairpath.audit import requests
from fairpath.audit.batching import GroupCommit
from fairpath.audit.records import NewDecision, StoredDecision
from fairpath.audit.store import DecisionStore
from fairpath.decisions import Decision, RequiredDecision, Subject, chain_of, nest, stamped
from fairpath.errors import FairpathError, FieldViolation, InvalidFactsError, RequestIdReusedError
from fairpath.serving import incidents
from fairpath.serving.evaluator import Evaluator
from fairpath.serving.incidents import IncidentAction, IncidentResult
from fairpath.serving.state import ServedVersion, given_facts

#: Default of :class:`DecisionRecorder`'s ``linger``: well under a gRPC round trip.
LINGER = 0.002


@dataclasses.dataclass(frozen=True)
class Recommendation:
    """A decision as :meth:`DecisionRecorder.recommend` returns it: the value and its reply bytes.

    Attributes:
        decision: The decision (for a repeated request id, the first decision as recorded).
        encoded: Its ``fairpath.v1.Decision`` message, encoded once by the deciding version's
            :class:`~fairpath.wire.DecisionWire` (what ``Evaluate`` sends).

    """

    decision: Decision
    encoded: bytes


class DecisionRecorder:
    """Evaluates through an :class:`~fairpath.serving.evaluator.Evaluator` and records through a store.

    Safe to share between threads; concurrent appends are grouped into shared
    transactions (:mod:`fairpath.audit.batching`). The store stays the caller's
    to close.

    Args:
        evaluator: Makes the decisions.
        store: Records them.
        max_batch: Most requests written in one transaction (an incident's decisions count as one).
        linger: Longest a write waits, in seconds, for decisions being evaluated at the same moment
            to join its transaction (only when there are some: a lone request never waits).

    """

    def __init__(
        self, evaluator: Evaluator, store: DecisionStore, *, max_batch: int = 256, linger: float = LINGER
    ) -> None:
        self._evaluator = evaluator
        self._store = store
        # Items are groups: one request's decisions (one, or an incident's), recorded all or none.
        self._commit: GroupCommit[Sequence[NewDecision], Sequence[StoredDecision] | FairpathError] = GroupCommit(
            store.append_groups, max_batch=max_batch, linger=linger
        )

    @property
    def store(self) -> DecisionStore:
        """Where decisions are recorded."""
        return self._store

    def evaluate(
        self,
        policy: str,
        facts: Mapping[str, object],
        *,
        version: str = "",
        subject: Subject | None = None,
        request_id: str = "",
        caller: str = "",
        equality_group: str = "",
        dry_run: bool = False,
    ) -> Decision:
        """Return :meth:`recommend`'s decision (same arguments, same errors)."""
        return self.recommend(
            policy, facts, version=version, subject=subject, request_id=request_id, caller=caller,
            equality_group=equality_group, dry_run=dry_run,
        ).decision

    def recommend(
        self,
        policy: str,
        facts: Mapping[str, object],
        *,
        version: str = "",
        subject: Subject | None = None,
        request_id: str = "",
        caller: str = "",
        equality_group: str = "",
        dry_run: bool = False,
    ) -> Recommendation:
        """Evaluate one staff member's action and, unless ``dry_run``, record the decision first.

        Args:
            policy: Policy name.
            facts: The request's facts, as sent.
            version: Pinned version; "" for the current one.
            subject: Pseudonymous references of incident, staff member and action.
            request_id: Correlation id, scoped to ``caller``; repeating a recorded request returns its
                first decision.
            caller: Who asked ("" without authentication).
            equality_group: Pseudonymous equality-monitoring group, stored apart, never evaluated.
            dry_run: Evaluate without recording.

        Returns:
            The decision (its trace unmasked: it goes back to the caller who sent the facts), or
            for a repeated request id the first decision as recorded; with its encoded message.

        Raises:
            PolicyNotFoundError, InvalidFactsError, EngineBusyError, EngineError: as the evaluator.
            StoreUnavailableError: The decision could not be recorded, so it is not returned.
            RequestIdReusedError: ``caller`` recorded ``request_id`` for a different request.
            RecordTooLargeError: The record could not be read back in one message, so it was not written.
            StoreError: The store refused the record for another reason.

        """

        def decide() -> tuple[Decision, tuple[ServedVersion, ...], int]:
            started = time.perf_counter()
            made = self._evaluator.decide(
                policy, facts, version=version, subject=subject, request_id=request_id
            )
            micros = round((time.perf_counter() - started) * 1_000_000)
            return stamped(made.decision, caller=caller, dry_run=dry_run), made.versions, micros

        if dry_run:
            decision, versions, _ = decide()
            return Recommendation(decision, versions[-1].wire.encode(decision))
        with self._commit.expecting():  # lets a transaction being formed wait for this decision
            decision, versions, duration_us = decide()
            # A chained policy's decision and the decisions it required: one group, all or none.
            items = self._chain_items(
                decision, versions, facts, duration_us=duration_us, equality_group=equality_group, version=version
            )
            recorded = self._commit.submit(items)
        if isinstance(recorded, FairpathError):
            raise recorded  # this item only: the rest of its batch was recorded
        if recorded[-1].decision.decision_id != decision.decision_id:
            # The request id was recorded before: the first decision stands (with those it required).
            decision = nest([stored.decision for stored in recorded])[0]
        # The deciding version's wire: it has met this walk's trace entries before.
        return Recommendation(decision, versions[-1].wire.encode(decision))

    def evaluate_incident(
        self,
        policy: str,
        shared_facts: Mapping[str, object],
        actions: Sequence[IncidentAction],
        *,
        incident_ref: str,
        version: str = "",
        request_id: str = "",
        caller: str = "",
        dry_run: bool = False,
    ) -> IncidentResult:
        """Evaluate every action of one incident and, unless ``dry_run``, record all its decisions or none.

        Each action is evaluated exactly as :meth:`evaluate` would evaluate it on ``shared_facts``
        overridden by its own facts, with its own decision id and request id
        (:func:`fairpath.serving.incidents.action_request_id`), against the version the first action got.

        Args:
            policy: Policy name.
            shared_facts: The facts every action shares, as sent.
            actions: The incident's actions (checked by :func:`fairpath.serving.incidents.check_request`).
            incident_ref: The incident's pseudonymous reference, every decision's subject's.
            version: Pinned version; "" for the current one.
            request_id: Correlation id, scoped to ``caller``; repeating a recorded incident request
                returns its first decisions.
            caller: Who asked ("" without authentication).
            dry_run: Evaluate without recording.

        Returns:
            One decision per action, in order, and the advice about the incident.

        Raises:
            InvalidFactsError: Some action's facts are invalid; every violation is named by the
                action's index (``actions[2].facts.intent_to_harm``) or, for a shared fact, ``facts.X``.
            RequestIdReusedError: ``caller`` recorded ``request_id`` for a different request.
            PolicyNotFoundError, EngineBusyError, EngineError, StoreError: as :meth:`evaluate`.

        """
        merged = [incidents.merged_facts(shared_facts, action.facts) for action in actions]
        with self._commit.expecting():  # lets a transaction being formed wait for this incident
            made: list[tuple[Decision, tuple[ServedVersion, ...], int]] = []
            violations: list[FieldViolation] = []
            for index, (action, facts) in enumerate(zip(actions, merged, strict=True)):
                # Every action on the version the first got: a reload between two actions cannot split them.
                pinned = made[0][0].policy.version if made else version
                started = time.perf_counter()
                try:
                    evaluated = self._evaluator.decide(
                        policy, facts, version=pinned, subject=action.subject(incident_ref),
                        request_id=incidents.action_request_id(request_id, index),
                    )
                except InvalidFactsError as error:
                    violations += incidents.action_violations(index, action.facts, error)
                    continue
                micros = round((time.perf_counter() - started) * 1_000_000)
                made.append((stamped(evaluated.decision, caller=caller, dry_run=dry_run), evaluated.versions, micros))
            if violations:
                # One bad action refuses the whole call, before anything is recorded.
                raise InvalidFactsError(list(dict.fromkeys(violations)))
            decisions = tuple(decision for decision, _, _ in made)
            if not dry_run:
                items = [
                    item
                    for (decision, versions, micros), facts, action in zip(made, merged, actions, strict=True)
                    for item in self._chain_items(
                        decision, versions, facts, duration_us=micros, equality_group=action.equality_group,
                        version=version, group=False,
                    )
                ]
                digest = requests.incident_digest(items)
                recorded = self._commit.submit([dataclasses.replace(item, incident_digest=digest) for item in items])
                if isinstance(recorded, RequestIdReusedError):
                    raise RequestIdReusedError(request_id) from None  # the caller's id, not an action's
                if isinstance(recorded, FairpathError):
                    raise recorded  # this incident only: nothing of it was recorded
                if recorded[0].decision.decision_id != items[0].decision.decision_id:
                    # The request id was recorded before: the first decisions stand.
                    decisions = tuple(nest([stored.decision for stored in recorded]))
        return IncidentResult(
            incident_ref, decisions, incidents.incident_advice(decisions, merged), request_id, dry_run
        )

    def _chain_items(
        self,
        decision: Decision,
        versions: Sequence[ServedVersion],
        facts: Mapping[str, object],
        *,
        duration_us: int,
        equality_group: str,
        version: str,
        group: bool = True,
    ) -> list[NewDecision]:
        """Return ``decision`` and every decision it required (chained policies), masked and ready to append.

        ``versions`` made the decisions of ``chain_of(decision)``, in order: each decision is masked
        by its own version's masker and records the facts its own walk was given
        (:func:`fairpath.serving.state.given_facts`). The required ones come first, under their derived
        request ids; with ``group`` (one evaluation's chain, not part of an incident) each also carries
        the digest of the whole chain, so a repeated request id is the same request only when every
        decision of it is.
        """
        chain = chain_of(decision)
        if len(chain) == 1:
            return [self._new_decision(decision, versions[0], facts=facts, duration_us=duration_us,
                                       equality_group=equality_group, version=version)]
        links = _required_links(chain)
        items = []
        for made, served in zip(chain, versions, strict=True):
            given = given_facts(served.policy, facts, made)
            link_version = next((link.version for link in links if link.decision_id == made.decision_id), None)
            requested = version if link_version is None else ("" if link_version == "current" else link_version)
            items.append(self._new_decision(made, served, facts=given, duration_us=duration_us,
                                            equality_group=equality_group, version=requested))
        if group:
            digest = requests.incident_digest(items)
            items = [dataclasses.replace(item, incident_digest=digest) for item in items]
        return items

    @staticmethod
    def _new_decision(
        decision: Decision,
        served: ServedVersion,
        *,
        facts: Mapping[str, object],
        duration_us: int,
        equality_group: str,
        version: str,
    ) -> NewDecision:
        """Return ``decision`` masked by its own version's masker, to be encoded by its wire, ready to append."""
        masked = served.masker.mask(facts, decision)
        return NewDecision(
            decision=masked.decision,
            facts=masked.facts,
            masked_facts=masked.masked_facts,
            duration_us=duration_us,
            equality_group=equality_group,
            sensitive_facts=masked.sensitive_facts,
            requested_version=version,
            wire=served.wire,
        )


def _required_links(chain: Sequence[Decision]) -> list[RequiredDecision]:
    """Every ``requires`` link among ``chain``'s decisions."""
    return [link for decision in chain for link in decision.requires]
