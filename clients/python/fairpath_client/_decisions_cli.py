"""``fairpath decisions``: review the decision audit trail from the command line.

::

    fairpath decisions list   [FILTERS] [--newest-first] [--page-size N] [--page-token T | --all] [--json]
    fairpath decisions show   DECISION_ID [--json]
    fairpath decisions export [FILTERS] --format jsonl|csv [--output FILE]
    fairpath decisions outcome DECISION_ID --action ACTION --reviewer WHO [--reason WHY]
    fairpath decisions verify [--checkpoint FILE ... [--public-key FILE]] [--json]
    fairpath decisions checkpoint [--output FILE]

FILTERS: ``--since`` / ``--until`` (ISO 8601; a time without a zone is UTC),
``--policy``, ``--version`` (the recorded version), ``--status``, ``--pathway``,
``--rule-fired``, ``--incident-ref``, ``--staff-ref``, ``--action-ref``.

Exit codes as the other commands (0 done, 1 failure, 2 bad request, 3 no such
decision), plus :data:`EXIT_CHAIN_BROKEN` when ``verify`` finds a broken link or
a checkpoint the trail no longer contains. ``checkpoint`` prints the signed line on
standard output (and appends it to ``--output``), what it signs on standard error.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TextIO

from fairpath_client._client import FairpathClient
from fairpath_client._errors import DecisionNotFoundError, FairpathClientError, InvalidRequestError
from fairpath_client._records import DecisionFilter, DecisionRecord
from fairpath_client._render_records import (
    CSV_COLUMNS,
    csv_row,
    render_chain_report,
    render_record,
    render_records,
)
from fairpath_client._term import Work, working

#: Exit code of ``verify`` when the chain is broken (the trail was altered or records are missing).
EXIT_CHAIN_BROKEN = 4
#: Checkpoints sent per VerifyChain call (the service's limit); a longer file takes several calls.
CHECKPOINTS_PER_CALL = 1000
#: Deadline of ``export`` and ``verify`` (which walk the whole trail) unless ``--timeout`` says otherwise.
LONG_TIMEOUT = 600.0
_EXIT_INVALID = 2
_EXIT_NOT_FOUND = 3

Connect = Callable[[argparse.Namespace], FairpathClient]
Report = Callable[[FairpathClientError, argparse.Namespace], int]


def add_decision_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    connect: Connect,
    report: Report,
) -> None:
    """Register ``decisions`` and its subcommands.

    Args:
        subparsers: The top-level subcommands.
        common: The parent parser with target, timeout, ``--json`` and credential options.
        connect: Opens a client from the parsed options.
        report: Prints a failed call and returns its exit code (for errors without their own code here).

    """
    decisions = subparsers.add_parser(
        "decisions", help="review the decision audit trail", description=__doc__.split("\n\n")[0].replace("``", "")
    )
    decisions.set_defaults(func=lambda _: _usage(decisions))
    commands = decisions.add_subparsers(title="decisions commands", metavar="COMMAND")

    listing = commands.add_parser(
        "list", parents=[common], help="list recorded decisions, oldest first (or --newest-first)"
    )
    _add_filters(listing)
    listing.add_argument("--page-size", type=int, default=0, metavar="N", help="records per page (max 500)")
    listing.add_argument("--page-token", default="", metavar="TOKEN", help="continue after a previous page")
    listing.add_argument(
        "--newest-first", action="store_true",
        help="most recently recorded first (a page token continues only the order it came from)",
    )
    listing.add_argument("--all", action="store_true", help="follow every page")

    show = commands.add_parser("show", parents=[common], help="show one decision, its walk and outcomes")
    show.add_argument(
        "decision_id", metavar="DECISION_ID",
        help="the decision's id, or its first 8 or more characters (an ambiguous prefix lists the matches)",
    )

    export = commands.add_parser("export", parents=[common], help="stream matching decisions as JSONL or CSV")
    _add_filters(export)
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="output format")
    export.add_argument("--output", metavar="FILE", help="write here instead of standard output")

    outcome = commands.add_parser("outcome", parents=[common], help="record what people finally did")
    outcome.add_argument("decision_id", metavar="DECISION_ID", help="the decision's full id")
    outcome.add_argument("--action", required=True, metavar="ACTION", help="action taken, ideally a pathway code")
    outcome.add_argument("--reviewer", required=True, metavar="WHO", help="who decided (required; recorded as given)")
    outcome.add_argument(
        "--reason", default="", metavar="WHY", help="why, above all when departing from the recommendation"
    )

    verify = commands.add_parser("verify", parents=[common], help="check the whole hash chain")
    verify.add_argument(
        "--checkpoint", action="append", default=[], metavar="FILE",
        help="file of signed checkpoints, one per line, that the trail must still contain (repeatable)",
    )
    verify.add_argument(
        "--public-key", metavar="FILE",
        help="PEM public key the checkpoints must be signed with (default: trust the server's own key)",
    )

    checkpoint = commands.add_parser(
        "checkpoint", parents=[common], help="have the service sign the chain head, to keep elsewhere"
    )
    checkpoint.add_argument("--output", metavar="FILE", help="also append the signed line to this file")

    runs = {
        listing: _list, show: _show, export: _export, outcome: _outcome, verify: _verify, checkpoint: _checkpoint,
    }
    for parser, run in runs.items():
        parser.set_defaults(func=partial(_run, run, connect, report))


def _add_filters(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters")
    group.add_argument("--since", type=_moment, metavar="TIME", help="evaluated at or after (ISO 8601)")
    group.add_argument("--until", type=_moment, metavar="TIME", help="evaluated before (ISO 8601)")
    group.add_argument("--policy", default="", metavar="NAME", help="recorded under this policy")
    add_version_filter(group)
    group.add_argument("--status", choices=("DECIDED", "NEEDS_INFORMATION"), help="recorded status")
    group.add_argument("--pathway", default="", metavar="CODE", help="recorded pathway code")
    group.add_argument("--rule-fired", default="", metavar="RULE_ID", help="a rule that fired as recorded")
    group.add_argument("--incident-ref", default="", metavar="R", help="pseudonymous incident reference")
    group.add_argument("--staff-ref", default="", metavar="S", help="pseudonymous staff reference")
    group.add_argument("--action-ref", default="", metavar="A", help="pseudonymous action reference")


def add_version_filter(group: argparse._ActionsContainer, *old_spellings: str) -> None:
    """``--version V``: decisions recorded under this version; ``--policy-version`` (and ``old_spellings``) too.

    Every command means the same by it (``--candidate`` is the version a replay evaluates against).
    The old spellings are hidden from ``--help``, warn when used, and go in the next release.
    """
    group.add_argument("--version", default="", metavar="V", help="recorded under this policy version")
    for spelling in ("--policy-version", *old_spellings):
        group.add_argument(
            spelling, dest="version", default="", metavar="V", action=DeprecatedAlias, new="--version",
            help=argparse.SUPPRESS,
        )


class DeprecatedAlias(argparse.Action):
    """An old spelling of an option: stores into the new option's ``dest``, with a warning on stderr."""

    def __init__(self, option_strings: list[str], dest: str, new: str = "", **kwargs: object) -> None:
        super().__init__(option_strings, dest, **kwargs)  # type: ignore[arg-type]
        self.new = new

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
        option_string: str | None = None,
    ) -> None:
        """Store the value and say which spelling replaces this one."""
        sys.stderr.write(f"warning: {option_string} is deprecated and goes in the next release; use {self.new}\n")
        setattr(namespace, self.dest, values)


def _filter(args: argparse.Namespace) -> DecisionFilter:
    return DecisionFilter(
        from_time=args.since, to_time=args.until, policy=args.policy, version=args.version,
        status=args.status, pathway=args.pathway, rule_fired=args.rule_fired,
        incident_ref=args.incident_ref, staff_ref=args.staff_ref, action_ref=args.action_ref,
    )


def _run(
    command: Callable[[FairpathClient, argparse.Namespace], int],
    connect: Connect,
    report: Report,
    args: argparse.Namespace,
) -> int:
    try:
        with connect(args) as client:
            return command(client, args)
    except InvalidRequestError as error:
        for violation in error.violations or ():
            sys.stderr.write(f"{violation.field}: {violation.description}\n")
        if not error.violations:
            sys.stderr.write(f"error: {error}\n")
        return _EXIT_INVALID
    except DecisionNotFoundError as error:
        sys.stderr.write(f"error: {error}\n")
        return _EXIT_NOT_FOUND
    except FairpathClientError as error:
        return report(error, args)


def _list(client: FairpathClient, args: argparse.Namespace) -> int:
    query, token = _filter(args), args.page_token
    while True:
        page = client.list_decisions(query, page_size=args.page_size, page_token=token, newest_first=args.newest_first)
        if args.json:
            sys.stdout.writelines(json.dumps(record.to_dict()) + "\n" for record in page.records)
        else:
            sys.stdout.write(render_records(page.records))
        token = page.next_page_token
        if not token or not args.all:
            break
    if token and not args.json:
        again = " --newest-first" if args.newest_first else ""
        sys.stdout.write(f"More decisions match: add{again} --page-token {token} (or use --all).\n")
    return 0


def _show(client: FairpathClient, args: argparse.Namespace) -> int:
    record = client.get_decision(args.decision_id)
    sys.stdout.write(json.dumps(record.to_dict(), indent=2) + "\n" if args.json else render_record(record))
    return 0


def _export(client: FairpathClient, args: argparse.Namespace) -> int:
    records = client.export_decisions(_filter(args), timeout=_long(args))
    with working("Exporting decisions") as work:
        if args.output:
            with Path(args.output).open("w", encoding="utf-8", newline="") as out:
                count = _write(records, args.format, out, work)
        else:
            count = _write(records, args.format, sys.stdout, work)
    sys.stderr.write(f"exported {count} decision(s)\n")
    return 0


def _write(records: Iterable[DecisionRecord], fmt: str, out: TextIO, work: Work | None = None) -> int:
    count = 0
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(CSV_COLUMNS)
    for record in records:
        if writer is not None:
            writer.writerow(csv_row(record))
        else:
            out.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
        count += 1
        if work is not None:
            work.advance()
    return count


def _outcome(client: FairpathClient, args: argparse.Namespace) -> int:
    recorded = client.record_outcome(args.decision_id, args.action, args.reviewer, args.reason)
    if args.json:
        sys.stdout.write(json.dumps(recorded.to_dict(), indent=2) + "\n")
    else:
        departs = "; it departs from the recommendation" if recorded.departs_from_recommendation else ""
        sys.stdout.write(
            f"Outcome recorded for decision {recorded.decision_id}: {recorded.action_taken}, by "
            f"{recorded.reviewer}{departs} (trail record #{recorded.sequence}).\n"
        )
    return 0


def _verify(client: FairpathClient, args: argparse.Namespace) -> int:
    try:
        lines = [line.strip() for path in args.checkpoint for line in _read(path).splitlines() if line.strip()]
        public_key = _read(args.public_key) if args.public_key else ""
    except OSError as error:
        sys.stderr.write(f"error: cannot read {error.filename}: {error.strerror}\n")
        return _EXIT_INVALID
    except UnicodeDecodeError:
        sys.stderr.write("error: a checkpoint or public key file is not UTF-8 text\n")
        return _EXIT_INVALID
    if "PRIVATE KEY" in public_key:
        # Never send a private key over the wire, even to our own service.
        sys.stderr.write(f"error: {args.public_key} holds a private key: give its public key (the .pub file)\n")
        return _EXIT_INVALID
    if args.checkpoint and not lines:
        sys.stderr.write("error: the checkpoint file(s) hold no checkpoint\n")
        return _EXIT_INVALID
    # Each call walks the whole chain and checks its share of the checkpoints; no checkpoints: one call.
    batches = [lines[i:i + CHECKPOINTS_PER_CALL] for i in range(0, len(lines), CHECKPOINTS_PER_CALL)] or [[]]
    verified = 0
    with working("Verifying the hash chain", total=len(batches) if len(batches) > 1 else None) as work:
        for batch in batches:
            report = client.verify_chain(checkpoints=batch, public_key=public_key, timeout=_long(args))
            verified += report.checkpoints_verified
            work.advance()
            if not report.intact:
                break
        else:
            report = dataclasses.replace(report, checkpoints_verified=verified)
    sys.stdout.write(json.dumps(report.to_dict()) + "\n" if args.json else render_chain_report(report))
    return 0 if report.intact else EXIT_CHAIN_BROKEN


def _checkpoint(client: FairpathClient, args: argparse.Namespace) -> int:
    signed = client.create_checkpoint()
    # The line alone on stdout, so `>> checkpoints.jsonl` or a pipe to a shipper keeps it intact.
    sys.stdout.write(signed.line + "\n")
    sys.stderr.write(
        f"Checkpoint of record {signed.sequence} (head {signed.head_hash[:16]}…) signed "
        f"{signed.signed_at.isoformat()} by key {signed.key_id}.\n"
    )
    if args.output:
        try:
            with Path(args.output).open("a", encoding="utf-8") as out:
                out.write(signed.line + "\n")
        except OSError as error:
            sys.stderr.write(f"error: cannot append to {args.output}: {error.strerror}\n")
            return 1
    return 0


def _read(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")


def _long(args: argparse.Namespace) -> float:
    # --timeout is shared by every command (one argparse action, default None = not given); export,
    # verify, replay and stats walk the whole trail and take the long deadline unless told otherwise.
    return LONG_TIMEOUT if args.timeout is None else float(args.timeout)


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        msg = f"expected an ISO 8601 date or time, e.g. 2026-11-01 or 2026-11-01T09:00:00+00:00, not {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return _EXIT_INVALID
