"""The synchronous client for the fairpath gRPC service."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self, TypeVar

import grpc
from fairpath.v1 import (
    decision_service_pb2,
    decision_service_pb2_grpc,
    evaluation_service_pb2,
    evaluation_service_pb2_grpc,
    policy_service_pb2,
    policy_service_pb2_grpc,
)
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fairpath_client._errors import (
    FieldViolation,
    InvalidFactsError,
    PolicyNotFoundError,
    from_rpc_error,
)
from fairpath_client._impact import OutcomeStats, ReplayReport
from fairpath_client._incident import IncidentAction, IncidentResult
from fairpath_client._models import Decision, PolicyDetail, PolicySummary, Subject
from fairpath_client._records import (
    ChainReport,
    DecisionFilter,
    DecisionPage,
    DecisionRecord,
    OutcomeRecord,
    SignedCheckpoint,
)
from fairpath_client._security import TlsConfig, open_channel, with_token
from fairpath_client._validation import ReloadReport, ServiceStatus, ValidationReport

#: Where ``fairpath serve`` listens by default.
DEFAULT_TARGET = "127.0.0.1:50051"

#: Seconds every call may take unless the caller says otherwise.
DEFAULT_TIMEOUT = 5.0

_T = TypeVar("_T")
# The service's maximum request id; a longer (or non-ASCII) id travels in the request only, where
# the service refuses it naming the field, instead of in a header gRPC or the server cannot carry.
_HEADER_ID_MAX = 128


class FairpathClient:
    """Evaluate facts against fairpath policies and describe the policies loaded.

    Every call carries a deadline (``timeout`` seconds) and every failure is
    raised as a :class:`~fairpath_client.FairpathClientError` subclass, never
    as :class:`grpc.RpcError`.

    Example::

        with FairpathClient("127.0.0.1:50051") as client:
            decision = client.evaluate("nhs-just-culture-guide", {"intent_to_harm": "NO"})
            print(decision.status, decision.pathway)

    Args:
        target: ``host:port`` of the service; used only when ``channel`` is None.
        timeout: Deadline of every call, in seconds.
        channel: An existing channel to use (e.g. a secure one). The client
            does not close a channel it was given; the caller owns it.
        tls: Speak TLS, trusting ``tls.ca`` and, for mutual TLS, presenting
            ``tls.cert``; used only when ``channel`` is None.
        token: A bearer token sent as ``authorization: Bearer <token>`` on
            every call (also on a given ``channel``).

    Raises:
        ValueError: ``timeout`` is not positive, or ``token`` is malformed.
        OSError: A TLS file cannot be read.

    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        channel: grpc.Channel | None = None,
        tls: TlsConfig | None = None,
        token: str | None = None,
    ) -> None:
        if timeout <= 0:
            msg = f"timeout must be positive, got {timeout!r}"
            raise ValueError(msg)
        self._target = target
        self._timeout = timeout
        self._owns_channel = channel is None
        if channel is None:
            self._channel = open_channel(target, tls, token)
        else:
            self._channel = with_token(channel, token) if token else channel
        self._evaluation = evaluation_service_pb2_grpc.EvaluationServiceStub(self._channel)
        self._policies = policy_service_pb2_grpc.PolicyServiceStub(self._channel)
        self._decisions = decision_service_pb2_grpc.DecisionServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    @property
    def timeout(self) -> float:
        """The deadline of every call, in seconds."""
        return self._timeout

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FairpathClient({self._target!r}, timeout={self._timeout!r})"

    def close(self) -> None:
        """Close the channel if the client opened it; safe to call twice."""
        if self._owns_channel:
            self._channel.close()

    def evaluate(
        self,
        policy: str,
        facts: Mapping[str, object],
        version: str | None = None,
        subject: Subject | Mapping[str, str] | None = None,
        request_id: str | None = None,
        *,
        dry_run: bool = False,
    ) -> Decision:
        """Evaluate one staff member's action against a policy.

        Args:
            policy: Policy name, e.g. ``"nhs-just-culture-guide"``.
            facts: Fact name to value. Yes/no questions take ``"YES"``, ``"NO"``
                or ``"UNKNOWN"``; enums take their code; numbers, booleans and
                strings as declared; an absent fact or ``None`` is unanswered.
            version: The policy version; None for the current one.
            subject: Pseudonymous ``incident_ref``/``staff_ref``/``action_ref``.
            request_id: Correlation id; sent in the request and, when it can be a header
                (at most 128 printable ASCII characters), as ``x-request-id``.
                The service records one decision per id: repeating an id returns the
                first decision recorded under it.
            dry_run: Evaluate without recording the decision in the audit trail.

        Returns:
            The decision, ``"DECIDED"`` or ``"NEEDS_INFORMATION"``; both are
            successful answers.

        Raises:
            PolicyNotFoundError: The policy or version is not loaded.
            InvalidFactsError: The service rejected the facts, or a value cannot
                be sent at all (e.g. a date); see ``.violations``.
            FairpathClientError: Any other failure (see the subclasses).
            TypeError: ``subject`` has keys other than the three refs.

        """
        request = evaluate_request(policy, facts, version, subject, request_id, dry_run=dry_run)
        metadata = (("x-request-id", request_id),) if request_id and _fits_header(request_id) else None
        response = self._call(
            lambda: self._evaluation.Evaluate(request, timeout=self._timeout, metadata=metadata),
            request_id,
        )
        return Decision.from_proto(response.decision)

    def evaluate_incident(
        self,
        policy: str,
        incident_ref: str,
        facts: Mapping[str, object],
        actions: Sequence[IncidentAction | Mapping[str, object]],
        *,
        version: str | None = None,
        request_id: str | None = None,
        dry_run: bool = False,
    ) -> IncidentResult:
        """Evaluate every action of one incident in one call, recording all the decisions or none.

        Args:
            policy: Policy name, e.g. ``"nhs-just-culture-guide"``.
            incident_ref: The incident's pseudonymous reference; every decision carries it.
            facts: Facts the actions share (as for :meth:`evaluate`), e.g. ``harm_severity``.
            actions: 1 to 50 actions: :class:`IncidentAction`, or mappings with its keys
                (``staff_ref`` required, ``action_ref``, ``facts``, ``equality_group``).
                An action's facts override shared facts of the same name.
            version: The policy version; None for the current one.
            request_id: Correlation id (sent as ``x-request-id`` when it fits); repeating the same
                request returns the first result, a different request under it is refused.
            dry_run: Evaluate without recording anything.

        Returns:
            One decision per action, in order, each exactly what :meth:`evaluate` would return on
            the merged facts, and the advice about the incident as a whole.

        Raises:
            PolicyNotFoundError: The policy or version is not loaded.
            InvalidFactsError: Facts were rejected; a violation names the action, e.g.
                ``actions[2].facts.intent_to_harm`` (``facts.X`` for a shared fact).
            InvalidRequestError: A missing incident or staff reference, no actions or too many.
            RequestIdReusedError: The request id was used for a different request.
            FairpathClientError: Any other failure (see the subclasses).
            TypeError: An action mapping with unknown keys or without ``staff_ref``.

        """
        typed = [a if isinstance(a, IncidentAction) else IncidentAction.from_mapping(a) for a in actions]
        request = evaluation_service_pb2.EvaluateIncidentRequest(
            incident_ref=incident_ref,
            policy=policy,
            version=version or "",
            facts=_facts_struct(facts, request_id),
            actions=[
                evaluation_service_pb2.IncidentAction(
                    subject=Subject(
                        staff_ref=action.staff_ref, action_ref=action.action_ref,
                        equality_group=action.equality_group,
                    ).to_proto(),
                    facts=_facts_struct(action.facts, request_id, f"actions[{index}].facts"),
                )
                for index, action in enumerate(typed)
            ],
            request_id=request_id or "",
            dry_run=dry_run,
        )
        metadata = (("x-request-id", request_id),) if request_id and _fits_header(request_id) else None
        response = self._call(
            lambda: self._evaluation.EvaluateIncident(request, timeout=self._timeout, metadata=metadata),
            request_id,
        )
        return IncidentResult.from_proto(response)

    def list_policies(self) -> list[PolicySummary]:
        """List every policy version the service has loaded.

        Returns:
            One summary per loaded version, in the service's order.

        Raises:
            FairpathClientError: The call failed (see the subclasses).

        """
        request = policy_service_pb2.ListPoliciesRequest()
        response = self._call(lambda: self._policies.ListPolicies(request, timeout=self._timeout))
        return [PolicySummary.from_proto(item) for item in response.policies]

    def get_policy(self, name: str, version: str | None = None) -> PolicyDetail:
        """Describe one policy version: its facts, pathways, advice and rules.

        Args:
            name: Policy name.
            version: The version; None for the current one.

        Returns:
            The policy's declarations.

        Raises:
            PolicyNotFoundError: The policy or version is not loaded.
            FairpathClientError: Any other failure (see the subclasses).

        """
        request = policy_service_pb2.GetPolicyRequest(name=name, version=version or "")
        response = self._call(lambda: self._policies.GetPolicy(request, timeout=self._timeout))
        return PolicyDetail.from_proto(response.policy)

    def validate_policy(self, policy_text: str, tests_text: str = "", path: str = "") -> ValidationReport:
        """Lint and test a draft policy file on the service without loading it (``ValidatePolicy``, author role).

        Args:
            policy_text: The policy file's YAML.
            tests_text: Its test cases (the ``<version>.tests.yaml`` format); "" for none.
            path: A name for messages, e.g. ``"policies/x/1.0.0.yaml"``.

        Raises:
            InvalidRequestError: The text is too large.
            FairpathClientError: Any other failure (see the subclasses).

        """
        request = policy_service_pb2.ValidatePolicyRequest(policy_text=policy_text, tests_text=tests_text, path=path)
        response = self._call(lambda: self._policies.ValidatePolicy(request, timeout=self._timeout))
        return ValidationReport.from_proto(response)

    def reload(self) -> ReloadReport:
        """Ask the service to reload its policy directory now (``Reload``, author role).

        Raises:
            ReloadUnavailableError: The service has no policy directory to reload.
            FairpathClientError: Any other failure (see the subclasses).

        """
        request = policy_service_pb2.ReloadRequest()
        response = self._call(lambda: self._policies.Reload(request, timeout=self._timeout))
        return ReloadReport.from_proto(response.result)

    def get_status(self) -> ServiceStatus:
        """Ask which versions serve and how the last reload went (``GetStatus``, any role).

        Raises:
            FairpathClientError: The call failed (see the subclasses).

        """
        request = policy_service_pb2.GetStatusRequest()
        response = self._call(lambda: self._policies.GetStatus(request, timeout=self._timeout))
        return ServiceStatus.from_proto(response)

    def health(self, service: str = "") -> str:
        """Ask the standard ``grpc.health.v1`` service how the server is.

        Args:
            service: The service name to ask about; "" for the whole server.

        Returns:
            ``"SERVING"``, ``"NOT_SERVING"``, ``"UNKNOWN"``, or
            ``"SERVICE_UNKNOWN"`` if the server does not know ``service``.

        Raises:
            FairpathClientError: The call failed, e.g. ``ServiceUnavailableError``
                when nothing listens at the target.

        """
        request = health_pb2.HealthCheckRequest(service=service)
        try:
            response = self._call(lambda: self._health.Check(request, timeout=self._timeout))
        except PolicyNotFoundError:
            # The health service answers NOT_FOUND for a service it does not
            # know; that is a health status here, not a missing policy.
            return "SERVICE_UNKNOWN"
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))

    def get_decision(self, decision_id: str) -> DecisionRecord:
        """Return one recorded decision, its trace and the outcomes recorded for it.

        Raises:
            DecisionNotFoundError: No decision with that id is recorded.
            FairpathClientError: Any other failure (see the subclasses).

        """
        request = decision_service_pb2.GetDecisionRequest(decision_id=decision_id)
        response = self._call(lambda: self._decisions.GetDecision(request, timeout=self._timeout))
        return DecisionRecord.from_proto(response.record)

    def list_decisions(
        self,
        query: DecisionFilter | None = None,
        *,
        page_size: int = 0,
        page_token: str = "",
        newest_first: bool = False,
    ) -> DecisionPage:
        """Return one page of recorded decisions matching ``query``, oldest first unless ``newest_first``.

        Args:
            query: Which decisions; None for all.
            page_size: Records per page; 0 for the service's default (50; at most 500).
            page_token: ``next_page_token`` of the previous page, with the same ``query`` and order.
            newest_first: List the most recently recorded decisions first.

        Raises:
            InvalidRequestError: A page token from another query or the other order, or a bad filter.
            FairpathClientError: Any other failure (see the subclasses).

        """
        request = decision_service_pb2.ListDecisionsRequest(
            filter=(query or DecisionFilter()).to_proto(), page_size=page_size, page_token=page_token,
            order=(
                decision_service_pb2.DECISION_ORDER_NEWEST_FIRST if newest_first
                else decision_service_pb2.DECISION_ORDER_OLDEST_FIRST
            ),
        )
        response = self._call(lambda: self._decisions.ListDecisions(request, timeout=self._timeout))
        return DecisionPage(
            records=tuple(DecisionRecord.from_proto(item) for item in response.records),
            next_page_token=response.next_page_token,
        )

    def export_decisions(
        self, query: DecisionFilter | None = None, *, timeout: float | None = None
    ) -> Iterator[DecisionRecord]:
        """Stream every recorded decision matching ``query``, oldest first.

        Args:
            query: Which decisions; None for all.
            timeout: Deadline of the whole stream in seconds; the client's timeout by default.

        Raises:
            FairpathClientError: The stream failed (raised while iterating).

        """
        request = decision_service_pb2.ExportDecisionsRequest(filter=(query or DecisionFilter()).to_proto())
        stream = self._decisions.ExportDecisions(request, timeout=timeout or self._timeout)
        try:
            for message in stream:
                yield DecisionRecord.from_proto(message)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error
        finally:
            stream.cancel()  # a consumer that stops early must not leave the stream open

    def record_outcome(
        self, decision_id: str, action_taken: str, reviewer: str = "", reason: str = ""
    ) -> OutcomeRecord:
        """Record what people finally did after a decision; appended, never replacing earlier outcomes.

        Args:
            decision_id: The decision concerned.
            action_taken: What was done, ideally a pathway code of the policy; it "departs" from
                the recommendation when it differs from the recommended pathway's code.
            reviewer: Who decided; the authenticated caller when empty.
            reason: Why, especially when departing from the recommendation.

        Raises:
            DecisionNotFoundError: No decision with that id is recorded.
            InvalidRequestError: A required field is missing or too long.
            FairpathClientError: Any other failure (see the subclasses).

        """
        request = decision_service_pb2.RecordOutcomeRequest(
            decision_id=decision_id, action_taken=action_taken, reviewer=reviewer, reason=reason
        )
        response = self._call(lambda: self._decisions.RecordOutcome(request, timeout=self._timeout))
        return OutcomeRecord.from_proto(response.outcome)

    def verify_chain(
        self,
        *,
        checkpoints: Sequence[str] = (),
        public_key: str = "",
        timeout: float | None = None,
    ) -> ChainReport:
        """Ask the service to check the trail's whole hash chain and report the first broken link.

        Args:
            checkpoints: Signed checkpoint lines (:attr:`SignedCheckpoint.line`) kept away from the
                service's database; the trail must still contain and extend each one, or the report
                is not intact and names the first checkpoint that fails.
            public_key: PEM Ed25519 public key the checkpoints must be signed with (your own copy);
                "" trusts the server's own checkpoint key.
            timeout: Deadline in seconds (a long trail takes a while); the client's timeout by default.

        Raises:
            InvalidRequestError: A checkpoint is malformed or not signed by that key (one violation
                per bad line, ``checkpoints[i]``), or the public key is unusable or missing.
            FairpathClientError: The call failed (see the subclasses).

        """
        request = decision_service_pb2.VerifyChainRequest(checkpoints=list(checkpoints), public_key=public_key)
        response = self._call(
            lambda: self._decisions.VerifyChain(request, timeout=timeout or self._timeout)
        )
        return ChainReport.from_proto(response)

    def create_checkpoint(self) -> SignedCheckpoint:
        """Have the service sign the trail's chain head as it is now, to keep away from its database.

        Raises:
            UnimplementedError: The service has no checkpoint key.
            FairpathClientError: The call failed (see the subclasses).

        """
        request = decision_service_pb2.CreateCheckpointRequest()
        response = self._call(lambda: self._decisions.CreateCheckpoint(request, timeout=self._timeout))
        return SignedCheckpoint.from_proto(response)

    def replay_decisions(
        self,
        policy: str = "",
        candidate: str = "",
        query: DecisionFilter | None = None,
        *,
        max_changed: int = 0,
        period: str = "",
        reference_group: str = "",
        timeout: float | None = None,
        version: str | None = None,
    ) -> ReplayReport:
        """Re-evaluate recorded decisions against a candidate policy version; nothing is recorded.

        Arguments come in the order every method and command uses: the policy, then the version
        (here the candidate replayed against), then the filter of recorded decisions.

        Args:
            policy: The candidate policy; "" for each decision's own. When given and ``query``
                names no policy, only decisions recorded under this policy are replayed.
            candidate: The candidate version, e.g. ``"1.1.0"`` (a draft must be loaded to be replayed).
            query: Which recorded decisions, as :meth:`list_decisions`; None for all.
            max_changed: Most changed decisions to list; 0 for the service's default (100).
            period: Periods of the fairness figures: ``"all"`` (default), ``"year"``,
                ``"quarter"`` or ``"month"``.
            reference_group: Equality group the relative likelihoods compare with; "" for the largest.
            timeout: Deadline in seconds (a long trail takes a while); the client's timeout by default.
            version: Deprecated spelling of ``candidate`` (removed in the next release).

        Calls in the old order, ``replay_decisions(version, policy)``, still work for one release, with a
        DeprecationWarning: a policy name starts with a letter and a version with a digit, so the two
        cannot be mistaken for each other.

        Raises:
            PolicyNotFoundError: The named candidate version is not loaded.
            InvalidRequestError: No version, an unknown period, or a bad filter.
            FairpathClientError: Any other failure (see the subclasses).

        """
        policy, version = _replay_arguments(policy, candidate, version)
        request = decision_service_pb2.ReplayDecisionsRequest(
            filter=(query or DecisionFilter()).to_proto(), policy=policy, version=version,
            max_changed=max_changed, period=period, reference_group=reference_group,
        )
        response = self._call(
            lambda: self._decisions.ReplayDecisions(request, timeout=timeout or self._timeout)
        )
        return ReplayReport.from_proto(response.report)

    def outcome_stats(
        self,
        policy: str = "",
        version: str = "",
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        period: str = "",
        reference_group: str = "",
        timeout: float | None = None,
    ) -> OutcomeStats:
        """Fairness figures of recorded decisions: pathway counts by group and relative likelihoods.

        Args:
            policy: Only this policy; "" for all.
            version: Only this version; "" for all.
            since: Decisions evaluated at or after this instant (timezone-aware).
            until: Decisions evaluated before this instant.
            period: ``"all"`` (default), ``"year"``, ``"quarter"`` or ``"month"``: one slice per
                policy version and period.
            reference_group: Equality group the relative likelihoods compare with; "" for the largest.
            timeout: Deadline in seconds; the client's timeout by default.

        Raises:
            InvalidRequestError: An unknown period or a time range that ends before it starts.
            FairpathClientError: Any other failure (see the subclasses).
            ValueError: A time without a timezone.

        """
        window = DecisionFilter(from_time=since, to_time=until).to_proto()
        request = decision_service_pb2.OutcomeStatsRequest(
            policy=policy, version=version, period=period, reference_group=reference_group,
            from_time=window.from_time if since else None, to_time=window.to_time if until else None,
        )
        response = self._call(lambda: self._decisions.OutcomeStats(request, timeout=timeout or self._timeout))
        return OutcomeStats.from_proto(response)

    def _call(self, rpc: Callable[[], _T], request_id: str | None = None) -> _T:
        """Run one RPC, translating gRPC failures into the client's exceptions."""
        try:
            return rpc()
        except grpc.RpcError as error:
            raise from_rpc_error(error, request_id=request_id) from error


def _replay_arguments(policy: str, candidate: str, version: str | None) -> tuple[str, str]:
    """``replay_decisions``' (policy, candidate), from its arguments in the new or the deprecated form."""
    if version is not None:
        warnings.warn("replay_decisions(version=...) is deprecated: use candidate=...", DeprecationWarning,
                      stacklevel=3)
        if candidate:
            raise TypeError("replay_decisions() got both candidate and its deprecated spelling version")
        return policy, version
    if _looks_like_version(policy) and not _looks_like_version(candidate) and (policy or candidate):
        warnings.warn("replay_decisions(version, policy) is deprecated: call replay_decisions(policy, candidate)",
                      DeprecationWarning, stacklevel=3)
        return candidate, policy
    return policy, candidate


def _looks_like_version(text: str) -> bool:
    """"" or a string starting with a digit: policy names start with a letter, versions with a digit."""
    return not text or text[0].isdigit()


def evaluate_request(
    policy: str,
    facts: Mapping[str, object],
    version: str | None = None,
    subject: Subject | Mapping[str, str] | None = None,
    request_id: str | None = None,
    *,
    dry_run: bool = False,
) -> evaluation_service_pb2.EvaluateRequest:
    """Build the ``EvaluateRequest`` :meth:`FairpathClient.evaluate` sends (arguments as there).

    Raises:
        InvalidFactsError: A value cannot be sent at all (e.g. a date).
        TypeError: ``subject`` has keys other than the three refs.

    """
    if isinstance(subject, Mapping):
        subject = Subject(**subject)
    return evaluation_service_pb2.EvaluateRequest(
        policy=policy,
        version=version or "",
        facts=_facts_struct(facts, request_id),
        subject=subject.to_proto() if subject is not None else None,
        request_id=request_id or "",
        dry_run=dry_run,
    )


def _fits_header(request_id: str) -> bool:
    """Whether ``request_id`` can be sent as the ``x-request-id`` header (short, printable ASCII)."""
    return len(request_id) <= _HEADER_ID_MAX and request_id.isascii() and request_id.isprintable()


def _facts_struct(facts: Mapping[str, object], request_id: str | None, path: str = "facts") -> struct_pb2.Struct:
    """Pack facts into a ``google.protobuf.Struct``, rejecting values JSON cannot carry.

    Raises:
        InvalidFactsError: A key is not a string or a value is not JSON-like;
            raised before sending, in the same shape the service would use.

    """
    struct = struct_pb2.Struct()
    violations: list[FieldViolation] = []
    for key, value in facts.items():
        if not isinstance(key, str):
            violations.append(FieldViolation(f"{path}.{key}", f"fact names must be strings, got {key!r}"))
            continue
        try:
            # Caller input is arbitrary (a YAML date, a set): let Struct decide what
            # it can encode and turn its refusal into a violation.
            struct.update({key: value})  # type: ignore[dict-item]
        except (TypeError, ValueError):
            violations.append(
                FieldViolation(
                    f"{path}.{key}",
                    f"a {type(value).__name__} cannot be sent; use a string, number, boolean or null",
                )
            )
    if violations:
        raise InvalidFactsError(
            "INVALID_ARGUMENT",
            f"{len(violations)} fact(s) cannot be encoded",
            violations=violations,
            request_id=request_id,
            reason="UNENCODABLE_FACTS",
        )
    return struct

