"""Common mistakes at the command line are explained, with the fix, by the real CLI against a real server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import GUIDE, ROOT
from tests.support.cli import run_fairpath

EXAMPLE = str(ROOT / "clients" / "python" / "examples" / "nurse-unworkable-protocol.yaml")


@pytest.mark.parametrize("text", ["", "\n", "# answers to come\n\n# more later\n"])
def test_an_empty_or_comment_only_facts_file_is_refused_before_any_call(tmp_path: Path, text: str) -> None:
    """Exit 2 with the reason and the fix; nothing listens at the target, so exit 2 (not 1) shows no call was made."""
    facts = tmp_path / "facts.yaml"
    facts.write_text(text, encoding="utf-8")
    done = run_fairpath("evaluate", "--target", "127.0.0.1:1", "--policy", GUIDE, "--facts", str(facts),
                        cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"error: facts file {facts} is empty or holds only comments: nothing to evaluate "
                           "(to evaluate with no answers at all, write {})\n")


def test_a_dry_run_says_so_in_text_output(target: str, tmp_path: Path) -> None:
    """--dry-run's text ends its ids line with 'dry run, not recorded'; a recorded decision's does not."""
    dry = run_fairpath("evaluate", "--target", target, "--dry-run", "--policy", GUIDE, "--facts", EXAMPLE,
                       cwd=tmp_path)
    recorded = run_fairpath("evaluate", "--target", target, "--policy", GUIDE, "--facts", EXAMPLE, cwd=tmp_path)
    assert (dry.returncode, recorded.returncode) == (0, 0), dry.stderr + recorded.stderr
    assert dry.stdout.splitlines()[-1].endswith("; dry run, not recorded")
    assert "not recorded" not in recorded.stdout


def test_misspelt_facts_and_lower_case_answers_get_the_fix_from_the_server(target: str, tmp_path: Path) -> None:
    """The server's BadRequest descriptions suggest the declared fact, the upper-case answer and the close code."""
    facts = tmp_path / "facts.yaml"
    facts.write_text('is_patient_safety_incident: "YES"\nindividual_concern_raise: "YES"\nintent_to_harm: "yes"\n'
                     "harm_severity: MODERTE\n", encoding="utf-8")
    done = run_fairpath("evaluate", "--target", target, "--policy", GUIDE, "--facts", str(facts), cwd=tmp_path)
    assert done.returncode == 2
    assert sorted(done.stderr.splitlines()) == [
        "facts.harm_severity: must be one of NO_HARM, LOW, MODERATE, SEVERE, FATAL; did you mean `MODERATE`?",
        f"facts.individual_concern_raise: not a fact of {GUIDE}@1.0.1; did you mean `individual_concern_raised`?",
        "facts.intent_to_harm: must be one of YES, NO, UNKNOWN; answers are upper case: YES",
    ]


def test_a_misspelt_policy_name_gets_the_loaded_one(target: str, tmp_path: Path) -> None:
    """NOT_FOUND for a near name suggests the loaded policy (exit 3); a name like none gets no guess."""
    done = run_fairpath("evaluate", "--target", target, "--policy", "nhs-just-culture", "--facts", EXAMPLE,
                        cwd=tmp_path)
    assert done.returncode == 3
    assert re.fullmatch(f"error: NOT_FOUND: policy 'nhs-just-culture' is not loaded; did you mean `{GUIDE}`\\? "
                        r"\(request id [0-9a-f]{32}\)\n", done.stderr), done.stderr
    done = run_fairpath("evaluate", "--target", target, "--policy", "zzz", "--facts", EXAMPLE, cwd=tmp_path)
    assert done.returncode == 3
    assert done.stderr.startswith("error: NOT_FOUND: policy 'zzz' is not loaded (request id ")
