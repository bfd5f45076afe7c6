"""The authors' and operators' commands: ``fairpath reload``, ``fairpath status`` and ``fairpath policy validate``.

They call ``PolicyService.Reload``, ``GetStatus`` and ``ValidatePolicy`` and
print every problem the service found as one line with its file and line, so a
refused version is explained where the command was typed, not only in the
server's JSON log. Each exits 0 when all is well and :data:`EXIT_PROBLEMS`
when the service reports a problem (a refused file, a failing case, a lint
error); failed calls exit as the other client commands do.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from fairpath_client._decisions_cli import Connect, Report
from fairpath_client._errors import FairpathClientError
from fairpath_client._render import render_policies
from fairpath_client._validation import PolicyProblem, ReloadReport, ValidationReport

#: Exit code: the call worked and the service reported a problem (refused file, failing case, lint error).
EXIT_PROBLEMS = 1
#: Exit code: the policy or tests file named on the command line cannot be read.
EXIT_UNREADABLE = 2


def add_admin_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    connect: Connect,
    report: Report,
) -> None:
    """Register ``reload`` and ``status`` on the top-level commands.

    Args:
        subparsers: The top-level commands.
        common: The parent parser holding ``--target``, ``--timeout``, ``--json`` and credentials.
        connect: Opens a client from the parsed options.
        report: Prints a failed call and returns its exit code.

    """
    reload = subparsers.add_parser(
        "reload", parents=[common], help="make the service re-read its policy directory now",
        description="Ask the service to reload its policy directory (PolicyService.Reload, role author) and "
        "print what started serving and every refused file with its line. Exits 1 if a file was refused.",
    )
    reload.set_defaults(func=lambda args: _run_reload(args, connect, report))
    status = subparsers.add_parser(
        "status", parents=[common], help="show the serving versions and the last reload's problems",
        description="Print the versions the service serves and the result of its last reload, each refused "
        "file with its line (PolicyService.GetStatus). Exits 1 if the last reload refused a file.",
    )
    status.set_defaults(func=lambda args: _run_status(args, connect, report))


def add_validate_command(
    policy_commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    connect: Connect,
    report: Report,
) -> None:
    """Register ``validate`` on the ``fairpath policy`` commands (arguments as for :func:`add_admin_commands`)."""
    validate = policy_commands.add_parser(
        "validate", parents=[common], help="lint and test a draft policy file on a running service",
        description="Send a draft policy file (and its cases) to the service's ValidatePolicy (role author), "
        "which loads, lints and tests it without serving it, and print every problem with its line and "
        "every failing case. Exits 1 unless the draft is valid.",
    )
    validate.add_argument("file", metavar="FILE", help="the policy file (YAML)")
    validate.add_argument(
        "--tests", metavar="FILE",
        help="its test cases (default: <FILE without .yaml>.tests.yaml beside it, if there is one)",
    )
    validate.set_defaults(func=lambda args: _run_validate(args, connect, report))


def _run_reload(args: argparse.Namespace, connect: Connect, report: Report) -> int:
    try:
        with connect(args) as client:
            result = client.reload()
    except FairpathClientError as error:
        return report(error, args)
    _write(json.dumps(result.to_dict(), indent=2) + "\n" if args.json else render_reload(result))
    return 0 if result.ok else EXIT_PROBLEMS


def _run_status(args: argparse.Namespace, connect: Connect, report: Report) -> int:
    try:
        with connect(args) as client:
            status = client.get_status()
    except FairpathClientError as error:
        return report(error, args)
    if args.json:
        _write(json.dumps(status.to_dict(), indent=2) + "\n")
    else:
        last = "No reload has run (the service has no policy directory).\n"
        _write(render_policies(status.versions) + "\n" + (render_reload(status.last_reload, "Last reload")
                                                         if status.last_reload else last))
    return 0 if status.last_reload is None or status.last_reload.ok else EXIT_PROBLEMS


def _run_validate(args: argparse.Namespace, connect: Connect, report: Report) -> int:
    policy = Path(args.file)
    tests = Path(args.tests) if args.tests else policy.with_name(policy.name.removesuffix(".yaml") + ".tests.yaml")
    try:
        policy_text = policy.read_text(encoding="utf-8")
        tests_text = tests.read_text(encoding="utf-8") if args.tests or tests.is_file() else ""
    except (OSError, UnicodeDecodeError) as error:
        sys.stderr.write(f"error: cannot read {error.filename if isinstance(error, OSError) else policy}: "
                         f"{error.strerror if isinstance(error, OSError) else error}\n")
        return EXIT_UNREADABLE
    try:
        with connect(args) as client:
            result = client.validate_policy(policy_text, tests_text, path=str(policy))
    except FairpathClientError as error:
        return report(error, args)
    _write(json.dumps(result.to_dict(), indent=2) + "\n" if args.json else render_validation(result))
    return 0 if result.ok else EXIT_PROBLEMS


def render_reload(result: ReloadReport, heading: str = "Reload") -> str:
    """Describe a reload: its trigger and outcome, the versions it started serving, one line per problem."""
    errors = sum(1 for p in result.problems if p.severity == "error")
    outcome = "ok" if result.ok else f"file(s) refused, {errors} error(s); what was serving still serves"
    lines = [f"{heading} ({result.trigger}): {outcome}"]
    lines += [f"  started serving: {', '.join(result.loaded)}"] if result.loaded else []
    lines += [f"  {line}" for line in render_problems(result.problems)]
    return "".join(line + "\n" for line in lines)


def render_validation(result: ValidationReport) -> str:
    """Describe a validation: the version, its problems (each failing case is one), and what no case exercised."""
    what = f"{result.summary.name} {result.summary.version}" if result.summary else "the draft"
    lines = [f"{what}: {'valid' if result.ok else 'NOT valid'}"]
    lines += [f"  {line}" for line in render_problems(result.problems)]
    if result.cases:
        lines.append(f"  cases: {result.passed} passed, {result.failed} failed")
    if result.never_exercised:
        lines.append(f"  never exercised: {', '.join(result.never_exercised)}")
    return "".join(line + "\n" for line in lines)


def render_problems(problems: Sequence[PolicyProblem]) -> list[str]:
    """One line per problem: ``severity  path:line  [check]  rule: message`` (absent parts left out)."""
    lines = []
    for problem in problems:
        where = f"{problem.path}:{problem.line}" if problem.path and problem.line else problem.path
        rule = f"rule {problem.rule_id}: " if problem.rule_id else ""
        check = f"[{problem.check}]" if problem.check else ""
        lines.append("  ".join(part for part in (problem.severity, where, check, rule + problem.message) if part))
    return lines


def _write(text: str) -> None:
    sys.stdout.write(text)
