"""The ``fairpath`` command: ``serve`` runs the service, ``evaluate`` and ``policies`` call one.

The client commands belong to :mod:`fairpath_client.cli`; this module only
mounts them next to ``serve``, so one executable covers both sides. Every
command stores its handler as ``func`` in the parsed namespace and the handler
returns the exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from fairpath_client import cli as client_cli
from fairpath_client._pipes import pipe_safe_stdout

from fairpath import __version__
from fairpath.audit import checkpoint_cli, store_cli
from fairpath.authoring import cli as authoring_cli
from fairpath.config import Config, ConfigError, add_arguments
from fairpath.console import command as console_command
from fairpath.policy import lock_command
from fairpath.v1 import decision_pb2, evaluation_service_pb2

#: Exit code after Ctrl-C (128 + SIGINT), and the one line said on stderr.
EXIT_INTERRUPTED = 130
INTERRUPTED = "fairpath: interrupted"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fairpath`` command line and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    # A reader that stops early (`fairpath policy test | head`) must not change the exit code: the
    # command runs to its end with its output discarded (fairpath_client._pipes says why).
    try:
        with pipe_safe_stdout():
            return int(args.func(args))
    except KeyboardInterrupt:
        # Ctrl-C: one line and 128 + SIGINT, as shells report it; a traceback helps nobody here.
        sys.stderr.write(f"{INTERRUPTED}\n")
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    """Return the parser with every subcommand mounted."""
    parser = argparse.ArgumentParser(prog="fairpath", description="Triage and just-culture policies as code.")
    parser.add_argument("--version", action="version", version=f"fairpath {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    serve = subparsers.add_parser(
        "serve",
        help="run the gRPC service",
        description="Run the gRPC service until SIGTERM or SIGINT. "
        "Each flag can also be set by the environment variable named in its help.",
    )
    add_arguments(serve)
    serve.set_defaults(func=_serve)
    client_cli.add_commands(subparsers, local_evaluate=_evaluate_offline, local_describe=_describe_offline)
    console_command.add_command(subparsers)
    policy = subparsers.add_parser(
        "policy", help="policy authors' tools", description="Tools for policy authors; they work on files."
    )
    policy_commands = policy.add_subparsers(title="policy commands", metavar="COMMAND")
    authoring_cli.add_commands(policy_commands)
    lock_command.add_command(policy_commands)
    client_cli.add_policy_commands(policy_commands)
    checkpoint_cli.add_commands(subparsers)
    store_cli.add_commands(subparsers)
    return parser


def _evaluate_offline(
    policies_dir: str, request: evaluation_service_pb2.EvaluateRequest
) -> evaluation_service_pb2.EvaluateResponse:
    """``fairpath evaluate --policies DIR``: see :mod:`fairpath.offline`."""
    # Imported here, as in _serve: the rules engine loads only for a command that evaluates locally.
    from fairpath.offline import evaluate_offline  # noqa: PLC0415

    return evaluate_offline(policies_dir, request)


def _describe_offline(policies_dir: str, name: str, version: str) -> list[decision_pb2.PolicyDetail]:
    """``fairpath policies [show] --policies DIR``: see :func:`fairpath.offline.describe_offline`."""
    from fairpath.offline import describe_offline  # noqa: PLC0415 - loads the engine only when used

    return describe_offline(policies_dir, name, version)


def _serve(args: argparse.Namespace) -> int:
    try:
        config = Config.from_namespace(args, os.environ)
    except ConfigError as error:
        sys.stderr.write(f"fairpath serve: error: {error}\n")
        return 2
    # Imported here so the client commands do not pay for loading the server and the rules engine.
    from fairpath.app import serve  # noqa: PLC0415

    return serve(config)
