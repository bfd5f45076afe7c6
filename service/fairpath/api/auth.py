"""Caller roles: who may call which RPC, by client certificate or bearer token.

With ``--auth-config FILE`` every ``fairpath.v1`` call must identify its caller:

* a **bearer token** in the ``authorization: Bearer <token>`` header, matched
  against the SHA-256 digests in the file (the tokens themselves are never
  stored); the caller is then ``token:<name>``; or
* a **client certificate** (mutual TLS, ``--tls-client-ca``) whose subject
  common name (CN) the file lists; the caller is then ``subject:<CN>``.

A token, when sent, is what identifies the caller, certificate or not: a proxy
that terminates the client's TLS can still pass each caller's own token.

Roles and what they may call (every role may also read the policies)::

    evaluator   EvaluationService.Evaluate, EvaluationService.EvaluateIncident
    author      PolicyService.ValidatePolicy, PolicyService.Reload
    auditor     every DecisionService RPC (decisions, replay, stats, RecordOutcome)
    (all)       PolicyService.ListPolicies, GetPolicy, GetStatus

Health checking and reflection are open to everyone. A call with no
credentials, or an unknown token, fails with ``UNAUTHENTICATED``; a known
caller without a role for the method with ``PERMISSION_DENIED``. A
``fairpath.v1`` RPC missing from :data:`METHOD_ROLES` is denied to everyone,
so a new RPC is closed until someone decides who may call it.

The file::

    subjects:                  # certificate subject CN -> roles
      hr-system.example.org: [evaluator]
    tokens:                    # name -> SHA-256 (hex) of the token, and roles
      policy-team:
        sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
        roles: [author]

(``printf %s "$TOKEN" | sha256sum`` prints the digest.) Without an auth config
the service is open and :func:`current_caller` is ``""``.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import grpc
import structlog
import yaml

from fairpath.api.call_state import Handler
from fairpath.errors import CredentialsError, PermissionDeniedError, UnauthenticatedError, UnimplementedError
from fairpath.v1 import decision_service_pb2, evaluation_service_pb2, policy_service_pb2

AUTHORIZATION_HEADER = "authorization"
_BEARER = re.compile(r"^Bearer +(?P<token>\S+)$", re.IGNORECASE)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PROTECTED_PREFIX = "/fairpath."

_caller: ContextVar[str] = ContextVar("fairpath_caller", default="")


class Role(enum.StrEnum):
    """What a caller is for; a caller may hold several."""

    EVALUATOR = "evaluator"
    AUTHOR = "author"
    AUDITOR = "auditor"


def _methods(module: Any, service: str) -> dict[str, str]:
    descriptor = module.DESCRIPTOR.services_by_name[service]
    return {method.name: f"/{descriptor.full_name}/{method.name}" for method in descriptor.methods}


def _method_roles() -> dict[str, frozenset[Role]]:
    everyone = frozenset(Role)
    evaluation = _methods(evaluation_service_pb2, "EvaluationService")
    policies = _methods(policy_service_pb2, "PolicyService")
    decisions = _methods(decision_service_pb2, "DecisionService")
    table = {
        evaluation["Evaluate"]: frozenset({Role.EVALUATOR}),
        evaluation["EvaluateIncident"]: frozenset({Role.EVALUATOR}),
        policies["ListPolicies"]: everyone,
        policies["GetPolicy"]: everyone,
        policies["GetStatus"]: everyone,
        policies["ValidatePolicy"]: frozenset({Role.AUTHOR}),
        policies["Reload"]: frozenset({Role.AUTHOR}),
    }
    table.update({path: frozenset({Role.AUDITOR}) for path in decisions.values()})
    return table


#: Full method path -> the roles allowed to call it; fairpath RPCs not listed are denied.
METHOD_ROLES: Mapping[str, frozenset[Role]] = _method_roles()


def current_caller() -> str:
    """Return who made the RPC running in this context: ``token:<name>``, ``subject:<CN>`` or ``""``.

    ``""`` means the service runs without an auth config (or the code runs outside an RPC).
    """
    return _caller.get()


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest of ``token``, as the auth config stores it."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Caller:
    """An identified caller: its name as decisions record it, and its roles."""

    name: str
    roles: frozenset[Role]


@dataclass(frozen=True)
class _Token:
    name: str
    digest: str
    roles: frozenset[Role]


@dataclass(frozen=True)
class AuthPolicy:
    """Roles by certificate subject and by token digest; build with :meth:`load` or :meth:`from_mapping`."""

    subjects: Mapping[str, frozenset[Role]]
    tokens: tuple[_Token, ...]

    @classmethod
    def load(cls, path: str | Path) -> AuthPolicy:
        """Read the auth config YAML at ``path``.

        Raises:
            CredentialsError: The file cannot be read or breaks the format above.

        """
        try:
            document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            raise CredentialsError(f"auth config {path}: {error}") from None
        return cls.from_mapping(document, source=str(path))

    @classmethod
    def from_mapping(cls, document: object, source: str = "<auth config>") -> AuthPolicy:
        """Build the policy from the parsed YAML document.

        Raises:
            CredentialsError: The document breaks the format.

        """

        def fail(message: str) -> CredentialsError:
            return CredentialsError(f"auth config {source}: {message}")

        if not isinstance(document, dict) or set(document) - {"subjects", "tokens"}:
            raise fail("expected a mapping with 'subjects' and/or 'tokens'")
        subjects = document.get("subjects") or {}
        tokens = document.get("tokens") or {}
        if not isinstance(subjects, dict) or not isinstance(tokens, dict):
            raise fail("'subjects' and 'tokens' must be mappings")
        by_subject = {str(cn): _roles(roles, f"subjects.{cn}", fail) for cn, roles in subjects.items()}
        parsed: list[_Token] = []
        for name, entry in tokens.items():
            if not isinstance(entry, dict) or set(entry) != {"sha256", "roles"}:
                raise fail(f"tokens.{name}: expected exactly 'sha256' and 'roles'")
            digest = str(entry["sha256"]).strip().lower()
            if not _SHA256.match(digest):
                raise fail(f"tokens.{name}.sha256: expected the token's SHA-256 as 64 hex digits")
            if any(token.digest == digest for token in parsed):
                raise fail(f"tokens.{name}: same sha256 as another token")
            parsed.append(_Token(str(name), digest, _roles(entry["roles"], f"tokens.{name}.roles", fail)))
        if not by_subject and not parsed:
            # An empty file would lock every caller out; that is a mistake, not a policy.
            raise fail("lists no subjects and no tokens")
        return cls(subjects=by_subject, tokens=tuple(parsed))

    def identify(self, metadata: Mapping[str, str], auth_context: Mapping[str, Sequence[bytes]]) -> Caller:
        """Name the caller from its bearer token or, failing that, its certificate subject.

        Args:
            metadata: The call's text headers.
            auth_context: grpc's ``ServicerContext.auth_context()``.

        Raises:
            UnauthenticatedError: No credentials, a malformed header or an unknown token.

        """
        header = metadata.get(AUTHORIZATION_HEADER)
        if header is not None:
            match = _BEARER.match(header.strip())
            if match is None:
                raise UnauthenticatedError("the authorization header must be 'Bearer <token>'")
            digest = hash_token(match["token"])
            # compare_digest over every entry: the time taken says nothing about which digest nearly matched.
            found = [token for token in self.tokens if hmac.compare_digest(token.digest, digest)]
            if not found:
                raise UnauthenticatedError("unknown bearer token")
            return Caller(f"token:{found[0].name}", found[0].roles)
        common_names = auth_context.get("x509_common_name") or []
        if common_names:
            subject = common_names[0].decode("utf-8", "replace")
            # A verified certificate the config does not list: known to TLS, but it holds no role.
            return Caller(f"subject:{subject}", self.subjects.get(subject, frozenset()))
        raise UnauthenticatedError("no credentials: send a bearer token or a client certificate")


def _unimplemented(_: bytes, context: grpc.ServicerContext) -> bytes:
    # grpc's own words for a method no server handler knows; the status interceptor reports it.
    raise UnimplementedError("Method not found!")


def _roles(raw: object, where: str, fail: Callable[[str], CredentialsError]) -> frozenset[Role]:
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not names:
        raise fail(f"{where}: expected a list of roles")
    try:
        return frozenset(Role(str(name).strip().lower()) for name in names)
    except ValueError:
        raise fail(f"{where}: roles are {', '.join(Role)}, got {names!r}") from None


def protects(method: str) -> bool:
    """Whether calls to ``method`` must identify their caller (every ``fairpath.*`` RPC; not health, reflection)."""
    return method.startswith(_PROTECTED_PREFIX)


#: What an unknown ``fairpath.*`` method is served by under an auth config: the caller is identified and
#: authorised by the same rules first, so nobody learns without credentials which methods exist; an
#: authorised caller gets grpc's usual UNIMPLEMENTED.
UNIMPLEMENTED_HANDLER: Handler = grpc.unary_unary_rpc_method_handler(_unimplemented)


def authorise(policy: AuthPolicy, method: str, metadata: Any, context: grpc.ServicerContext) -> None:
    """Identify the caller of ``method`` and check it holds a role for it; from here :func:`current_caller` names it.

    Called by the server's interceptor inside the status mapping, so refusals raised here as
    :class:`UnauthenticatedError` / :class:`PermissionDeniedError` are reported like any other
    error, and the access log names a refused caller (bound before the roles are checked).
    :func:`forget_caller` when the call ends.

    Args:
        policy: The auth config.
        method: The full method path.
        metadata: The call's headers (``ServicerContext.invocation_metadata()``).
        context: The call's context, for the client certificate.

    """
    headers = {key: value for key, value in metadata or () if isinstance(value, str)}
    # types-grpcio says Mapping[str, bytes]; grpc really gives a list of values per key.
    auth_context = cast(Mapping[str, Sequence[bytes]], context.auth_context())
    caller = policy.identify(headers, auth_context)
    structlog.contextvars.bind_contextvars(caller=caller.name)
    if not caller.roles & METHOD_ROLES.get(method, frozenset()):
        raise PermissionDeniedError(caller.name, method)
    _caller.set(caller.name)


def forget_caller() -> None:
    """End what :func:`authorise` set: outside a call there is no caller."""
    # Not ContextVar.reset(): a stream's generator may be finalised in another context.
    _caller.set("")
