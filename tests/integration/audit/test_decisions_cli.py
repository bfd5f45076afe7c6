"""`fairpath decisions list|show|export|outcome|verify` against a real server (SQLite store)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from fairpath.app import build_server
from fairpath.cli import main
from fairpath.config import Config
from fairpath.serving.evaluator import Evaluator
from fairpath_client import FairpathClient
from fairpath_client._decisions_cli import EXIT_CHAIN_BROKEN
from fairpath_client._render_records import CSV_COLUMNS

from tests.integration.audit.conftest import GUIDE, INCOMPLETE, SUBSTANCE, drop_append_only_triggers


@pytest.fixture(name="trail")
def _trail(evaluator: Evaluator, tmp_path: Path) -> Iterator[tuple[str, list[str], str]]:
    """Serve three recorded decisions (two substance abuse, one incomplete); yield target, ids, URL."""
    url = f"sqlite:///{tmp_path / 'decisions.sqlite3'}"
    # The in-process server's access log would print into the captured command output.
    previous = structlog.get_config()
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
    running = build_server(Config(host="127.0.0.1", port=0, store=url), evaluator)
    running.start()
    target = f"127.0.0.1:{running.port}"
    with FairpathClient(target) as client:
        ids = [
            client.evaluate(
                GUIDE, SUBSTANCE, subject={"incident_ref": "INC-1", "staff_ref": "S-1"}
            ).decision_id,
            client.evaluate(GUIDE, INCOMPLETE, subject={"incident_ref": "INC-2"}).decision_id,
            client.evaluate(GUIDE, SUBSTANCE, subject={"incident_ref": "INC-1"}).decision_id,
        ]
    yield target, ids, url
    running.stop(None).wait(5)
    if running.store is not None:
        running.store.close()
    structlog.configure(**previous)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_prints_one_line_per_decision_and_filters(
    trail: tuple[str, list[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`decisions list` tabulates the trail; filters narrow it; --page-size pages and says how to go on."""
    target, ids, _ = trail

    code, out, _ = _run(capsys, "decisions", "list", "--target", target, "--pathway", "JCG_B_SUBSTANCE_ABUSE")
    _, paged, _ = _run(capsys, "decisions", "list", "--target", target, "--page-size", "1")
    _, everything, _ = _run(
        capsys, "decisions", "list", "--target", target, "--page-size", "1", "--all", "--json"
    )

    assert code == 0
    assert out.splitlines()[0].split()[:3] == ["SEQ", "DECISION", "EVALUATED"]
    rows = [line for line in out.splitlines()[1:] if not line.startswith(" ")]
    assert [line.split()[1] for line in rows] == [ids[0], ids[2]]
    # Each record's second, indented line: what was decided and for whom; every line fits 100 columns.
    assert out.splitlines()[2].split() == ["DECIDED", "JCG_B_SUBSTANCE_ABUSE;", "incident", "INC-1,", "staff",
                                           "S-1;", "outcome", "-"]
    assert max(len(line) for line in out.splitlines()) <= 100
    assert "--page-token" in paged
    assert [json.loads(line)["decision"]["decision_id"] for line in everything.splitlines()] == ids


def test_list_newest_first_starts_at_the_newest_and_pages_on_in_that_order(
    trail: tuple[str, list[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`decisions list --newest-first` lists the most recent first; its hint repeats the flag the token needs."""
    target, ids, _ = trail

    code, out, _ = _run(capsys, "decisions", "list", "--target", target, "--newest-first", "--page-size", "2")
    _, everything, _ = _run(
        capsys, "decisions", "list", "--target", target, "--newest-first", "--page-size", "1", "--all", "--json"
    )

    assert code == 0
    rows = [line for line in out.splitlines()[1:] if not line.startswith(" ")]
    assert [line.split()[1] for line in rows[:2]] == [ids[2], ids[1]]
    assert "add --newest-first --page-token " in out
    assert [json.loads(line)["decision"]["decision_id"] for line in everything.splitlines()] == ids[::-1]


def test_show_prints_the_walk_facts_outcomes_and_chain(
    trail: tuple[str, list[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`decisions show` reads as a review: outcome, walk (sensitive answers masked), facts, outcomes."""
    target, ids, _ = trail
    assert (
        _run(
            capsys,
            "decisions",
            "outcome",
            "--target",
            target,
            ids[0],
            "--action",
            "FORMAL_DISCIPLINARY",
            "--reviewer",
            "hr-1",
            "--reason",
            "second incident",
        )[0]
        == 0
    )

    code, out, _ = _run(capsys, "decisions", "show", "--target", target, ids[0])

    assert code == 0
    assert out.startswith("DECIDED  JCG_B_SUBSTANCE_ABUSE")
    walk = out[out.index("Walk") : out.index("Policy ")]
    assert "2a  Are there indications of substance abuse?" in walk
    assert "***  -> pathway JCG_B_SUBSTANCE_ABUSE" in walk
    assert "(masked as sensitive: intent_to_harm, safeguarding_concern, substance_abuse_indicated)" in out
    assert "hr-1: FORMAL_DISCIPLINARY  DEPARTS from JCG_B_SUBSTANCE_ABUSE" in out
    assert "reason: second incident" in out
    assert "Record 1 in the hash chain" in out


def test_show_of_an_unknown_decision_exits_3(
    trail: tuple[str, list[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """An id the trail does not know is reported on stderr with exit code 3, as an unknown policy is."""
    code, out, err = _run(capsys, "decisions", "show", "--target", trail[0], "no-such-decision")

    assert (code, out) == (3, "")
    assert "no-such-decision" in err


def test_export_writes_jsonl_and_csv(
    trail: tuple[str, list[str], str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`decisions export` streams the filtered trail as JSON lines or as CSV with a fixed header."""
    target, ids, _ = trail

    code, jsonl, err = _run(capsys, "decisions", "export", "--target", target, "--incident-ref", "INC-1")
    _run(
        capsys,
        "decisions",
        "export",
        "--target",
        target,
        "--format",
        "csv",
        "--output",
        str(tmp_path / "out.csv"),
    )
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text(encoding="utf-8"))))

    assert code == 0
    assert "exported 2 decision(s)" in err
    assert [json.loads(line)["decision"]["decision_id"] for line in jsonl.splitlines()] == [ids[0], ids[2]]
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [row["decision_id"] for row in rows] == ids
    assert rows[0]["masked_facts"] == "intent_to_harm;safeguarding_concern;substance_abuse_indicated"
    assert json.loads(rows[0]["facts"])["substance_abuse_indicated"] == "***"
    assert rows[1]["status"] == "NEEDS_INFORMATION"


def test_verify_exits_0_when_intact_and_4_naming_the_broken_record(
    trail: tuple[str, list[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`decisions verify` is scriptable: 0 and "intact", or 4 and the first broken record."""
    import sqlite3  # noqa: PLC0415

    target, _, url = trail
    code, out, _ = _run(capsys, "decisions", "verify", "--target", target)
    connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)

    def run(sql: str, params: object = ()) -> list[tuple[object, ...]]:
        return list(connection.execute(sql, params).fetchall())  # type: ignore[arg-type]

    drop_append_only_triggers(run, url)
    run("UPDATE decisions SET incident_ref = 'INC-X' WHERE sequence = 3")
    broken, report, _ = _run(capsys, "decisions", "verify", "--target", target, "--json")
    connection.close()

    assert (code, out) == (0, "Chain intact: 3 record(s) checked.\n")
    assert broken == EXIT_CHAIN_BROKEN
    assert json.loads(report)["first_broken_sequence"] == 3


def test_verify_reports_a_column_made_invalid_json_as_a_broken_chain(
    trail: tuple[str, list[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The reported case: `fired` of record 1 made invalid JSON is "Chain BROKEN at record 1", exit 4, not INTERNAL."""
    import sqlite3  # noqa: PLC0415

    target, _, url = trail
    connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)

    def run(sql: str, params: object = ()) -> list[tuple[object, ...]]:
        return list(connection.execute(sql, params).fetchall())  # type: ignore[arg-type]

    drop_append_only_triggers(run, url)
    run("UPDATE decisions SET fired = fired || 'x' WHERE sequence = 1")
    connection.close()
    code, out, err = _run(capsys, "decisions", "verify", "--target", target)

    assert (code, err) == (EXIT_CHAIN_BROKEN, "")
    assert out.startswith("Chain BROKEN at record 1: decision record 1 was changed after it was written")


def test_a_stale_page_token_is_a_usage_error(
    trail: tuple[str, list[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A page token from another listing exits 2 and names the field, like invalid facts do."""
    code, _, err = _run(capsys, "decisions", "list", "--target", trail[0], "--page-token", "abc")

    assert code == 2
    assert err.startswith("page_token: ")


def test_evaluate_dry_run_flag_records_nothing(
    trail: tuple[str, list[str], str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`fairpath evaluate --dry-run` answers without adding to the trail."""
    target = trail[0]
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps(SUBSTANCE), encoding="utf-8")

    code, _, _ = _run(
        capsys, "evaluate", "--target", target, "--policy", GUIDE, "--facts", str(facts), "--dry-run"
    )
    _, listing, _ = _run(capsys, "decisions", "list", "--target", target, "--json")

    assert code == 0
    assert len(listing.splitlines()) == 3
