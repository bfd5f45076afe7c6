"""``fairpath store migrate``: bring the decision store's schema up to date, as the database's owner.

::

    fairpath store migrate [--store URL]

The service migrates a store it opens when it may; where it runs as a role that
may only read and append (see the README's grants), schema changes are made by
this command, run as the owner before the new version of the service starts.
Running it on a store already up to date changes nothing. Exit codes: 0 the
schema is current, 1 the store cannot be opened or migrated (the message says why).
"""

from __future__ import annotations

import argparse
import os
import sys

from fairpath.config import DEFAULT_STORE
from fairpath.errors import StoreError

_EXIT_FAILED = 1


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``store`` and its ``migrate`` subcommand on the top-level subcommands."""
    group = subparsers.add_parser(
        "store", help="manage the decision store's schema",
        description="Manage the decision store's schema (run as the database's owner).",
    )
    group.set_defaults(func=lambda _: _usage(group))
    commands = group.add_subparsers(title="store commands", metavar="COMMAND")
    migrate = commands.add_parser(
        "migrate",
        help="apply the schema migrations the store lacks (run as the database's owner)",
        description="Apply, in one transaction, every schema migration the decision store lacks.",
    )
    migrate.add_argument(
        "--store", metavar="URL",
        help=f"sqlite:///FILE or postgresql://… (default: $FAIRPATH_STORE, else {DEFAULT_STORE})",
    )
    migrate.set_defaults(func=_migrate)


def _migrate(args: argparse.Namespace) -> int:
    # Imported here so the other commands do not pay for loading the store's drivers.
    from fairpath.audit.postgres import describe  # noqa: PLC0415
    from fairpath.audit.store import migrate_store  # noqa: PLC0415

    url = args.store or os.environ.get("FAIRPATH_STORE") or DEFAULT_STORE
    try:
        version, applied = migrate_store(url)
    except StoreError as error:
        sys.stderr.write(f"fairpath store migrate: error: {error}\n")
        return _EXIT_FAILED
    steps = ", ".join(f"{m.version} ({m.name})" for m in applied)
    where = url if url.startswith("sqlite") else describe(url)  # a PostgreSQL URL may hold a password
    sys.stdout.write(f"{where}: schema version {version}, {f'applied {steps}' if steps else 'already up to date'}.\n")
    return 0


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2
