"""The auth config format, caller identification, and the table of which role may call which RPC."""

from __future__ import annotations

from pathlib import Path

import pytest
from fairpath.api.auth import METHOD_ROLES, AuthPolicy, Role, current_caller, hash_token
from fairpath.errors import CredentialsError, UnauthenticatedError
from fairpath.v1 import decision_service_pb2, evaluation_service_pb2, policy_service_pb2

DIGEST = hash_token("s3cret")


def _policy(**document: object) -> AuthPolicy:
    return AuthPolicy.from_mapping(document)


def test_hash_token_is_the_sha256_hex_that_sha256sum_prints() -> None:
    """The stored digest is what `printf %s TOKEN | sha256sum` prints, so operators can make it by hand."""
    assert hash_token("test") == "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def test_every_fairpath_rpc_has_a_role_decision() -> None:
    """Each RPC of the three services appears in METHOD_ROLES, so none is open or closed by accident."""
    services = [
        evaluation_service_pb2.DESCRIPTOR.services_by_name["EvaluationService"],
        policy_service_pb2.DESCRIPTOR.services_by_name["PolicyService"],
        decision_service_pb2.DESCRIPTOR.services_by_name["DecisionService"],
    ]
    paths = {f"/{service.full_name}/{method.name}" for service in services for method in service.methods}
    assert paths == set(METHOD_ROLES)


@pytest.mark.parametrize(
    ("method", "roles"),
    [
        ("/fairpath.v1.EvaluationService/Evaluate", {Role.EVALUATOR}),
        ("/fairpath.v1.PolicyService/ListPolicies", set(Role)),
        ("/fairpath.v1.PolicyService/GetPolicy", set(Role)),
        ("/fairpath.v1.PolicyService/GetStatus", set(Role)),
        ("/fairpath.v1.PolicyService/ValidatePolicy", {Role.AUTHOR}),
        ("/fairpath.v1.PolicyService/Reload", {Role.AUTHOR}),
        ("/fairpath.v1.DecisionService/RecordOutcome", {Role.AUDITOR}),
        ("/fairpath.v1.DecisionService/ReplayDecisions", {Role.AUDITOR}),
        ("/fairpath.v1.DecisionService/OutcomeStats", {Role.AUDITOR}),
        ("/fairpath.v1.DecisionService/ExportDecisions", {Role.AUDITOR}),
    ],
)
def test_method_roles_match_the_documented_table(method: str, roles: set[Role]) -> None:
    """Evaluate is the evaluator's, Reload/ValidatePolicy the author's, decisions the auditor's, reads all."""
    assert METHOD_ROLES[method] == roles


def test_load_reads_subjects_and_tokens(tmp_path: Path) -> None:
    """A file with both sections loads; roles may be a single name or a list."""
    path = tmp_path / "auth.yaml"
    path.write_text(
        "subjects:\n  hr-system: evaluator\n  audit-portal: [auditor, evaluator]\n"
        f"tokens:\n  policy-team:\n    sha256: {DIGEST.upper()}\n    roles: [author]\n"
    )
    policy = AuthPolicy.load(path)
    assert policy.subjects == {
        "hr-system": frozenset({Role.EVALUATOR}),
        "audit-portal": frozenset({Role.AUDITOR, Role.EVALUATOR}),
    }
    assert [(token.name, token.digest, token.roles) for token in policy.tokens] == [
        ("policy-team", DIGEST, frozenset({Role.AUTHOR}))
    ]


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ([], "expected a mapping"),
        ({"users": {}}, "expected a mapping"),
        ({}, "no subjects and no tokens"),
        ({"subjects": ["hr-system"]}, "must be mappings"),
        ({"subjects": {"hr-system": []}}, "expected a list of roles"),
        ({"subjects": {"hr-system": ["admin"]}}, "roles are evaluator, author, auditor"),
        ({"tokens": {"x": {"sha256": "s3cret", "roles": ["author"]}}}, "SHA-256 as 64 hex digits"),
        ({"tokens": {"x": {"token": "s3cret", "roles": ["author"]}}}, "exactly 'sha256' and 'roles'"),
        ({"tokens": {name: {"sha256": DIGEST, "roles": ["author"]} for name in "ab"}}, "same sha256"),
    ],
)
def test_malformed_configs_are_refused_with_the_reason(document: object, problem: str) -> None:
    """Every way the file can be wrong is a CredentialsError saying where, never a silently open service."""
    with pytest.raises(CredentialsError, match=problem):
        AuthPolicy.from_mapping(document)


def test_unreadable_config_is_a_credentials_error(tmp_path: Path) -> None:
    """A missing or unparsable file stops start-up with its path named."""
    with pytest.raises(CredentialsError, match=r"missing\.yaml"):
        AuthPolicy.load(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("subjects: [unclosed\n")
    with pytest.raises(CredentialsError, match=r"broken\.yaml"):
        AuthPolicy.load(broken)


def test_identify_by_token() -> None:
    """A known bearer token names the caller 'token:<name>' with the token's roles."""
    policy = _policy(tokens={"policy-team": {"sha256": DIGEST, "roles": ["author"]}})
    caller = policy.identify({"authorization": "Bearer s3cret"}, {})
    assert (caller.name, caller.roles) == ("token:policy-team", frozenset({Role.AUTHOR}))


def test_identify_by_certificate_subject() -> None:
    """Without a token, the verified certificate's CN names the caller 'subject:<CN>'."""
    policy = _policy(subjects={"hr-system": ["evaluator"]})
    caller = policy.identify({}, {"x509_common_name": [b"hr-system"], "transport_security_type": [b"ssl"]})
    assert (caller.name, caller.roles) == ("subject:hr-system", frozenset({Role.EVALUATOR}))


def test_unlisted_subject_is_known_but_holds_no_role() -> None:
    """A certificate the config does not list names its holder, with no roles (so PERMISSION_DENIED)."""
    caller = _policy(subjects={"hr-system": ["evaluator"]}).identify({}, {"x509_common_name": [b"stranger"]})
    assert (caller.name, caller.roles) == ("subject:stranger", frozenset())


def test_token_wins_over_certificate() -> None:
    """When both are present the token identifies the caller (a proxy may forward each caller's token)."""
    policy = _policy(
        subjects={"gateway": ["evaluator"]}, tokens={"policy-team": {"sha256": DIGEST, "roles": ["author"]}}
    )
    caller = policy.identify({"authorization": "bearer s3cret"}, {"x509_common_name": [b"gateway"]})
    assert caller.name == "token:policy-team"


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({}, "no credentials"),
        ({"authorization": "Bearer wrong"}, "unknown bearer token"),
        ({"authorization": "Basic czNjcmV0"}, "must be 'Bearer <token>'"),
        ({"authorization": "s3cret"}, "must be 'Bearer <token>'"),
    ],
)
def test_identify_refuses_missing_or_bad_credentials(metadata: dict[str, str], message: str) -> None:
    """No credentials, an unknown token or another scheme is UnauthenticatedError."""
    policy = _policy(tokens={"policy-team": {"sha256": DIGEST, "roles": ["author"]}})
    with pytest.raises(UnauthenticatedError, match=message):
        policy.identify(metadata, {})


def test_a_bad_token_is_refused_even_with_a_good_certificate() -> None:
    """A wrong token is not ignored in favour of the certificate: sending one means being judged by it."""
    policy = _policy(subjects={"hr-system": ["evaluator"]})
    with pytest.raises(UnauthenticatedError):
        policy.identify({"authorization": "Bearer wrong"}, {"x509_common_name": [b"hr-system"]})


def test_current_caller_is_empty_outside_an_rpc() -> None:
    """Outside an RPC (and without auth) the caller is the empty string."""
    assert current_caller() == ""
