"""Issue 10's views and vocabulary, through the real ``fairpath`` CLI against a real server process.

``policies`` and ``policies show`` (served and offline), decision id prefixes, the
unknown reference group, ``decisions outcome``'s wording, one option vocabulary
(``--policy`` / ``--version`` / ``--candidate``, old spellings still working),
tables that fit 100 columns when piped, and Ctrl-C.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fairpath.audit import open_store
from fairpath.audit.records import NewDecision
from fairpath.serving.evaluator import Evaluator

from tests.conftest import GUIDE
from tests.support.cli import run_fairpath
from tests.support.policy_dirs import add_version, copy_policies, lock
from tests.support.servers import ServerProcess

INCOMPLETE = {"is_patient_safety_incident": "YES"}
SUBSTANCE = {
    "is_patient_safety_incident": "YES", "individual_concern_raised": "YES", "safeguarding_concern": "NO",
    "intent_to_harm": "NO", "substance_abuse_indicated": "YES", "professional_group": "REGISTERED_NURSE",
}
#: Two recorded ids sharing their first 8 characters (an ambiguous prefix), and one other.
TWINS = ("abcdef12-0000-4000-8000-000000000001", "abcdef12-0000-4000-8000-000000000002")
SINGLE = "12345678-9abc-4def-8000-000000000003"


@dataclass(frozen=True)
class Served:
    """A server process over a copy of the guide's versions (plus a not-yet-effective 1.2.0) and a seeded trail."""

    target: str
    root: Path
    policies: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, evaluator: Evaluator) -> Iterator[Served]:
    """Serve the guide's versions and a trail holding TWINS and SINGLE (recorded through the store)."""
    root = tmp_path_factory.mktemp("views")
    policies = copy_policies(root / "policies", GUIDE)
    future = add_version(policies, GUIDE, "1.0.1", "1.2.0")
    text = future.read_text(encoding="utf-8")
    future.write_text(re.sub(r"^effective_from: .*$", "effective_from: 2999-01-01", text, count=1,
                             flags=re.MULTILINE), encoding="utf-8")
    lock(policies)
    url = f"sqlite:///{root / 'decisions.sqlite3'}"
    store = open_store(url)
    try:
        # SINGLE's facts are sent in reverse walk order, so `decisions show` must reorder them.
        reverse = dict(reversed(SUBSTANCE.items()))
        for decision_id, facts in ((TWINS[0], INCOMPLETE), (TWINS[1], INCOMPLETE), (SINGLE, reverse)):
            decision = dataclasses.replace(evaluator.evaluate(GUIDE, facts, version="1.0.0"), decision_id=decision_id)
            [stored] = store.append_decisions([NewDecision(decision, facts, (), 1, equality_group="G1")])
            assert not isinstance(stored, Exception)
    finally:
        store.close()
    with ServerProcess(policies, "--watch-seconds", "0", "--store", url, cwd=root) as server:
        server.wait_serving()
        yield Served(server.target, root, policies)


def fairpath(served: Served, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``fairpath ARGS --target`` the served process, as a shell would (output piped)."""
    return run_fairpath(*args, "--target", served.target, cwd=served.root)


# --- policies and policies show -----------------------------------------------------------------


def test_policies_lists_effective_dates_and_why_a_version_is_not_current(served: Served) -> None:
    """Each version's effective date, and for those not current why not: superseded, draft, not yet effective."""
    done = fairpath(served, "policies", "--json")
    assert done.returncode == 0, done.stderr
    listed = {p["version"]: (p["current"], p["not_current_reason"], p["effective_from"])
              for p in json.loads(done.stdout)}
    assert listed["1.0.1"][:2] == (True, "")
    assert listed["1.0.0"][:2] == (False, "superseded by 1.0.1")
    assert listed["1.1.0"][:2] == (False, "draft")
    assert listed["1.2.0"] == (False, "not yet effective (from 2999-01-01)", "2999-01-01")
    text = fairpath(served, "policies").stdout
    rows = {line.split()[1]: line.split() for line in text.splitlines() if line.startswith(GUIDE)}
    assert rows["1.2.0"][2:7] == ["active", "2999-01-01", "no", "(not", "yet"]  # the reason wraps in its column
    assert rows["1.1.0"][2:6] == ["draft", "2018-03-01", "no", "(draft)"]
    assert rows["1.0.1"][4] == "yes"
    assert text.splitlines()[0].split()[:5] == ["NAME", "VERSION", "STATUS", "EFFECTIVE", "CURRENT"]
    assert max(len(line) for line in text.splitlines()) <= 100


def test_policies_show_lists_the_questions_in_walk_order_with_types_values_and_wording(served: Served) -> None:
    """The current version: status, digest in full, questions in the order the walk asks them, pathways, advice."""
    done = fairpath(served, "policies", "show", GUIDE)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    lines = out.splitlines()
    assert lines[0].startswith(f"{GUIDE} 1.0.1: ")
    assert lines[1] == "  status active; current"
    detail = json.loads(fairpath(served, "policies", "show", GUIDE, "--json").stdout)
    assert f"  sha256 {detail['summary']['digest']}" in lines
    questions = lines[lines.index("Questions, in the order the walk asks them:") + 1:lines.index("Pathways:")]
    numbered = [line.split() for line in questions if re.match(r"^ +\d+\. ", line)]
    walk_order = ["is_patient_safety_incident", "safeguarding_concern", "individual_concern_raised", "intent_to_harm"]
    assert [words[1] for words in numbered[:4]] == walk_order
    assert [words[0] for words in numbered] == [f"{n}." for n in range(1, len(numbered) + 1)]
    first = questions.index("  1. is_patient_safety_incident  (answer)")
    assert questions[first + 1] == "       values: YES, NO, UNKNOWN"
    assert questions[first + 2].startswith("       Is this a patient safety incident")
    assert any(line.endswith("(answer, sensitive: masked in the trail)") for line in questions)
    assert "Pathways:" in lines
    assert any(line.startswith("JCG_B_SUBSTANCE_ABUSE ") for line in lines)
    assert "Advice codes:" in lines
    assert max(len(line) for line in lines) <= 100


def test_policies_show_a_pinned_version_and_the_mistakes(served: Served) -> None:
    """NAME@VERSION shows that version and why it is not current.

    An unknown version exits 3; a misspelt name gets the loaded one suggested.
    """
    done = fairpath(served, "policies", "show", f"{GUIDE}@1.1.0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1] == "  status draft; not current (draft)"
    missing = fairpath(served, "policies", "show", f"{GUIDE}@9.9.9")
    assert (missing.returncode, missing.stdout) == (3, "")
    assert "9.9.9" in missing.stderr
    misspelt = fairpath(served, "policies", "show", "nhs-just-culture")
    assert misspelt.returncode == 3
    assert f"did you mean `{GUIDE}`?" in misspelt.stderr


def test_offline_policies_show_and_list_read_the_files_as_the_server_does(served: Served) -> None:
    """``--policies DIR`` needs no server and prints what the server prints.

    A version the lock lacks is "not locked" offline (a server would refuse it).
    """
    for args in (("policies", "show", GUIDE), ("policies", "show", f"{GUIDE}@1.0.0"), ("policies",)):
        online = fairpath(served, *args)
        offline = run_fairpath(*args, "--policies", str(served.policies), cwd=served.root)
        assert offline.returncode == 0, offline.stderr
        assert offline.stdout == online.stdout
    add_version(served.policies, GUIDE, "1.0.1", "1.3.0")  # not locked; the server has no watcher
    try:
        listed = run_fairpath("policies", "--json", "--policies", str(served.policies), cwd=served.root)
        reasons = {p["version"]: p["not_current_reason"] for p in json.loads(listed.stdout)}
        assert reasons["1.3.0"] == "not locked"
        assert reasons["1.0.1"] == ""  # still current: the unlocked 1.3.0 would not be served
    finally:
        for suffix in (".yaml", ".tests.yaml"):
            (served.policies / GUIDE / f"1.3.0{suffix}").unlink()


# --- decisions, stats and outcomes ----------------------------------------------------------------


def test_decisions_show_takes_a_unique_prefix_and_lists_the_matches_of_an_ambiguous_one(served: Served) -> None:
    """8 characters of a unique id show the decision.

    A prefix two ids share exits 2 listing both; under 8 characters is not looked up as a prefix (exit 3, as an unknown
    id, saying how many characters a prefix needs).
    """
    unique = fairpath(served, "decisions", "show", SINGLE[:8])
    assert unique.returncode == 0, unique.stderr
    assert unique.stdout.startswith("DECIDED  JCG_B_SUBSTANCE_ABUSE")
    assert SINGLE in unique.stdout
    lines = unique.stdout.splitlines()
    start = lines.index("Facts as recorded, in the order the walk asked them") + 1
    assert [line.split()[0] for line in lines[start:start + 5]] == [  # the walk's order, not the sender's
        "is_patient_safety_incident", "individual_concern_raised", "safeguarding_concern", "intent_to_harm",
        "substance_abuse_indicated"]
    ambiguous = fairpath(served, "decisions", "show", TWINS[0][:8])
    assert (ambiguous.returncode, ambiguous.stdout) == (2, "")
    assert ambiguous.stderr.startswith("decision_id: the prefix abcdef12 matches several decisions: ")
    assert all(twin in ambiguous.stderr for twin in TWINS)
    short = fairpath(served, "decisions", "show", SINGLE[:7])
    assert short.returncode == 3
    assert "give the whole id or its first 8 characters or more" in short.stderr


def test_decisions_outcome_requires_a_reviewer_and_confirms_in_words(served: Served) -> None:
    """``--reviewer`` is required (usage error, exit 2, before any call).

    The confirmation names the decision, the action and the reviewer, and the trail position reads as a record number,
    not a count.
    """
    missing = fairpath(served, "decisions", "outcome", SINGLE, "--action", "JCG_B_SUBSTANCE_ABUSE")
    assert missing.returncode == 2
    assert "the following arguments are required: --reviewer" in missing.stderr
    helped = run_fairpath("decisions", "outcome", "--help", cwd=served.root)
    usage = " ".join(helped.stdout.split("positional arguments:")[0].split())
    assert "--action ACTION --reviewer WHO [--reason WHY]" in usage  # required: not in brackets
    done = fairpath(served, "decisions", "outcome", SINGLE, "--action", "JCG_B_SUBSTANCE_ABUSE",
                    "--reviewer", "hr-lead-2")
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(f"Outcome recorded for decision {SINGLE}: JCG_B_SUBSTANCE_ABUSE, by hr-lead-2 "
                        r"\(trail record #\d+\)\.\n", done.stdout), done.stdout
    prefix = fairpath(served, "decisions", "outcome", SINGLE[:8], "--action", "JCG_B_SUBSTANCE_ABUSE",
                      "--reviewer", "hr-lead-2")
    assert prefix.returncode == 3  # an outcome names its decision for good: the whole id, never a prefix
    assert "an outcome needs the whole id" in prefix.stderr


def test_one_vocabulary_old_spellings_still_work_with_a_warning(served: Served) -> None:
    """``--version`` is the recorded version in decisions list and stats.

    And in replay (whose candidate is ``--candidate``); ``--policy-version``, ``--recorded-version`` and replay's old
    ``--version`` still work, hidden from --help, each with a deprecation warning.
    """
    new = fairpath(served, "decisions", "list", "--policy", GUIDE, "--version", "1.0.0", "--json")
    old = fairpath(served, "decisions", "list", "--policy", GUIDE, "--policy-version", "1.0.0", "--json")
    assert (new.returncode, old.returncode) == (0, 0)
    ids = [json.loads(line)["decision"]["decision_id"] for line in new.stdout.splitlines()]
    assert ids == [json.loads(line)["decision"]["decision_id"] for line in old.stdout.splitlines()]
    assert sorted(ids) == sorted([*TWINS, SINGLE])
    assert new.stderr == ""
    assert "warning: --policy-version is deprecated and goes in the next release; use --version" in old.stderr
    none = fairpath(served, "decisions", "list", "--version", "1.0.1", "--json")
    assert none.stdout == ""

    replayed = fairpath(served, "replay", "--policy", GUIDE, "--candidate", "1.1.0", "--version", "1.0.0", "--json")
    legacy = fairpath(served, "replay", "--policy", GUIDE, "--version", "1.1.0", "--recorded-version", "1.0.0",
                      "--json")
    alone = fairpath(served, "replay", "--policy", GUIDE, "--version", "1.1.0", "--json")
    assert (replayed.returncode, legacy.returncode, alone.returncode) == (0, 0, 0), legacy.stderr + alone.stderr
    assert json.loads(replayed.stdout)["replayed"] == 3
    assert json.loads(legacy.stdout) == json.loads(replayed.stdout)  # the old spellings mean what they meant
    assert "--recorded-version is deprecated" in legacy.stderr
    nothing_recorded = fairpath(served, "replay", "--policy", GUIDE, "--candidate", "1.1.0", "--version", "1.1.0",
                                "--json")
    assert json.loads(nothing_recorded.stdout)["replayed"] == 0  # --version is the recorded one: none is 1.1.0
    assert json.loads(alone.stdout) == json.loads(replayed.stdout)  # --version alone: the old candidate meaning
    assert "replay --version V without --candidate is deprecated" in alone.stderr
    nothing = fairpath(served, "replay", "--policy", GUIDE)
    assert nothing.returncode == 2
    assert "replay needs --candidate V" in nothing.stderr

    stats = fairpath(served, "stats", "--policy", GUIDE, "--version", "1.0.0", "--json")
    assert [s["version"] for s in json.loads(stats.stdout)["slices"]] == ["1.0.0"]
    for command in (("decisions", "list"), ("decisions", "export"), ("replay",), ("stats",)):
        helped = run_fairpath(*command, "--help", cwd=served.root).stdout
        assert "--version V" in helped
        assert "--policy-version" not in helped
        assert "--recorded-version" not in helped


def test_stats_with_an_unknown_reference_group_names_the_groups(served: Served) -> None:
    """No decided decision has G9: refused (exit 2) naming the groups recorded, not empty figures."""
    done = fairpath(served, "stats", "--reference-group", "G9")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == ("reference_group: no decided decision has equality group 'G9'; "
                           "the groups recorded are G1\n")


def test_the_replay_report_fits_100_columns_when_piped(served: Served) -> None:
    """The changed-decisions table, 214 columns wide before, fits 100 when piped; ids are never broken."""
    done = fairpath(served, "replay", "--policy", GUIDE, "--candidate", "1.1.0", "--max-changed", "10")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100, [line for line in lines if len(line) > 100]
    assert "\x1b[" not in done.stdout  # no colour in a pipe


def test_ctrl_c_exits_130_with_one_line(served: Served) -> None:
    """SIGINT while the command waits (here, for facts on stdin): exit 130, one line on stderr, no traceback."""
    with _sigint_not_ignored():
        process = subprocess.Popen(
            [sys.executable, "-m", "fairpath", "evaluate", "--policy", GUIDE, "--facts", "-",
             "--target", served.target],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=served.root,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        assert process.stdin is not None
        process.stdin.write("is_patient_safety_incident: ")  # partway through typing the facts
        process.stdin.flush()
        _wait_until_reading(process)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert (process.returncode, out, err) == (130, "", "fairpath: interrupted\n")


@contextmanager
def _sigint_not_ignored() -> Iterator[None]:
    """Start the command in the block as a shell starts a foreground job: with SIGINT at its default.

    A shell starts background jobs (``make test &``, as CI scripts do) with SIGINT ignored; an
    ignored signal stays ignored across exec, so Python installs no KeyboardInterrupt handler and
    the command would never see the Ctrl-C: it read the facts at end of input and printed a
    decision. A handler, unlike SIG_IGN, is reset to the default by exec; this one does nothing, so
    this process still ignores SIGINT meanwhile.
    """
    previous = signal.getsignal(signal.SIGINT)
    if previous != signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, lambda _signum, _frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _wait_until_reading(process: subprocess.Popen[str]) -> None:
    """Wait until the command is blocked reading stdin (so SIGINT lands in the command, not in start-up)."""
    wchan = Path(f"/proc/{process.pid}/wchan")
    for _ in range(600):
        try:
            state = wchan.read_text(encoding="ascii")
        except OSError:
            state = ""
        # Asleep in a pipe read (pipe_wait, pipe_read, anon_pipe_read by kernel version): stdin is its
        # only pipe. Not any "read": a loaded start-up also sleeps in e.g. rwsem_down_read_slowpath.
        if "pipe" in state:
            return
        try:
            process.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"the command ended early: {process.returncode}")
    raise AssertionError("the command never blocked reading its facts")
