"""``fairpath.v1.DecisionService``: the decision trail for compliance review, as a thin translator.

Reads go straight to the :class:`~fairpath.audit.store.DecisionStore`;
``RecordOutcome`` appends; ``ReplayDecisions`` re-evaluates through
:class:`~fairpath.audit.replay.Replayer` (writing nothing) and ``OutcomeStats``
reads :mod:`fairpath.audit.monitoring`. ``CreateCheckpoint`` signs the chain head with
the server's checkpoint key and ``VerifyChain`` checks signed checkpoints
(:mod:`fairpath.audit.checkpoint`). Like the other servicers it raises domain errors
(:class:`~fairpath.errors.DecisionNotFoundError` → NOT_FOUND,
:class:`~fairpath.errors.InvalidRequestError` → INVALID_ARGUMENT,
:class:`~fairpath.errors.StoreUnavailableError` → UNAVAILABLE) and lets
:func:`fairpath.api.status.report` (called by the server's one interceptor) report them. It binds ids and
counts into the access log, never facts or equality groups.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import structlog

from fairpath.api import impact_convert, record_convert
from fairpath.api.auth import current_caller
from fairpath.audit import checkpoint, monitoring
from fairpath.audit.fairness import UnknownGroupError
from fairpath.audit.records import NewOutcome
from fairpath.audit.replay import Replayer
from fairpath.audit.store import DecisionStore
from fairpath.errors import FieldViolation, InvalidRequestError, UnimplementedError
from fairpath.serving.evaluator import Evaluator
from fairpath.v1 import decision_service_pb2, decision_service_pb2_grpc
from fairpath.wire import DecisionWire


class DecisionService(decision_service_pb2_grpc.DecisionServiceServicer):
    """Review recorded decisions, append what people did, and check the hash chain."""

    def __init__(
        self,
        store: DecisionStore,
        evaluator: Evaluator | None = None,
        signer: checkpoint.CheckpointSigner | None = None,
    ) -> None:
        """Serve ``store``.

        ``evaluator`` (the server's own) replays: without one, replay is UNIMPLEMENTED. ``signer``
        signs checkpoints: without one, CreateCheckpoint is UNIMPLEMENTED.
        """
        self._wire = DecisionWire()  # records read back share their trace entry objects
        self._store = store
        self._signer = signer
        self._replayer = Replayer(evaluator, store) if evaluator is not None else None

    def GetDecision(  # noqa: N802 - the name is the RPC's
        self, request: decision_service_pb2.GetDecisionRequest, context: grpc.ServicerContext
    ) -> decision_service_pb2.GetDecisionResponse:
        """Return one recorded decision with its outcomes; NOT_FOUND when unknown."""
        structlog.contextvars.bind_contextvars(decision_id=request.decision_id)
        if not request.decision_id:
            raise InvalidRequestError([FieldViolation("decision_id", "is required")])
        stored = self._store.get_decision(request.decision_id)
        return decision_service_pb2.GetDecisionResponse(record=record_convert.record_to_proto(stored, self._wire))

    def ListDecisions(  # noqa: N802 - the name is the RPC's
        self, request: decision_service_pb2.ListDecisionsRequest, context: grpc.ServicerContext
    ) -> decision_service_pb2.ListDecisionsResponse:
        """Return one page of matching decisions, oldest or newest first, and the token of the next page."""
        query = record_convert.filter_from_proto(request.filter)
        size = record_convert.page_size(request.page_size)
        newest = record_convert.newest_first(request.order)
        after = record_convert.after_sequence(request.page_token, request.filter, newest_first=newest)
        # One more than the page, to know whether another page follows without a second query.
        found = self._store.list_decisions(query, limit=size + 1, after_sequence=after, newest_first=newest)
        page = found[:size]
        next_token = (
            record_convert.page_token(page[-1].sequence, request.filter, newest_first=newest)
            if len(found) > size else ""
        )
        structlog.contextvars.bind_contextvars(records=len(page))
        return decision_service_pb2.ListDecisionsResponse(
            records=[record_convert.record_to_proto(stored, self._wire) for stored in page], next_page_token=next_token
        )

    def ExportDecisions(  # noqa: N802 - the name is the RPC's
        self, request: decision_service_pb2.ExportDecisionsRequest, context: grpc.ServicerContext
    ) -> Iterator[decision_service_pb2.DecisionRecord]:
        """Stream every matching decision, oldest first, reading the store a chunk at a time."""
        query = record_convert.filter_from_proto(request.filter)
        sent = 0
        try:
            for stored in self._store.iter_decisions(query):
                yield record_convert.record_to_proto(stored, self._wire)
                sent += 1
        finally:
            structlog.contextvars.bind_contextvars(records=sent)

    def RecordOutcome(  # noqa: N802 - the name is the RPC's
        self, request: decision_service_pb2.RecordOutcomeRequest, context: grpc.ServicerContext
    ) -> decision_service_pb2.RecordOutcomeResponse:
        """Append what people finally did after a decision; the reviewer defaults to the caller."""
        structlog.contextvars.bind_contextvars(decision_id=request.decision_id)
        outcome = NewOutcome(
            decision_id=request.decision_id.strip(),
            action_taken=request.action_taken.strip(),
            reviewer=request.reviewer.strip() or current_caller(),
            reason=request.reason.strip(),
        )
        _check(outcome)
        recorded = self._store.append_outcome(outcome)
        structlog.contextvars.bind_contextvars(departs=recorded.departs_from_recommendation)
        return decision_service_pb2.RecordOutcomeResponse(outcome=record_convert.outcome_to_proto(recorded))

    def VerifyChain(  # noqa: N802 - the name is the RPC's
        self, request: decision_service_pb2.VerifyChainRequest, context: grpc.ServicerContext
    ) -> decision_service_pb2.VerifyChainResponse:
        """Walk the whole hash chain, check the request's signed checkpoints, report the first broken link."""
        fallback = self._signer.public_key if self._signer is not None else None
        # Signatures first: a forged or mistyped checkpoint is a bad request, not evidence about the trail.
        signed = checkpoint.read_signed(request.checkpoints, request.public_key, fallback)
        report = checkpoint.check_trail(self._store, signed)
        verified = len(signed) if report.intact else 0
        structlog.contextvars.bind_contextvars(
            intact=report.intact, records_checked=report.records_checked, checkpoints=verified
        )
        response = record_convert.report_to_proto(report)
        response.checkpoints_verified = verified
        return response

    def CreateCheckpoint(  # noqa: N802 - the name is the RPC's
        self, request: decision_service_pb2.CreateCheckpointRequest, context: grpc.ServicerContext
    ) -> decision_service_pb2.CreateCheckpointResponse:
        """Sign the chain head as it is now; UNIMPLEMENTED when the server has no checkpoint key."""
        if self._signer is None:
            raise UnimplementedError("this server has no checkpoint key: start it with --checkpoint-key")
        signed = self._signer.checkpoint(self._store)
        structlog.contextvars.bind_contextvars(sequence=signed.sequence, key_id=signed.key_id)
        response = decision_service_pb2.CreateCheckpointResponse(
            checkpoint=signed.to_line(), sequence=signed.sequence, head_hash=signed.head, key_id=signed.key_id
        )
        response.signed_at.FromDatetime(signed.signed_at)
        return response

    def ReplayDecisions(  # noqa: N802 - the name is the RPC's
        self, request: decision_service_pb2.ReplayDecisionsRequest, context: grpc.ServicerContext
    ) -> decision_service_pb2.ReplayDecisionsResponse:
        """Re-evaluate matching decisions against a candidate version; report the impact, record nothing."""
        if self._replayer is None:
            raise UnimplementedError("this server has no evaluator to replay decisions with")
        replay = impact_convert.replay_request(request)
        # Stop between decisions once the caller has gone (deadline passed or cancelled).
        try:
            report = self._replayer.replay(replay, cancelled=lambda: not context.is_active())
        except UnknownGroupError as error:
            raise InvalidRequestError([FieldViolation("reference_group", str(error))]) from None
        structlog.contextvars.bind_contextvars(
            replayed=report.replayed, changed=report.changed, skipped=report.skipped
        )
        return decision_service_pb2.ReplayDecisionsResponse(report=impact_convert.report_to_proto(report))

    def OutcomeStats(  # noqa: N802 - the name is the RPC's
        self, request: decision_service_pb2.OutcomeStatsRequest, context: grpc.ServicerContext
    ) -> decision_service_pb2.OutcomeStatsResponse:
        """Return pathway counts by group and relative likelihoods, per policy version and period."""
        slices = monitoring.outcome_figures(
            self._store, impact_convert.stats_query(request), period_name=request.period,
            reference_group=request.reference_group,
        )
        # Counts only: the reference group is an equality group, which is never logged.
        structlog.contextvars.bind_contextvars(slices=len(slices))
        return impact_convert.stats_response(slices)


def _check(outcome: NewOutcome) -> None:
    # Lengths were checked before the call reached here (fairpath.api.field_limits).
    violations = [
        FieldViolation(field, "is required")
        for field, value in (
            ("decision_id", outcome.decision_id),
            ("action_taken", outcome.action_taken),
            ("reviewer", outcome.reviewer),
        )
        if not value
    ]
    if violations:
        raise InvalidRequestError(violations)
