"""``fairpath console --target HOST:PORT``: the review console on its own, against a service elsewhere.

The service's ``fairpath serve`` already runs a console beside itself; this
command is for a console on another machine (a reviewer's desktop, a
jump host) talking to a remote service. Users sign in with their own tokens,
checked against the same auth config the service uses (``--auth-config``);
without one the console is open, as the service must then be.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType

from fairpath_client import DEFAULT_TARGET
from fairpath_client._cli_credentials import add_credential_arguments, credentials_from_args

from fairpath.errors import FairpathError

Subparsers = argparse._SubParsersAction  # argparse has no public name for it


def add_command(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    """Register ``fairpath console`` on the top-level subcommands."""
    console = subparsers.add_parser(
        "console", help="run the review console against a running service",
        description="Serve the review console (web pages for reviewers and authors) as a client of the "
        "fairpath service at --target, until SIGTERM or SIGINT.",
    )
    console.add_argument("--target", metavar="HOST:PORT",
                         help=f"the service (default: $FAIRPATH_TARGET, else {DEFAULT_TARGET})")
    console.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    console.add_argument("--port", type=int, default=8080, help="port to listen on (default: %(default)s)")
    console.add_argument("--auth-config", metavar="FILE",
                         help="the service's auth config: users sign in with its tokens ($FAIRPATH_AUTH_CONFIG)")
    console.add_argument("--policies", metavar="DIR",
                         help="the service's policy files, for the diff page (default: none, no diff page)")
    console.add_argument("--https-cert", metavar="FILE", help="PEM certificate: serve the pages over HTTPS")
    console.add_argument("--https-key", metavar="FILE", help="PEM private key of --https-cert")
    console.add_argument("--log-format", choices=("json", "console"), default="console",
                         help="log format (default: %(default)s)")
    add_credential_arguments(console)
    console.set_defaults(func=run_console)


def run_console(args: argparse.Namespace) -> int:
    """Serve the console until SIGTERM or SIGINT; 0 after a clean stop, 1 when it cannot start."""
    # Imported here so the other `fairpath` commands do not load the web stack.
    from fairpath import logs  # noqa: PLC0415
    from fairpath.console.runner import ConsoleOptions, ConsoleServer  # noqa: PLC0415

    logs.configure("info", args.log_format)
    tls, _ = credentials_from_args(args, os.environ)
    if bool(args.https_cert) != bool(args.https_key):
        sys.stderr.write("fairpath console: error: --https-cert and --https-key go together\n")
        return 2
    options = ConsoleOptions(
        host=args.host, port=args.port, target=args.target or os.environ.get("FAIRPATH_TARGET") or DEFAULT_TARGET,
        tls=tls, auth_config=args.auth_config or os.environ.get("FAIRPATH_AUTH_CONFIG", ""),
        cert=args.https_cert or "", key=args.https_key or "", policies_dir=args.policies or "",
    )
    try:
        server = ConsoleServer(options)
        server.start()
    except (RuntimeError, OSError, FairpathError) as error:
        sys.stderr.write(f"fairpath console: error: {error}\n")
        return 1
    stop = threading.Event()

    def handler(signum: int, _: FrameType | None) -> None:
        stop.set()

    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        stop.wait()
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
        server.stop()
    return 0
