"""``fairpath replay`` and ``fairpath stats``: the impact of a policy change, and fairness monitoring.

::

    fairpath replay --candidate V [--policy NAME] [FILTERS] [--max-changed N]
                    [--period P] [--reference-group G] [--json]
    fairpath stats  [--policy NAME] [--version V] [--since T] [--until T]
                    [--period month|quarter|year|all] [--reference-group G] [--json]

``replay`` re-evaluates recorded decisions against a candidate version (the
service records nothing) and prints the pathway transition matrix, the rules
whose firing changed, the decisions that change and the fairness figures of
the recorded and the candidate outcomes. ``--policy`` names the candidate and
also selects the decisions recorded under it; FILTERS narrow them further:
``--since`` / ``--until`` (ISO 8601; no zone means UTC), ``--version`` (the recorded one),
``--status``, ``--pathway``, ``--rule-fired``, ``--incident-ref``,
``--staff-ref``, ``--action-ref``.

``stats`` prints pathway counts by professional group and by equality group,
and the relative likelihood of an individual-directed pathway per equality
group (ratio with 95% interval, flagged outside 0.8 to 1.25); counts under 10
print as ``<10``.

Exit codes as ``fairpath decisions``: 0 done, 1 failure, 2 bad request, 3 no
such policy version.
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial

from fairpath_client._client import FairpathClient
from fairpath_client._decisions_cli import Connect, DeprecatedAlias, Report, _long, _moment, _run, add_version_filter
from fairpath_client._records import DecisionFilter
from fairpath_client._render_impact import render_replay, render_stats
from fairpath_client._term import working

_PERIODS = ("all", "year", "quarter", "month")


def add_impact_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    connect: Connect,
    report: Report,
) -> None:
    """Register ``replay`` and ``stats``.

    Args:
        subparsers: The top-level subcommands.
        common: The parent parser with target, timeout, ``--json`` and credential options.
        connect: Opens a client from the parsed options.
        report: Prints a failed call and returns its exit code.

    """
    replay = subparsers.add_parser(
        "replay", parents=[common], help="replay recorded decisions against another policy version",
        description="Re-evaluate recorded decisions against a candidate policy version and report the impact."
        " Nothing is recorded.",
    )
    replay.add_argument(
        "--candidate", default="", metavar="V", help="the version to replay against (required; it must be loaded)"
    )
    replay.add_argument(
        "--policy", default="", metavar="NAME",
        help="the candidate policy, and only its decisions (default: each decision's own policy)",
    )
    filters = replay.add_argument_group("filters")
    filters.add_argument("--since", type=_moment, metavar="TIME", help="evaluated at or after (ISO 8601)")
    filters.add_argument("--until", type=_moment, metavar="TIME", help="evaluated before (ISO 8601)")
    add_version_filter(filters)
    filters.add_argument(  # replay's old name of --version, with its own dest: see _replay
        "--recorded-version", dest="recorded_version", default="", metavar="V", action=DeprecatedAlias,
        new="--version", help=argparse.SUPPRESS,
    )
    filters.add_argument("--status", choices=("DECIDED", "NEEDS_INFORMATION"), help="recorded status")
    filters.add_argument("--pathway", default="", metavar="CODE", help="recorded pathway")
    filters.add_argument("--rule-fired", default="", metavar="RULE_ID", help="a rule that fired as recorded")
    filters.add_argument("--incident-ref", default="", metavar="R", help="pseudonymous incident reference")
    filters.add_argument("--staff-ref", default="", metavar="S", help="pseudonymous staff reference")
    filters.add_argument("--action-ref", default="", metavar="A", help="pseudonymous action reference")
    replay.add_argument("--max-changed", type=int, default=0, metavar="N", help="changed decisions to list")
    _add_figures(replay)
    replay.set_defaults(func=partial(_run, _replay, connect, report))

    stats = subparsers.add_parser(
        "stats", parents=[common], help="fairness figures of recorded decisions",
        description="Pathway counts by professional and equality group, and the relative likelihood of"
        " individual-directed pathways between equality groups; counts under 10 are suppressed.",
    )
    stats.add_argument("--policy", default="", metavar="NAME", help="only decisions recorded under this policy")
    add_version_filter(stats)
    stats.add_argument("--since", type=_moment, metavar="TIME", help="evaluated at or after (ISO 8601)")
    stats.add_argument("--until", type=_moment, metavar="TIME", help="evaluated before (ISO 8601)")
    _add_figures(stats)
    stats.set_defaults(func=partial(_run, _stats, connect, report))


def _add_figures(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--period", choices=_PERIODS, default="all", help="one set of figures per period")
    parser.add_argument(
        "--reference-group", default="", metavar="G",
        help="the equality group others are compared with (default: the largest)",
    )


def _replay(client: FairpathClient, args: argparse.Namespace) -> int:
    candidate, recorded = args.candidate, args.recorded_version or args.version
    if not candidate and args.version:
        # Until the next release, `replay --version V` without --candidate keeps its old meaning, the candidate
        # (the recorded version then comes from the old --recorded-version, if given).
        sys.stderr.write("warning: replay --version V without --candidate is deprecated and goes in the next "
                         "release: write --candidate V (--version now selects the recorded version, as in "
                         "every other command)\n")
        candidate, recorded = args.version, args.recorded_version
    if not candidate:
        sys.stderr.write("error: replay needs --candidate V, the version to replay the decisions against\n")
        return 2
    query = DecisionFilter(
        from_time=args.since, to_time=args.until, version=recorded, status=args.status,
        pathway=args.pathway, rule_fired=args.rule_fired, incident_ref=args.incident_ref,
        staff_ref=args.staff_ref, action_ref=args.action_ref,
    )
    with working("Replaying recorded decisions"):
        report = client.replay_decisions(
            args.policy, candidate, query, max_changed=args.max_changed, period=args.period,
            reference_group=args.reference_group, timeout=_long(args),
        )
    sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n" if args.json else render_replay(report))
    return 0


def _stats(client: FairpathClient, args: argparse.Namespace) -> int:
    with working("Computing the figures over the trail"):
        figures = client.outcome_stats(
            args.policy, args.version, since=args.since, until=args.until, period=args.period,
            reference_group=args.reference_group, timeout=_long(args),
        )
    if args.json:
        sys.stdout.write(json.dumps(figures.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(render_stats(figures.slices, figures.suppression_threshold))
    return 0
