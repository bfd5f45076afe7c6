"""Evaluate against policy files on disk, without a server: ``fairpath evaluate --policies DIR``.

The request and the answer are the wire's (``EvaluateRequest`` in,
``EvaluateResponse`` out) and a refusal is raised as the ``grpc.RpcError`` the
server would send, built by the server's one error mapping
(:func:`fairpath.api.status.rich_status`). So the client command prints exactly
what it prints for a server's answer, the same facts are refused with the same
field violations, and the decision is made by the same :class:`Evaluator` and
durable_rules. Nothing is recorded: the decision comes back marked ``dry_run``.

Like ``fairpath policy test``, the files are evaluated as they are: the lock
and the reload's test gate are the server's business.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
from fairpath_client.cli import LocalPoliciesError
from grpc_status import rpc_status

from fairpath.api import decision_convert, policy_convert
from fairpath.api.status import rich_status
from fairpath.decisions import stamped
from fairpath.errors import FairpathError, PolicyFileError, PolicyNotFoundError
from fairpath.policy.loader import load_file
from fairpath.policy.lock import read_lock
from fairpath.policy.model import Policy
from fairpath.policy.registry import PolicyRegistry, policy_files
from fairpath.policy.requirements import closure, requirement_problems
from fairpath.serving.evaluator import Evaluator
from fairpath.suggest import did_you_mean
from fairpath.v1 import decision_pb2, evaluation_service_pb2
from fairpath.wire import decision_to_proto


class OfflineCallError(grpc.RpcError, grpc.Call):
    """A refused offline evaluation, shaped like the failed call a server would have answered."""

    def __init__(self, status: Any) -> None:
        """Wrap a ``google.rpc.Status`` (what :func:`rich_status` returns)."""
        super().__init__(status.message)
        self._wire = rpc_status.to_status(status)

    def code(self) -> grpc.StatusCode:
        """The status code the server would have sent."""
        code: grpc.StatusCode = self._wire.code
        return code

    def details(self) -> str:
        """The status message the server would have sent."""
        return str(self._wire.details)

    def trailing_metadata(self) -> Any:
        """The trailers, carrying the rich status (``ErrorInfo``, ``BadRequest``)."""
        return self._wire.trailing_metadata

    # The rest of grpc.Call's interface: nothing was sent, so there is nothing to report.
    def initial_metadata(self) -> Any:
        """No initial metadata: no call was made."""
        return ()

    def is_active(self) -> bool:
        """Never active: the "call" is over."""
        return False

    def time_remaining(self) -> float:
        """No time remains: the "call" is over."""
        return 0.0

    def cancel(self) -> bool:
        """Nothing to cancel."""
        return False

    def add_callback(self, callback: Any) -> bool:
        """No callbacks: the "call" is over."""
        return False


def evaluate_offline(policies_dir: str, request: evaluation_service_pb2.EvaluateRequest) -> (
    evaluation_service_pb2.EvaluateResponse
):
    """Evaluate ``request`` against the versions of ``request.policy`` found under ``policies_dir``.

    Raises:
        OfflineCallError: What the server would have answered with: unknown policy or version,
            invalid facts (with field violations).
        LocalPoliciesError: The directory is missing or a policy file in it cannot be loaded.

    """
    loaded = _load(Path(policies_dir))
    versions = [policy for policy in loaded if policy.name == request.policy]
    if not versions:
        # Only the asked-for policy's versions are compiled, so the registry cannot name the others:
        # say here, as the server's registry would, which loaded name was probably meant.
        missing = PolicyNotFoundError(request.policy, request.version, did_you_mean(request.policy, {
            policy.name for policy in loaded}))
        raise OfflineCallError(rich_status(missing, request.request_id))
    # A chained version is evaluated through what it requires, from the same directory, as a server would.
    wanted = {policy.key: policy for version in versions for policy in closure(version, loaded)}
    refused = requirement_problems(wanted.values())
    for key, error in refused.items():
        if key.split("@")[0] == request.policy:
            raise LocalPoliciesError(f"cannot load the policies: {error}")
    evaluator = Evaluator(PolicyRegistry(policy for key, policy in wanted.items() if key not in refused))
    try:
        decision = evaluator.evaluate(
            request.policy, decision_convert.facts_from_proto(request.facts), version=request.version,
            subject=decision_convert.subject_from_proto(request.subject), request_id=request.request_id,
        )
    except FairpathError as error:
        raise OfflineCallError(rich_status(error, request.request_id)) from error
    finally:
        evaluator.close()
    # Never recorded, whatever the request said: the answer says so, as a server's dry run does.
    decision = stamped(decision, dry_run=True)  # and every decision a chained policy required
    return evaluation_service_pb2.EvaluateResponse(decision=decision_to_proto(decision))


def _load(root: Path) -> list[Policy]:
    """Load every policy file under ``root`` (only the asked-for policy's versions are then compiled)."""
    if not root.is_dir():
        raise LocalPoliciesError(f"policy directory {root} does not exist")
    try:
        # Every file is loaded, as `fairpath policy test` does: a broken file is reported, not skipped,
        # because it could be the very version asked for.
        return [load_file(path) for path in policy_files(root)]
    except PolicyFileError as error:
        raise LocalPoliciesError(f"cannot load the policies: {error}") from error


def describe_offline(policies_dir: str, name: str = "", version: str = "") -> list[decision_pb2.PolicyDetail]:
    """Describe policy versions from files, as ``GetPolicy`` would: ``fairpath policies [show] --policies DIR``.

    With no ``name``, every version under the directory; else the one named (the current one when
    ``version`` is empty). Which version is current follows the server's rule, among the versions a
    server would serve: an active or retired version that ``policies.lock`` does not hold (with the
    file's digest) is refused by a server, so it is never current here either, and says "not locked".

    Raises:
        OfflineCallError: No such policy or version (as the server's NOT_FOUND, with a suggestion).
        LocalPoliciesError: The directory is missing, or a policy file or the lock file does not load.

    """
    root = Path(policies_dir)
    loaded = _load(root)
    try:
        lock = read_lock(root)
    except PolicyFileError as error:
        raise LocalPoliciesError(f"cannot read the lock file: {error}") from error
    unlocked = {policy.key for policy in loaded if lock.verify(policy) is not None}
    registry = PolicyRegistry([policy for policy in loaded if policy.key not in unlocked])
    everything = PolicyRegistry(loaded)  # the unlocked ones too, so they can be described

    def detail(policy: Policy) -> decision_pb2.PolicyDetail:
        if policy.key in unlocked:
            return policy_convert.policy_detail(policy, current=False, not_current_reason="not locked")
        return policy_convert.policy_detail(
            policy, current=registry.is_current(policy), not_current_reason=registry.why_not_current(policy)
        )

    if not name:
        return [detail(policy) for policy in everything.all()]
    try:
        chosen = (registry if not version and name in {p.name for p in registry.all()} else everything).get(
            name, version
        )
    except FairpathError as error:
        raise OfflineCallError(rich_status(error, "")) from error
    return [detail(chosen)]
