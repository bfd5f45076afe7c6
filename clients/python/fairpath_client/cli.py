"""Command-line commands talking to a fairpath service: ``evaluate``, ``evaluate-incident`` and ``policies``.

Run them as ``python -m fairpath_client COMMAND``, or as part of the top-level
``fairpath`` command, which registers them next to ``serve`` with
:func:`add_commands`.

Exit codes (:data:`EXIT_OK` and friends):

* 0 -- a decision was returned (``DECIDED`` or ``NEEDS_INFORMATION``; for an
  incident, one per action), or the policies were listed;
* 1 -- any other failure: service unreachable, timeout, server error;
* 2 -- invalid facts or request fields, e.g. a reference longer than the
  service accepts (each violation printed as ``field: description``), an
  unreadable facts file, or a command-line usage error (argparse's own code);
* 3 -- the policy or version is not loaded.

Errors go to stderr as one line each, never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
import yaml
from fairpath.v1 import decision_pb2, evaluation_service_pb2

from fairpath_client._admin_cli import add_admin_commands, add_validate_command
from fairpath_client._cli_credentials import add_credential_arguments, credentials_from_args
from fairpath_client._client import DEFAULT_TARGET, DEFAULT_TIMEOUT, FairpathClient, evaluate_request
from fairpath_client._decisions_cli import add_decision_commands
from fairpath_client._errors import (
    FairpathClientError,
    InvalidFactsError,
    InvalidRequestError,
    PolicyNotFoundError,
    ServiceUnavailableError,
    from_rpc_error,
)
from fairpath_client._impact_cli import add_impact_commands
from fairpath_client._incident import IncidentAction
from fairpath_client._models import Decision, PolicyDetail, Subject
from fairpath_client._pipes import pipe_safe_stdout
from fairpath_client._render import render_decision, render_incident, render_policies, render_policy_detail

#: Exit code: the command did what was asked.
EXIT_OK = 0
#: Exit code: the service could not be reached or failed.
EXIT_ERROR = 1
#: Exit code: the facts were rejected or the facts file could not be read.
EXIT_INVALID_FACTS = 2
#: Exit code: no such policy or version is loaded.
EXIT_POLICY_NOT_FOUND = 3

#: Environment variable naming the service's ``host:port``.
TARGET_ENV = "FAIRPATH_TARGET"

_FACTS_HELP = """\
The facts file is a YAML or JSON mapping of fact name to value ("-" reads
stdin). Quote yes/no answers in YAML: YAML reads unquoted yes, no, on, off,
true and false as booleans, and a boolean sent for a YES/NO question is
rejected by the service. For example:

  is_patient_safety_incident: "YES"
  individual_concern_raised: "YES"
  intent_to_harm: "NO"
  professional_group: REGISTERED_NURSE
"""


_INCIDENT_HELP = """\
The file (YAML or JSON, "-" reads stdin) holds the incident: its reference,
the facts its actions share, and the actions, each with its staff reference
and its own facts (which override shared ones). policy and version may be
given here or on the command line (which wins). For example:

  incident_ref: INC-2026-0142
  policy: nhs-just-culture-guide
  facts:
    is_patient_safety_incident: "YES"
    harm_severity: MODERATE
  actions:
    - staff_ref: S-1001
      action_ref: A-1
      facts:
        knowingly_departed: "YES"
    - staff_ref: S-1002
      action_ref: A-2
      facts:
        knowingly_departed: "NO"

Quote yes/no answers, as for evaluate.
"""
_INCIDENT_KEYS = frozenset({"incident_ref", "policy", "version", "facts", "actions"})


class _FactsFileError(Exception):
    """The facts file cannot be read or does not hold a mapping."""


class LocalPoliciesError(Exception):
    """``evaluate --policies DIR``: the directory is missing or one of its policy files does not load."""


#: Evaluates an ``EvaluateRequest`` against the policy files under a directory, without a server
#: (``fairpath.offline.evaluate_offline``); refusals are raised as the ``grpc.RpcError`` a server would send.
LocalEvaluate = Callable[[str, evaluation_service_pb2.EvaluateRequest], evaluation_service_pb2.EvaluateResponse]
#: Describes the policy versions under a directory as ``GetPolicy`` would (``fairpath.offline.describe_offline``):
#: ``(DIR, name, version)``, every version when ``name`` is empty, else the one named.
LocalDescribe = Callable[[str, str, str], list[decision_pb2.PolicyDetail]]


def add_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    local_evaluate: LocalEvaluate | None = None,
    local_describe: LocalDescribe | None = None,
) -> None:
    """Register the ``evaluate`` and ``policies`` commands on a parser's subcommands.

    Each command stores its handler as ``func`` in the parsed namespace; the
    handler returns the exit code and never raises for service errors::

        args = parser.parse_args(argv)
        return args.func(args)

    Args:
        subparsers: What ``parser.add_subparsers()`` returned.
        local_evaluate: When given, ``evaluate`` also takes ``--policies DIR`` and then evaluates
            with it, on this machine, instead of calling a service.
        local_describe: When given, ``policies`` and ``policies show`` also take ``--policies DIR``
            and then describe the files with it instead of calling a service.

    """
    common = common_options()

    evaluate = subparsers.add_parser(
        "evaluate",
        parents=[common],
        help="evaluate facts against a policy and print the decision",
        description="Evaluate one staff member's action against a policy and print the decision.",
        epilog=_FACTS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument("--policy", required=True, metavar="NAME", help="policy name")
    evaluate.add_argument("--version", metavar="V", help="policy version (default: the current one)")
    evaluate.add_argument("--facts", required=True, metavar="FILE", help="YAML or JSON facts file, or -")
    evaluate.add_argument("--incident-ref", metavar="R", help="pseudonymous incident reference")
    evaluate.add_argument("--staff-ref", metavar="S", help="pseudonymous staff reference")
    evaluate.add_argument("--action-ref", metavar="A", help="pseudonymous action reference")
    evaluate.add_argument("--request-id", metavar="ID", help="correlation id, sent as x-request-id")
    evaluate.add_argument("--equality-group", metavar="G", help="pseudonymous equality-monitoring group")
    evaluate.add_argument("--dry-run", action="store_true", help="evaluate without recording the decision")
    if local_evaluate is not None:
        evaluate.add_argument(
            "--policies", metavar="DIR",
            help="evaluate the policy files under DIR on this machine, without a service; nothing is recorded",
        )
    evaluate.set_defaults(func=_run_evaluate, local_evaluate=local_evaluate)

    incident = subparsers.add_parser(
        "evaluate-incident",
        parents=[common],
        help="evaluate every action of one incident and print the decisions and the incident's advice",
        description="Evaluate every action of one incident against a policy in one call (all its decisions "
        "recorded, or none) and print the advice about the incident, then each action's decision.",
        epilog=_INCIDENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    incident.add_argument("--facts", required=True, metavar="FILE", help="YAML or JSON incident file, or -")
    incident.add_argument("--policy", metavar="NAME", help="policy name (default: the file's policy)")
    incident.add_argument("--version", metavar="V", help="policy version (default: the file's, else the current one)")
    incident.add_argument("--incident-ref", metavar="R", help="incident reference (default: the file's)")
    incident.add_argument("--request-id", metavar="ID", help="correlation id, sent as x-request-id")
    incident.add_argument("--dry-run", action="store_true", help="evaluate without recording the decisions")
    incident.set_defaults(func=_run_evaluate_incident)

    policies = subparsers.add_parser(
        "policies",
        parents=[common],
        help="list the policy versions, or show one version's questions (policies show)",
        description="List the policy versions the service has loaded: status, effective date, whether each is "
        "current and, if not, why not (draft, retired, not yet effective, superseded, not locked).",
    )
    shown = policies.add_subparsers(title="policies commands", metavar="COMMAND")
    show = shown.add_parser(
        "show", parents=[common], help="show one version's questions, pathways and advice codes",
        description="Show one policy version: its status, whether it is current (and if not, why not), "
        "effective date and digest; its questions in the order the walk asks them, with each fact's type and "
        "allowed values; its pathways and advice codes.",
    )
    show.add_argument(
        "policy", metavar="NAME[@VERSION]", help="the policy, and a version (default: the current one)"
    )
    for parser in (policies, show):
        if local_describe is not None:
            parser.add_argument(
                "--policies", metavar="DIR",
                help="read the policy files under DIR on this machine instead of asking a service",
            )
        parser.set_defaults(local_describe=local_describe)
    policies.set_defaults(func=_run_policies)
    show.set_defaults(func=_run_policy_show)

    add_decision_commands(subparsers, common, _connect, _report)
    add_impact_commands(subparsers, common, _connect, _report)
    add_admin_commands(subparsers, common, _connect, _report)


def add_policy_commands(policy_commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``fairpath policy`` commands that call a service (``validate``) on that group's subcommands."""
    add_validate_command(policy_commands, common_options(), _connect, _report)


def common_options() -> argparse.ArgumentParser:
    """Return the options every command calling a service takes (``--target``, ``--timeout``, ``--json``, credentials).

    Use it as a ``parents=[...]`` parser.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--target",
        metavar="HOST:PORT",
        help=f"the service to call (default: ${TARGET_ENV}, else {DEFAULT_TARGET})",
    )
    common.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=None,
        metavar="SECONDS",
        help=f"deadline of the call (default: {DEFAULT_TIMEOUT:g}; 600 for decisions export and verify, "
        "replay and stats, which walk the whole trail)",
    )
    common.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_credential_arguments(common)
    return common


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run the command and return its exit code.

    Args:
        argv: Arguments without the program name; None reads ``sys.argv``.

    Returns:
        The exit code (see the module docstring).

    """
    parser = argparse.ArgumentParser(
        prog="python -m fairpath_client",
        description="Talk to a fairpath service.",
    )
    add_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        with pipe_safe_stdout():  # a reader that stops early must not change the exit code
            return func(args)
    except KeyboardInterrupt:
        # 128 + SIGINT, as shells report it, and one line; a traceback helps nobody here.
        sys.stderr.write("fairpath: interrupted\n")
        return 130


def _run_evaluate(args: argparse.Namespace) -> int:
    """Run the ``evaluate`` command and return its exit code."""
    try:
        facts = _load_facts(args.facts)
    except _FactsFileError as error:
        _error(f"error: {error}")
        return EXIT_INVALID_FACTS
    refs = {
        "incident_ref": args.incident_ref, "staff_ref": args.staff_ref, "action_ref": args.action_ref,
        "equality_group": args.equality_group,
    }
    subject = Subject(**{k: v for k, v in refs.items() if v}) if any(refs.values()) else None
    if getattr(args, "policies", None):
        return _evaluate_locally(args, facts, subject)
    try:
        with _connect(args) as client:
            decision = client.evaluate(
                args.policy, facts, version=args.version, subject=subject, request_id=args.request_id,
                dry_run=args.dry_run,
            )
    except FairpathClientError as error:
        return _report(error, args, facts)
    _print(json.dumps(decision.to_dict(), indent=2) + "\n" if args.json else render_decision(decision))
    return EXIT_OK


def _evaluate_locally(args: argparse.Namespace, facts: dict[str, Any], subject: Subject | None) -> int:
    """Run ``evaluate --policies DIR``: the same request, answer, errors and output, without a service."""
    local: LocalEvaluate = args.local_evaluate
    try:
        request = evaluate_request(args.policy, facts, args.version, subject, args.request_id, dry_run=True)
        decision = Decision.from_proto(local(args.policies, request).decision)
    except grpc.RpcError as error:
        return _report(from_rpc_error(error, request_id=args.request_id), args, facts)
    except FairpathClientError as error:
        return _report(error, args, facts)
    except LocalPoliciesError as error:
        _error(f"error: {error}")
        return EXIT_ERROR
    if args.json:
        _print(json.dumps(decision.to_dict(), indent=2) + "\n")
    else:
        _print(render_decision(decision) + f"Evaluated on this machine from {args.policies}, without a service.\n")
    return EXIT_OK


def _run_evaluate_incident(args: argparse.Namespace) -> int:
    """Run the ``evaluate-incident`` command and return its exit code."""
    try:
        data = _load_facts(args.facts)
        unknown = sorted(set(data) - _INCIDENT_KEYS)
        if unknown:
            msg = f"incident file {args.facts}: unknown key(s) {', '.join(map(str, unknown))}; expected " + ", ".join(
                sorted(_INCIDENT_KEYS)
            )
            raise _FactsFileError(msg)
        policy = args.policy or data.get("policy")
        if not policy:
            raise _FactsFileError(f"incident file {args.facts} names no policy: give --policy or a policy key")
        facts = data.get("facts") or {}
        actions = [_incident_action(args.facts, index, entry) for index, entry in enumerate(data.get("actions") or [])]
        if not isinstance(facts, dict):
            raise _FactsFileError(f"incident file {args.facts}: facts must be a mapping of fact name to value")
    except _FactsFileError as error:
        _error(f"error: {error}")
        return EXIT_INVALID_FACTS
    try:
        with _connect(args) as client:
            result = client.evaluate_incident(
                str(policy), str(args.incident_ref or data.get("incident_ref") or ""), facts, actions,
                version=args.version or data.get("version"), request_id=args.request_id, dry_run=args.dry_run,
            )
    except FairpathClientError as error:
        return _report(error, args)
    _print(json.dumps(result.to_dict(), indent=2) + "\n" if args.json else render_incident(result))
    return EXIT_OK


def _incident_action(path: str, index: int, entry: object) -> IncidentAction:
    """Read ``actions[index]`` of an incident file."""
    if not isinstance(entry, dict):
        raise _FactsFileError(f"incident file {path}: actions[{index}] must be a mapping")
    try:
        action = IncidentAction.from_mapping(entry)
    except TypeError:
        keys = "staff_ref (required), action_ref, facts, equality_group"
        raise _FactsFileError(f"incident file {path}: actions[{index}] takes {keys}") from None
    if not isinstance(action.facts, dict):
        raise _FactsFileError(f"incident file {path}: actions[{index}].facts must be a mapping")
    return action


def _run_policies(args: argparse.Namespace) -> int:
    """Run the ``policies`` command and return its exit code."""
    try:
        if getattr(args, "policies", None):
            policies = [detail.summary for detail in _describe_locally(args, "", "")]
        else:
            with _connect(args) as client:
                policies = client.list_policies()
    except FairpathClientError as error:
        return _report(error, args)
    except LocalPoliciesError as error:
        _error(f"error: {error}")
        return EXIT_ERROR
    if args.json:
        _print(json.dumps([p.to_dict() for p in policies], indent=2) + "\n")
    else:
        _print(render_policies(policies))
    return EXIT_OK


def _run_policy_show(args: argparse.Namespace) -> int:
    """Run ``policies show NAME[@VERSION]`` and return its exit code."""
    name, _, version = str(args.policy).partition("@")
    try:
        if getattr(args, "policies", None):
            detail = _describe_locally(args, name, version)[0]
        else:
            with _connect(args) as client:
                detail = client.get_policy(name, version or None)
    except FairpathClientError as error:
        return _report(error, args)
    except LocalPoliciesError as error:
        _error(f"error: {error}")
        return EXIT_ERROR
    _print(json.dumps(detail.to_dict(), indent=2) + "\n" if args.json else render_policy_detail(detail))
    return EXIT_OK


def _describe_locally(args: argparse.Namespace, name: str, version: str) -> list[PolicyDetail]:
    """Describe versions from ``--policies DIR``; a refusal is raised as the client error a server's would be."""
    local: LocalDescribe = args.local_describe
    try:
        return [PolicyDetail.from_proto(detail) for detail in local(args.policies, name, version)]
    except grpc.RpcError as error:
        raise from_rpc_error(error) from None


def _connect(args: argparse.Namespace) -> FairpathClient:
    """Open a client for the target named on the command line, in the environment, or the default."""
    target = args.target or os.environ.get(TARGET_ENV) or DEFAULT_TARGET
    tls, token = credentials_from_args(args, os.environ)
    timeout = DEFAULT_TIMEOUT if args.timeout is None else args.timeout
    return FairpathClient(target, timeout=timeout, tls=tls, token=token)


def _load_facts(path: str) -> dict[str, Any]:
    """Read a YAML or JSON facts file ("-" for stdin) holding one mapping.

    YAML values are sent as parsed, booleans included: the service, not the
    CLI, decides whether a value fits the fact, and says so per field.
    """
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        msg = f"cannot read facts file {path}: {error}"
        raise _FactsFileError(msg) from error
    try:
        # JSON is parsed as JSON so its errors name JSON positions; anything
        # else is YAML, which also accepts JSON piped in on stdin.
        data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        msg = f"cannot parse facts file {path}: {_parse_problem(error)}"
        raise _FactsFileError(msg) from error
    if data is None:
        # An empty or comment-only file is almost always the wrong file or an unsaved editor buffer;
        # evaluating it would record a decision about nothing. Asking for that takes an explicit {}.
        msg = (f"facts file {path} is empty or holds only comments: nothing to evaluate "
               "(to evaluate with no answers at all, write {})")
        raise _FactsFileError(msg)
    if not isinstance(data, dict):
        msg = f"facts file {path} must hold a mapping of fact name to value, not a {type(data).__name__}"
        raise _FactsFileError(msg)
    return data


def _parse_problem(error: json.JSONDecodeError | yaml.YAMLError) -> str:
    """Describe a parse error on one line; PyYAML's own text spans several."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {error.problem}"
    return str(error).replace("\n", " ")


def _report(
    error: FairpathClientError, args: argparse.Namespace, facts: Mapping[str, Any] | None = None
) -> int:
    """Print a failed call on stderr and return its exit code."""
    if isinstance(error, InvalidFactsError | InvalidRequestError):
        if not error.violations:
            _error(f"error: {error}")
        for violation in error.violations:
            _error(f"{violation.field}: {violation.description}")
        if isinstance(error, InvalidFactsError) and facts is not None and _bool_answers(error, facts):
            _error('hint: YAML reads unquoted yes/no as booleans; quote answers, e.g. intent_to_harm: "NO"')
        return EXIT_INVALID_FACTS
    _error(f"error: {error}")
    if isinstance(error, PolicyNotFoundError):
        return EXIT_POLICY_NOT_FOUND
    if isinstance(error, ServiceUnavailableError):
        target = args.target or os.environ.get(TARGET_ENV) or DEFAULT_TARGET
        _error(f"hint: is fairpath serving at {target}? Set --target or ${TARGET_ENV}.")
    return EXIT_ERROR


def _bool_answers(error: InvalidFactsError, facts: Mapping[str, Any]) -> bool:
    """Whether a rejected fact was a boolean, the usual sign of an unquoted YAML yes/no."""
    rejected = {v.field.removeprefix("facts.") for v in error.violations}
    return any(isinstance(facts.get(name), bool) for name in rejected)


def _positive_seconds(text: str) -> float:
    """Parse ``--timeout``: a positive number of seconds."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not (seconds > 0 and math.isfinite(seconds)):
        msg = f"must be a positive number of seconds, not {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return seconds


def _print(text: str) -> None:
    """Write command output to stdout as given."""
    sys.stdout.write(text)


def _error(line: str) -> None:
    """Write one line of diagnostics to stderr."""
    sys.stderr.write(line + "\n")
