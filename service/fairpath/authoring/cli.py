"""``fairpath policy test | lint | diff | graph``: the author tools, run offline on policy files.

They read files directly (no server), build throwaway evaluators around the
real engine, and print plain text for a terminal or a CI log. Each command's
handler returns its exit code:

* ``test`` -- 0 when every case passes and every rule outcome, advice, check
  and pathway is exercised; 1 otherwise (or a file does not load);
* ``lint`` -- 0 when no file has an error (warnings are printed, not fatal); 1 otherwise;
* ``diff`` -- 0 when the versions decide alike everywhere, 1 when they differ
  (like ``diff(1)``);
* ``graph`` -- 0, having printed the version's flowchart (Mermaid or SVG);
* 2 -- the path, policy or version is not there, or a usage error.

:func:`add_commands` registers them on the ``fairpath policy`` group, beside
``lock`` (:mod:`fairpath.policy.lock_command`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from fairpath_client._term import output_width, table

from fairpath.authoring.space import MAX_COMBINATIONS, SAMPLES, SEED
from fairpath.errors import FairpathError, PolicyFileError
from fairpath.flowchart import policy_flowchart, with_requirements
from fairpath.policy.cases import CasesReport, cases_file, load_cases
from fairpath.policy.loader import load_file
from fairpath.policy.model import Policy
from fairpath.policy.registry import TESTS_SUFFIX, PolicyRegistry, policy_files
from fairpath.policy.requirements import with_required
from fairpath.problems import Problem

if TYPE_CHECKING:
    from fairpath.authoring.diff import PolicyDiff
    from fairpath.engine.protocol import Engine

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_MISSING = 2
DEFAULT_DIR = "policies"
POLICIES_ENV = "FAIRPATH_POLICIES"

Subparsers = argparse._SubParsersAction  # argparse has no public name for it

# _heavy: the engine (durable_rules) is imported inside the handlers, so that mounting these commands
# costs the other `fairpath` commands (evaluate, policies) nothing.


def add_commands(commands: Subparsers[argparse.ArgumentParser]) -> None:
    """Register ``test``, ``lint`` and ``diff`` on the ``fairpath policy`` subcommands."""
    path_help = ("a policy file, a policy's directory or the whole policies directory "
                 "(default: $FAIRPATH_POLICIES, else ./policies)")

    test = commands.add_parser(
        "test", help="run each version's test cases and report coverage",
        description="Run the cases in <version>.tests.yaml beside each policy version through the real "
        "engine, print failures and a coverage table, and fail if a case fails or a rule outcome, advice, "
        "check or pathway is never exercised.",
    )
    test.add_argument("path", nargs="?", metavar="PATH", help=path_help)
    test.add_argument("-q", "--quiet", action="store_true",
                      help="print only failures, items never exercised and totals")
    test.set_defaults(func=run_test)

    lint = commands.add_parser(
        "lint", help="find errors and suspicious constructs in policy files",
        description="Check policy files: load errors, unused facts, unknown advice codes, unreachable "
        "rules and pathways, dead branches, answers that lead nowhere, overlapping conditions, advice that "
        "never fires, and gaps found by enumerating every combination of the answers the walk reads.",
    )
    lint.add_argument("path", nargs="?", metavar="PATH", help=path_help)
    lint.add_argument("--max-combinations", type=_positive, default=MAX_COMBINATIONS, metavar="N",
                      help="refuse to enumerate more classes of answers than this (default: %(default)s)")
    lint.add_argument("--show-accepted", action="store_true",
                      help="also list the findings accepted in <version>.accepted.yaml, each with its reason "
                      "(by default they are only counted)")
    lint.set_defaults(func=run_lint)

    diff = commands.add_parser(
        "diff", help="show the answers on which two versions decide differently",
        description="Enumerate every combination of answers of two versions' facts and print, grouped by "
        "pathway change and advice added or removed, those on which the versions differ.",
    )
    diff.add_argument("name", metavar="NAME", help="the policy name")
    diff.add_argument("old", metavar="A", help="the version to compare from")
    diff.add_argument("new", metavar="B", help="the version to compare to")
    diff.add_argument("--dir", metavar="DIR",
                      help="the policies directory (default: $FAIRPATH_POLICIES, else ./policies)")
    diff.add_argument("--max-combinations", type=_positive, default=MAX_COMBINATIONS, metavar="N",
                      help="enumerate up to this many classes of answers, else sample (default: %(default)s)")
    diff.add_argument("--samples", type=_positive, default=SAMPLES, metavar="N",
                      help="combinations drawn when sampling (default: %(default)s)")
    diff.add_argument("--seed", type=int, default=SEED, help="seed of the sample (default: %(default)s)")
    diff.set_defaults(func=run_diff)

    graph = commands.add_parser(
        "graph", help="draw a version's walk as a flowchart (Mermaid or SVG)",
        description="Print the flowchart of a policy version: questions with their wording, gates, and exits "
        "with pathway codes. Mermaid text renders in GitHub and GitLab reviews; SVG stands alone.",
    )
    graph.add_argument("policy", metavar="NAME[@VERSION]", help="the policy, and a version (default: the current)")
    graph.add_argument("--format", choices=("mermaid", "svg"), default="mermaid",
                       help="output format (default: %(default)s)")
    graph.add_argument("--dir", metavar="DIR",
                       help="the policies directory (default: $FAIRPATH_POLICIES, else ./policies)")
    graph.set_defaults(func=run_graph)


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return value


def _root(given: str | None) -> Path:
    return Path(given or os.environ.get(POLICIES_ENV) or DEFAULT_DIR)


def _say(*lines: str) -> None:
    sys.stdout.write("".join(f"{line}\n" for line in lines))


def _complain(command: str, message: str) -> int:
    sys.stderr.write(f"fairpath policy {command}: error: {message}\n")
    return EXIT_MISSING


def policy_paths(path: Path) -> list[Path]:
    """Return the policy files ``path`` names: itself, the one a tests file belongs to, or those under it."""
    if path.is_dir():
        return policy_files(path)
    if path.name.endswith(TESTS_SUFFIX):
        return [path.with_name(path.name.removesuffix(TESTS_SUFFIX) + ".yaml")]
    return [path]


# --- test ------------------------------------------------------------------------------------


def run_test(args: argparse.Namespace) -> int:
    """Run ``fairpath policy test``."""
    root = _root(args.path)
    if not root.exists():
        return _complain("test", f"{root} does not exist")
    paths = policy_paths(root)
    if not paths:
        return _complain("test", f"no policy files under {root}")
    from fairpath.engine.durable import DurableEngine  # noqa: PLC0415 - see _heavy

    engine = DurableEngine()  # one engine for every version; each evaluator unloads its own on close
    failed = [path for path in paths if not _test_one(path, engine, quiet=args.quiet)]
    _say(f"{len(paths)} policy version(s): {len(paths) - len(failed)} passed, {len(failed)} failed")
    return EXIT_FAILED if failed else EXIT_OK


def _test_one(path: Path, engine: Engine, *, quiet: bool) -> bool:
    from fairpath.problems import Problem  # noqa: PLC0415 - see _heavy
    from fairpath.serving.gate import run_cases, trial_evaluator  # noqa: PLC0415 - see _heavy

    try:
        policy = load_file(path)
        tests = cases_file(path)
        if not tests.exists():
            raise PolicyFileError(f"no test cases: write them in {tests.name}", path=str(tests))
        cases = load_cases(tests.read_bytes(), policy, str(tests))
        # A chained policy's cases run through what it requires, from the same policy directory.
        required = with_required(policy)
    except (FairpathError, OSError) as error:
        _say(f"{path}", f"  FAIL  {error}", "")
        return False
    evaluator = trial_evaluator(policy, engine, required=required)
    if isinstance(evaluator, Problem):
        _say(f"{path}", f"  FAIL  {evaluator}", "")
        return False
    try:
        report = run_cases(
            evaluator.compiled(policy),
            cases,
            lambda facts: evaluator.evaluate(policy.name, facts, version=policy.version),
        )
    finally:
        evaluator.close()
    _say(*render_report(policy, report, quiet=quiet), "")
    return report.ok


def render_report(policy: Policy, report: CasesReport, *, quiet: bool = False) -> list[str]:
    """Return the lines ``policy test`` prints for one version: failures, coverage table, verdict."""
    lines = [f"{policy.key}  {policy.path}",
             f"  {len(report.cases)} case(s): {report.passed} passed, {report.failed} failed"]
    for case in report.cases:
        if not case.passed:
            lines.append(f"  FAIL  {case.name}")
            lines.extend(f"          {failure}" for failure in case.failures)
    lines.append(f"  coverage: {len(report.coverage) - len(report.uncovered)} of {len(report.coverage)} "
                 "items exercised")
    shown = report.uncovered if quiet else report.coverage
    if shown:
        width = max(len("item"), *(len(item.item) for item in shown))
        lines.append(f"    {'item':<{width}}  {'kind':<7}  {'hits':>5}")
        for item in shown:
            mark = "  ← never exercised" if item.hits == 0 else ""
            lines.append(f"    {item.item:<{width}}  {item.kind:<7}  {item.hits:>5}{mark}")
    verdict = []
    if report.failed:
        verdict.append(f"{report.failed} case(s) failed")
    if report.uncovered:
        verdict.append(f"{len(report.uncovered)} item(s) never exercised")
    if not report.cases:
        verdict.append("no cases")
    lines.append("  FAIL: " + ", ".join(verdict) if verdict else "  PASS")
    return lines


# --- lint ------------------------------------------------------------------------------------


def run_lint(args: argparse.Namespace) -> int:
    """Run ``fairpath policy lint``."""
    root = _root(args.path)
    if not root.exists():
        return _complain("lint", f"{root} does not exist")
    paths = policy_paths(root)
    if not paths:
        return _complain("lint", f"no policy files under {root}")
    from fairpath.authoring.accepted import accepted_path, apply_accepted, load_accepted  # noqa: PLC0415
    from fairpath.authoring.lint import lint_file  # noqa: PLC0415 - see _heavy

    errors = warnings = accepted_total = 0
    for path in paths:
        report = lint_file(path, limit=args.max_combinations)
        sidecar = accepted_path(path)
        try:
            report, accepted = apply_accepted(report, load_accepted(sidecar), sidecar)
        except PolicyFileError as error:
            report, accepted = dataclasses.replace(report, problems=(*report.problems, Problem.from_error(
                error, check="accepted-file"))), []
        errors += len(report.errors)
        warnings += len(report.warnings)
        accepted_total += len(accepted)
        title = f"{path}  ({report.policy.key})" if report.policy else f"{path}"
        shown = [
            f"  {item.problem}\n" + "\n".join(textwrap.wrap(
                f"accepted in {sidecar.name}: {item.reason}", 100, initial_indent=" " * 6,
                subsequent_indent=" " * 8, break_long_words=False, break_on_hyphens=False))
            for item in accepted
        ] if args.show_accepted else []
        counts = f"  {_count(len(report.errors), 'error')}, {_count(len(report.warnings), 'warning')}"
        _say(title, *(f"  {note}" for note in report.notes),
             *(f"  {problem}" for problem in report.problems), *shown,
             counts + (f", {len(accepted)} accepted" if accepted else ""), "")
    hint = "" if args.show_accepted or not accepted_total else " (--show-accepted lists them with their reasons)"
    _say(f"{len(paths)} file(s): {_count(errors, 'error')}, {_count(warnings, 'warning')}"
         + (f", {accepted_total} accepted{hint}" if accepted_total else ""))
    return EXIT_FAILED if errors else EXIT_OK


def _count(number: int, noun: str, plural: str = "") -> str:
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"


# --- diff ------------------------------------------------------------------------------------


def run_diff(args: argparse.Namespace) -> int:
    """Run ``fairpath policy diff``."""
    root = _root(args.dir)
    if not root.is_dir():
        return _complain("diff", f"{root} is not a directory")
    from fairpath.authoring.diff import diff_policies  # noqa: PLC0415 - see _heavy

    try:
        old, new = (find_version(root, args.name, version) for version in (args.old, args.new))
        found = diff_policies(old, new, limit=args.max_combinations, samples=args.samples, seed=args.seed)
    except FairpathError as error:
        return _complain("diff", str(error))
    _say(*render_diff(found))
    return EXIT_FAILED if found.groups else EXIT_OK


def _wrap(items: list[str], width: int = 100) -> list[str]:
    """Join ``items`` with ", " into indented lines, never breaking inside one ("fact = VALUE")."""
    lines: list[str] = []
    current = " " * 9 + items[0]
    for index, item in enumerate(items[1:]):
        piece = (" " if index == 0 else ", ") + item
        if len(current) + len(piece) > width:
            lines.append(current + ("," if index else ""))
            current = " " * 14 + item
        else:
            current += piece
    return [*lines, current]


def find_version(root: Path, name: str, version: str) -> Policy:
    """Load ``name`` at ``version`` from under ``root`` (``<root>/<name>/<version>.yaml`` first).

    Raises:
        PolicyFileError: the file does not load, or no file holds that version.

    """
    usual = root / name / f"{version}.yaml"
    if usual.is_file():
        policy = load_file(usual)
        if (policy.name, policy.version) == (name, version):
            return policy
    folder = root / name
    for path in policy_files(folder if folder.is_dir() else root):
        try:
            policy = load_file(path)
        except PolicyFileError:
            continue  # another version's broken file does not stop this diff
        if (policy.name, policy.version) == (name, version):
            return policy
    raise PolicyFileError(f"no policy file holds {name}@{version}", path=str(root))


def run_graph(args: argparse.Namespace) -> int:
    """Print the flowchart of ``NAME[@VERSION]`` (:mod:`fairpath.flowchart`); 2 if it is not there."""
    name, _, version = args.policy.partition("@")
    try:
        root = _root(args.dir)
        # The policy's own folder when there is one: another policy's broken file does not stop this.
        policy = PolicyRegistry.from_directory(root / name if (root / name).is_dir() else root).get(name, version)
    except FairpathError as error:
        return _complain("graph", str(error))
    chart = policy_flowchart(policy)
    mermaid = args.format == "mermaid"
    sys.stdout.write(with_requirements(chart.to_mermaid(), policy) if mermaid else chart.to_svg(standalone=True) + "\n")
    return EXIT_OK


def render_diff(found: PolicyDiff) -> list[str]:
    """Return the lines ``policy diff`` prints.

    First what a reviewer acts on: per outcome of the old version, how many distinct walks (routes
    through its questions) end there and how many of them end differently in the new one, and where.
    Then each change with example answers. The share of all combinations of answers comes last,
    labelled for what it is: every combination of every fact's values counted alike, however
    unlikely, so a change on a route few combinations take (every "No" at one late question) can be
    a tiny share and still change most real cases.
    """
    lines = [f"{found.name} {found.old} → {found.new}"]
    if found.sampled:
        lines.append(f"too many classes of answers to enumerate: sampled {found.evaluated:,} of the "
                     f"{found.total:,} combinations of {len(found.facts)} facts at random "
                     f"(seed {found.seed}); walks and counts are those of the sample")
    else:
        lines.append(f"enumerated {found.evaluated:,} classes of answers covering all {found.total:,} "
                     f"combinations of {len(found.facts)} facts")
    if not found.groups and found.sampled:
        return [*lines, f"no differences among the {found.evaluated:,} combinations sampled"]
    if not found.groups:
        return [*lines, "no differences: the versions reach the same outcome and advice on every combination"]
    walks = sum(p.walks for p in found.by_pathway)
    changed = sum(p.changed for p in found.by_pathway)
    lines += ["", f"{changed} of the {walks} distinct walks of {found.old} (routes through its questions) end "
              f"differently in {found.new}:", ""]
    rows = [[f"OUTCOME IN {found.old}", "WALKS", "CHANGED", f"NOW, IN {found.new} (WALKS)"]]
    rows += [
        [p.pathway, str(p.walks), str(p.changed), ", ".join(f"{now} ({n})" for now, n in p.now) or "-"]
        for p in found.by_pathway
    ]
    lines += ["  " + line for line in table(rows, width=output_width() - 2)]
    lines += ["", f"The {len(found.groups)} change(s), with example answers:"]
    for group in found.groups:
        advice = " ".join([*(f"+{code}" for code in group.added), *(f"-{code}" for code in group.removed)])
        change = f"{group.before} → {group.after}" if group.before != group.after else \
            f"{group.before} (same pathway)"
        lines.extend(["", change + (f"; advice {advice}" if advice else "")])
        for outcomes, answers in group.examples:
            lines.append(f"    e.g. {outcomes}")
            lines.extend(_wrap(["when", *answers] if answers else ["whatever the answers"]))
    share = 100 * found.differing / found.total if found.total else 0.0
    estimated = "an estimate from the sample, " if found.sampled else ""
    raw = (f"Raw combination share: {found.differing:,} of all {found.total:,} combinations of answers "
           f"({share:.3g}%; {estimated}every combination of every fact's values counted alike, however "
           "unlikely; not a share of real cases: replay recorded decisions for that)")
    return [*lines, "", *textwrap.wrap(raw, 100, break_long_words=False, break_on_hyphens=False)]

