"""Evaluate and record: the use case behind ``EvaluationService.Evaluate``.

:meth:`DecisionRecorder.evaluate` evaluates, masks the sensitive facts, and
appends the decision to the store *before* returning it: when the record
cannot be written the caller gets :class:`~fairpath.errors.StoreUnavailableError`
(UNAVAILABLE on the wire) and no decision. A ``dry_run`` evaluates and records
nothing. A request id already recorded returns the first decision recorded
under it, as recorded (sensitive values masked), and appends nothing.

Nothing here logs facts or the equality group: they are clinical, HR and
equality-monitoring data.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping

from fairpath.audit.batching import GroupCommit
from fairpath.audit.masking import Masker
from fairpath.audit.records import NewDecision, StoredDecision
from fairpath.audit.store import DecisionStore
from fairpath.decisions import Decision, Subject
from fairpath.errors import PolicyNotFoundError
from fairpath.evaluation import Evaluator

#: Default of :class:`DecisionRecorder`'s ``linger``: well under a gRPC round trip.
LINGER = 0.002


class DecisionRecorder:
    """Evaluates through an :class:`~fairpath.evaluation.Evaluator` and records through a store.

    Safe to share between threads; concurrent appends are grouped into shared
    transactions (:mod:`fairpath.audit.batching`). The store stays the caller's
    to close.

    Args:
        evaluator: Makes the decisions.
        store: Records them.
        max_batch: Most decisions written in one transaction.
        linger: Longest a write waits, in seconds, for decisions being evaluated at the same moment
            to join its transaction (only when there are some: a lone request never waits).

    """

    def __init__(
        self, evaluator: Evaluator, store: DecisionStore, *, max_batch: int = 256, linger: float = LINGER
    ) -> None:
        self._evaluator = evaluator
        self._store = store
        self._commit: GroupCommit[NewDecision, StoredDecision] = GroupCommit(
            store.append_decisions, max_batch=max_batch, linger=linger
        )
        self._maskers: dict[str, Masker] = {}

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
        """Evaluate one staff member's action and, unless ``dry_run``, record the decision first.

        Args:
            policy: Policy name.
            facts: The request's facts, as sent.
            version: Pinned version; "" for the current one.
            subject: Pseudonymous references of incident, staff member and action.
            request_id: Correlation id; a recorded one returns its first decision.
            caller: Who asked ("" without authentication).
            equality_group: Pseudonymous equality-monitoring group, stored apart, never evaluated.
            dry_run: Evaluate without recording.

        Returns:
            The decision (its trace unmasked: it goes back to the caller who sent the facts), or
            for a repeated request id the first decision as recorded.

        Raises:
            PolicyNotFoundError, InvalidFactsError, EngineBusyError, EngineError: as the evaluator.
            StoreUnavailableError: The decision could not be recorded, so it is not returned.
            StoreError: The store refused the record for another reason.

        """

        def decide() -> tuple[Decision, int]:
            started = time.perf_counter()
            made = self._evaluator.evaluate(
                policy, facts, version=version, subject=subject, request_id=request_id
            )
            micros = round((time.perf_counter() - started) * 1_000_000)
            return dataclasses.replace(made, caller=caller, dry_run=dry_run), micros

        if dry_run:
            return decide()[0]
        with self._commit.expecting():  # lets a transaction being formed wait for this decision
            decision, duration_us = decide()
            masked = self._masker(decision).mask(facts, decision)
            recorded = self._commit.submit(
                NewDecision(
                    decision=masked.decision,
                    facts=masked.facts,
                    masked_facts=masked.masked_facts,
                    duration_us=duration_us,
                    equality_group=equality_group,
                    sensitive_facts=masked.sensitive_facts,
                )
            )
        if recorded.decision.decision_id != decision.decision_id:
            return recorded.decision  # the request id was recorded before: the first decision stands
        return decision

    def _masker(self, decision: Decision) -> Masker:
        ref = decision.policy
        masker = self._maskers.get(ref.digest)
        if masker is not None:
            return masker
        try:
            policy = self._evaluator.registry.get(ref.name, ref.version)
        except PolicyNotFoundError:
            policy = None
        if policy is None or policy.digest != ref.digest:
            # Reloaded away between evaluating and recording: which facts were sensitive is no
            # longer known for certain, so mask every fact rather than risk storing one in clear.
            return Masker(frozenset(), mask_all=True)
        masker = self._maskers[ref.digest] = Masker.for_policy(policy)
        return masker
