"""Caller roles on a real server: each role's RPCs, each refusal, and the caller named in the decision."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from fairpath.api import auth
from fairpath.api.server import Running
from fairpath.serving.evaluator import Evaluator
from fairpath.v1 import (
    decision_service_pb2,
    decision_service_pb2_grpc,
    evaluation_service_pb2,
    evaluation_service_pb2_grpc,
    policy_service_pb2,
    policy_service_pb2_grpc,
)
from fairpath_client import FairpathClient, PermissionDeniedError, TlsConfig, UnauthenticatedError
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from grpc_status import rpc_status

from tests.integration.security.conftest import TOKENS
from tests.support.certs import Pki
from tests.support.servers import serving

GUIDE = "nhs-just-culture-guide"
REFUSALS = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}

# Every RPC a role could be granted, as (name, call). The calls change nothing: the servers below
# have no reloader (Reload answers FAILED_PRECONDITION) and ask about decisions that do not exist.
_CALLS: dict[str, Callable[[grpc.Channel], Callable[..., Any]]] = {
    "Evaluate": lambda ch: lambda **kw: evaluation_service_pb2_grpc.EvaluationServiceStub(ch).Evaluate(
        evaluation_service_pb2.EvaluateRequest(policy=GUIDE), **kw
    ),
    # No incident reference: INVALID_ARGUMENT once past auth, nothing evaluated or recorded.
    "EvaluateIncident": lambda ch: lambda **kw: evaluation_service_pb2_grpc.EvaluationServiceStub(
        ch
    ).EvaluateIncident(evaluation_service_pb2.EvaluateIncidentRequest(policy=GUIDE), **kw),
    "ListPolicies": lambda ch: lambda **kw: policy_service_pb2_grpc.PolicyServiceStub(ch).ListPolicies(
        policy_service_pb2.ListPoliciesRequest(), **kw
    ),
    "GetPolicy": lambda ch: lambda **kw: policy_service_pb2_grpc.PolicyServiceStub(ch).GetPolicy(
        policy_service_pb2.GetPolicyRequest(name=GUIDE), **kw
    ),
    "GetStatus": lambda ch: lambda **kw: policy_service_pb2_grpc.PolicyServiceStub(ch).GetStatus(
        policy_service_pb2.GetStatusRequest(), **kw
    ),
    "ValidatePolicy": lambda ch: lambda **kw: policy_service_pb2_grpc.PolicyServiceStub(ch).ValidatePolicy(
        policy_service_pb2.ValidatePolicyRequest(policy_text="policy: x\n"), **kw
    ),
    "Reload": lambda ch: lambda **kw: policy_service_pb2_grpc.PolicyServiceStub(ch).Reload(
        policy_service_pb2.ReloadRequest(), **kw
    ),
    "GetDecision": lambda ch: lambda **kw: decision_service_pb2_grpc.DecisionServiceStub(ch).GetDecision(
        decision_service_pb2.GetDecisionRequest(decision_id="no-such-decision"), **kw
    ),
    "ListDecisions": lambda ch: lambda **kw: decision_service_pb2_grpc.DecisionServiceStub(ch).ListDecisions(
        decision_service_pb2.ListDecisionsRequest(), **kw
    ),
    "RecordOutcome": lambda ch: lambda **kw: decision_service_pb2_grpc.DecisionServiceStub(ch).RecordOutcome(
        decision_service_pb2.RecordOutcomeRequest(decision_id="no-such-decision", action_taken="NONE"), **kw
    ),
    "OutcomeStats": lambda ch: lambda **kw: decision_service_pb2_grpc.DecisionServiceStub(ch).OutcomeStats(
        decision_service_pb2.OutcomeStatsRequest(), **kw
    ),
    "VerifyChain": lambda ch: lambda **kw: decision_service_pb2_grpc.DecisionServiceStub(ch).VerifyChain(
        decision_service_pb2.VerifyChainRequest(), **kw
    ),
    # These servers have no checkpoint key: an auditor gets UNIMPLEMENTED, anyone else a refusal.
    "CreateCheckpoint": lambda ch: lambda **kw: decision_service_pb2_grpc.DecisionServiceStub(
        ch
    ).CreateCheckpoint(decision_service_pb2.CreateCheckpointRequest(), **kw),
}
_READS = {"ListPolicies", "GetPolicy", "GetStatus"}
GRANTED = {
    "evaluator": {"Evaluate", "EvaluateIncident", *_READS},
    "author": {"ValidatePolicy", "Reload", *_READS},
    "auditor": {
        "GetDecision", "ListDecisions", "RecordOutcome", "OutcomeStats", "VerifyChain", "CreateCheckpoint", *_READS
    },
}
TOKEN_OF_ROLE = {roles[0]: token for token, roles in TOKENS.values()}
NAME_OF_ROLE = {roles[0]: name for name, (_, roles) in TOKENS.items()}


@pytest.fixture(scope="module")
def private_evaluator() -> Iterator[Evaluator]:
    """Load an evaluator of this module's own, so nothing these tests call can touch the session's."""
    root = Path(__file__).resolve().parents[3] / "policies"
    shared = Evaluator.from_directory(root)
    yield shared
    shared.close()


@pytest.fixture(scope="module")
def token_server(private_evaluator: Evaluator, auth_config: Path) -> Iterator[Running]:
    """Serve plaintext with the auth config: callers identify by bearer token."""
    with serving(private_evaluator, auth_config=str(auth_config)) as running:
        yield running


@pytest.fixture(scope="module")
def mtls_server(private_evaluator: Evaluator, auth_config: Path, pki: Pki) -> Iterator[Running]:
    """Serve mutual TLS with the auth config: callers identify by certificate subject (or token)."""
    with serving(
        private_evaluator,
        auth_config=str(auth_config),
        tls_cert=str(pki.server.cert),
        tls_key=str(pki.server.key),
        tls_client_ca=str(pki.ca.cert),
    ) as running:
        yield running


@pytest.fixture
def plain_channel(token_server: Running) -> Iterator[grpc.Channel]:
    """Open a plaintext channel to the token server."""
    with grpc.insecure_channel(f"127.0.0.1:{token_server.port}") as channel:
        yield channel


def _mtls_channel(running: Running, pki: Pki, subject: str) -> grpc.Channel:
    pair = pki.clients[subject]
    credentials = grpc.ssl_channel_credentials(
        pki.ca.cert.read_bytes(), pair.key.read_bytes(), pair.cert.read_bytes()
    )
    return grpc.secure_channel(f"127.0.0.1:{running.port}", credentials)


def _code(call: Callable[..., Any], **kwargs: Any) -> grpc.StatusCode:
    try:
        call(timeout=5, **kwargs)
    except grpc.RpcError as error:
        return error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    return grpc.StatusCode.OK


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest.mark.parametrize("role", sorted(GRANTED))
@pytest.mark.parametrize("rpc", sorted(_CALLS))
def test_token_roles_grant_exactly_their_rpcs(plain_channel: grpc.Channel, role: str, rpc: str) -> None:
    """A bearer token's role passes auth for its RPCs (and reads) and gets PERMISSION_DENIED for the rest."""
    code = _code(_CALLS[rpc](plain_channel), metadata=_bearer(TOKEN_OF_ROLE[role]))
    if rpc in GRANTED[role]:
        assert code not in REFUSALS
    else:
        assert code is grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(("subject", "role"), [("hr-system", "evaluator"), ("policy-desk", "author"),
                                               ("audit-portal", "auditor")])
@pytest.mark.parametrize("rpc", sorted(_CALLS))
def test_certificate_subject_roles_grant_exactly_their_rpcs(
    mtls_server: Running, pki: Pki, subject: str, role: str, rpc: str
) -> None:
    """A client certificate's subject gets its role's RPCs and PERMISSION_DENIED for the rest."""
    with _mtls_channel(mtls_server, pki, subject) as channel:
        code = _code(_CALLS[rpc](channel))
    if rpc in GRANTED[role]:
        assert code not in REFUSALS
    else:
        assert code is grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("rpc", sorted(_CALLS))
def test_no_credentials_is_unauthenticated(plain_channel: grpc.Channel, rpc: str) -> None:
    """With auth configured, every fairpath RPC without credentials is UNAUTHENTICATED."""
    assert _code(_CALLS[rpc](plain_channel)) is grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    "header", ["Bearer not-a-known-token", "Basic dXNlcjpwYXNz", "Bearer", "t0k-evaluator-3f9a"]
)
def test_unknown_or_malformed_token_is_unauthenticated(plain_channel: grpc.Channel, header: str) -> None:
    """An unknown token, another scheme, or a bare token is UNAUTHENTICATED, never a role."""
    code = _code(_CALLS["ListPolicies"](plain_channel), metadata=(("authorization", header),))
    assert code is grpc.StatusCode.UNAUTHENTICATED


def test_unlisted_certificate_subject_is_permission_denied(mtls_server: Running, pki: Pki) -> None:
    """A certificate the CA signed but the auth config does not list is known yet holds no role."""
    with _mtls_channel(mtls_server, pki, "unlisted") as channel, pytest.raises(grpc.RpcError) as error:
        _CALLS["ListPolicies"](channel)(timeout=5)
    assert isinstance(error.value, grpc.Call)
    assert error.value.code() is grpc.StatusCode.PERMISSION_DENIED
    status = rpc_status.from_call(error.value)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(info)
    assert info.reason == "PERMISSION_DENIED"
    assert info.metadata["caller"] == "subject:unlisted"
    assert info.metadata["method"] == "/fairpath.v1.PolicyService/ListPolicies"


def test_a_token_identifies_the_caller_even_with_a_certificate(mtls_server: Running, pki: Pki) -> None:
    """Over mTLS a token names the caller: a role-less certificate plus an evaluator token may evaluate."""
    with _mtls_channel(mtls_server, pki, "unlisted") as channel:
        response = _CALLS["Evaluate"](channel)(timeout=5, metadata=_bearer(TOKEN_OF_ROLE["evaluator"]))
    assert response.decision.caller == f"token:{NAME_OF_ROLE['evaluator']}"


def test_decision_names_the_token_caller(token_server: Running) -> None:
    """Decision.caller is 'token:<name>' for a caller identified by bearer token."""
    with FairpathClient(f"127.0.0.1:{token_server.port}", token=TOKEN_OF_ROLE["evaluator"]) as client:
        decision = client.evaluate(GUIDE, {})
    assert decision.caller == f"token:{NAME_OF_ROLE['evaluator']}"


def test_decision_names_the_certificate_caller(mtls_server: Running, pki: Pki) -> None:
    """Decision.caller is 'subject:<CN>' for a caller identified by its client certificate."""
    pair = pki.clients["hr-system"]
    tls = TlsConfig(ca=pki.ca.cert, cert=pair.cert, key=pair.key)
    with FairpathClient(f"127.0.0.1:{mtls_server.port}", tls=tls) as client:
        decision = client.evaluate(GUIDE, {})
    assert decision.caller == "subject:hr-system"


def test_decision_caller_is_empty_without_auth(evaluator: Evaluator) -> None:
    """Without an auth config the service is open and Decision.caller is empty."""
    with serving(evaluator) as running, FairpathClient(f"127.0.0.1:{running.port}") as client:
        assert client.evaluate(GUIDE, {}).caller == ""


def test_client_maps_refusals_to_typed_errors(token_server: Running) -> None:
    """The client raises UnauthenticatedError without a token, PermissionDeniedError for a wrong role."""
    target = f"127.0.0.1:{token_server.port}"
    with FairpathClient(target) as anonymous, pytest.raises(UnauthenticatedError):
        anonymous.evaluate(GUIDE, {})
    with FairpathClient(target, token=TOKEN_OF_ROLE["auditor"]) as auditor, pytest.raises(
        PermissionDeniedError
    ) as denied:
        auditor.evaluate(GUIDE, {})
    assert denied.value.metadata["caller"] == f"token:{NAME_OF_ROLE['auditor']}"


def test_cli_sends_the_token_from_the_environment(
    token_server: Running, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """FAIRPATH_TOKEN authenticates CLI calls; without it the CLI reports UNAUTHENTICATED and exits 1."""
    from fairpath_client.cli import main  # noqa: PLC0415 - the CLI is under test only here

    target = ["--target", f"127.0.0.1:{token_server.port}"]
    assert main(["policies", *target]) == 1
    assert "UNAUTHENTICATED" in capsys.readouterr().err
    monkeypatch.setenv("FAIRPATH_TOKEN", TOKEN_OF_ROLE["evaluator"])
    assert main(["policies", *target]) == 0


def test_health_and_reflection_stay_open(plain_channel: grpc.Channel) -> None:
    """Health checks and reflection need no credentials, so probes and grpcurl keep working."""
    response = health_pb2_grpc.HealthStub(plain_channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert response.status == health_pb2.HealthCheckResponse.SERVING
    services = ProtoReflectionDescriptorDatabase(plain_channel).get_services()
    assert "fairpath.v1.EvaluationService" in services


def test_unknown_fairpath_method_is_refused_like_any_other(plain_channel: grpc.Channel) -> None:
    """A fairpath method that does not exist is UNAUTHENTICATED without credentials, not UNIMPLEMENTED."""
    call = plain_channel.unary_unary("/fairpath.v1.EvaluationService/NoSuchMethod")
    assert _code(lambda **kw: call(b"", **kw)) is grpc.StatusCode.UNAUTHENTICATED
    code = _code(lambda **kw: call(b"", **kw), metadata=_bearer(TOKEN_OF_ROLE["evaluator"]))
    assert code is grpc.StatusCode.PERMISSION_DENIED


def test_an_allowed_method_this_server_lacks_is_unimplemented_as_a_rich_status(
    plain_channel: grpc.Channel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller allowed a fairpath method no handler serves gets UNIMPLEMENTED from the status interceptor."""
    method = "/fairpath.v1.EvaluationService/NoSuchMethod"
    monkeypatch.setattr(auth, "METHOD_ROLES", {**auth.METHOD_ROLES, method: frozenset(auth.Role)})
    with pytest.raises(grpc.RpcError) as error:
        plain_channel.unary_unary(method)(b"", timeout=5, metadata=_bearer(TOKEN_OF_ROLE["evaluator"]))
    assert (error.value.code(), error.value.details()) == (grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
    status = rpc_status.from_call(error.value)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(info)
    assert info.reason == "UNIMPLEMENTED"


def test_current_caller_names_each_concurrent_caller_and_is_cleared_after(
    private_evaluator: Evaluator, auth_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Handlers see their own caller in current_caller() under concurrency; outside an RPC it is empty."""
    method = "/fairpath.test.Probe/WhoAmI"
    monkeypatch.setattr(auth, "METHOD_ROLES", {**auth.METHOD_ROLES, method: frozenset(auth.Role)})
    handler = grpc.method_handlers_generic_handler(
        "fairpath.test.Probe",
        {"WhoAmI": grpc.unary_unary_rpc_method_handler(lambda _, __: auth.current_caller().encode())},
    )
    roles = ["evaluator", "author", "auditor"] * 20
    with serving(private_evaluator, auth_config=str(auth_config), threads=4) as running:
        running.server.add_generic_rpc_handlers((handler,))
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            call = channel.unary_unary(method)

            def who_am_i(role: str) -> bytes:
                return call(b"", timeout=5, metadata=_bearer(TOKEN_OF_ROLE[role]))  # type: ignore[no-any-return]

            with ThreadPoolExecutor(max_workers=6) as pool:
                answers = list(pool.map(who_am_i, roles))
            # Without credentials the same worker threads must not leak a previous caller.
            assert _code(lambda **kw: call(b"", **kw)) is grpc.StatusCode.UNAUTHENTICATED
    assert answers == [f"token:{NAME_OF_ROLE[role]}".encode() for role in roles]
    assert auth.current_caller() == ""
