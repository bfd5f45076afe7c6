"""The review console in Chromium: policy pages, the try-it form, fairness figures and the replay matrix.

Runs against a real ``fairpath serve`` (auth config, console on a free port); figures on the
pages are compared with what the gRPC API returns for the same user.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from fairpath.audit.fairness import SUPPRESS_BELOW, SUPPRESSION_NOTE
from fairpath.cli import main
from fairpath_client import PolicyDetail
from playwright.sync_api import Browser, Page

from tests.browser.conftest import Console, axe_violations, screenshot, sign_in
from tests.conftest import POLICIES

GUIDE = "nhs-just-culture-guide"
CONTEXT = {"investigation_stage": "IN_PROGRESS", "harm_severity": "LOW", "professional_group": "REGISTERED_NURSE"}
GATES = {"is_patient_safety_incident": "YES", "individual_concern_raised": "YES", "safeguarding_concern": "NO"}
DELIBERATE = {**GATES, "intent_to_harm": "YES", **CONTEXT}  # JCG_A: individual-directed
HEALTH = {**GATES, "intent_to_harm": "NO", "substance_abuse_indicated": "YES", **CONTEXT}  # JCG_B: not
_YES_TEST = re.compile(r"^(\w+) is YES$")


@pytest.fixture(scope="module")
def recorded(console: Console) -> None:
    """Decisions in three equality groups: two large enough to show, one small enough to be suppressed."""
    plan = {"EG-1": (12, 10), "EG-2": (10, 14), "EG-3": (2, 1)}  # group: (deliberate, health)
    with console.client("evaluator") as client:
        for group, (directed, other) in plan.items():
            for facts, count in ((DELIBERATE, directed), (HEALTH, other)):
                for _ in range(count):
                    client.evaluate(GUIDE, facts, version="1.0.0", subject={"equality_group": group})


def _answers_to_each_exit(detail: PolicyDetail) -> dict[str, dict[str, str]]:
    """For every exit of the walk, answers leading there (the guide's rules all test `fact is YES`)."""
    rules = {rule.rule_id: rule for rule in detail.rules if rule.kind == "QUESTION"}
    found: dict[str, dict[str, str]] = {}

    def search(rule_id: str, answers: dict[str, str]) -> None:
        rule = rules[rule_id]
        match = _YES_TEST.match(rule.condition)
        assert match, f"{rule_id}: the walk-finder here understands only `fact is YES`"
        for target, answer in ((rule.then_target, "YES"), (rule.else_target, "NO")):
            chosen = {**answers, match[1]: answer}
            if target.startswith("rule "):
                search(target.removeprefix("rule "), chosen)
            else:
                found.setdefault(target.removeprefix("pathway "), chosen)

    search(next(iter(rules)), {})
    return found


class TestPolicyPages:
    def test_the_policy_list_shows_every_loaded_version(self, page: Page, console: Console) -> None:
        """/policies lists each version the API lists, with status, current and digest; an author can reload."""
        with console.client("author") as client:
            policies = client.list_policies()
        sign_in(page, "author", "/policies")
        for policy in policies:
            row = page.locator(f"table[data-policy='{policy.name}'] tr", has_text=policy.version).first
            text = row.inner_text()
            assert policy.status in text
            assert policy.digest[:16] in text
            assert ("current" in text) == policy.current
        assert axe_violations(page) == []
        screenshot(page, "policies")
        page.click("#reload-form button")  # an author may reload; the page says what the reload did
        assert "Reloaded" in page.inner_text("#reload-result")
        assert page.errors == []  # type: ignore[attr-defined]

    def test_a_version_page_shows_its_flowchart_facts_and_pathways(self, page: Page, console: Console) -> None:
        """One version: flowchart, every fact with its question, every pathway, tests and lint, diff links."""
        with console.client("author") as client:
            detail = client.get_policy(GUIDE, "1.0.0")
        sign_in(page, "author", f"/policies/{GUIDE}/1.0.0")
        walk = [rule.rule_id for rule in detail.rules if rule.kind == "QUESTION"]
        drawn = page.eval_on_selector_all("#flowchart g[data-rule]", "nodes => nodes.map(n => n.dataset.rule)")
        assert drawn == walk
        facts = page.inner_text("#facts-table")
        for fact in detail.facts:
            assert fact.question in facts
        pathways = page.inner_text("#pathways-table")
        assert all(pathway.code in pathways for pathway in detail.pathways)
        assert (page.text_content("#mermaid") or "").startswith("flowchart TD")
        # For an author: the served file's tests and lint, as ValidatePolicy reports them for its text.
        with console.client("author") as client:
            report = client.validate_policy((POLICIES / GUIDE / "1.0.0.yaml").read_text(encoding="utf-8"),
                                            (POLICIES / GUIDE / "1.0.0.tests.yaml").read_text(encoding="utf-8"))
        assert page.locator(f"#compare a[href='/policies/{GUIDE}/diff/1.1.0/1.0.0']").count() == 1
        assert axe_violations(page) == []
        page.click("#checks-link a")
        assert f"{report.passed} test case(s) pass, {report.failed} fail." in page.inner_text("#checks-summary")
        assert page.locator("#test-results li").count() == report.passed + report.failed
        assert axe_violations(page) == []


class TestTryIt:
    def test_the_form_reaches_each_exit_of_the_guide(self, page: Page, console: Console) -> None:
        """Choosing answers (radios, in walk order) updates the pathway and the walk, for every exit; no record."""
        with console.client("everyone") as client:
            detail = client.get_policy(GUIDE, "1.0.0")
            before = len(client.list_decisions(page_size=500).records)
        exits = _answers_to_each_exit(detail)
        assert len(exits) >= 10  # the guide's gates and tests end in many places
        sign_in(page, "evaluator", f"/try/{GUIDE}/1.0.0")
        assert "nothing is recorded" in page.inner_text("#dry-run-notice")
        # Shortest walks first, so the picture taken at the end shows the longest.
        for label, answers in sorted(exits.items(), key=lambda item: len(item[1])):
            page.goto(f"/try/{GUIDE}/1.0.0")
            for fact, answer in answers.items():
                page.check(f"input[name='fact-{fact}'][value='{answer}']")
            page.wait_for_function(
                "expected => document.getElementById('try-pathway')?.textContent.trim() === expected", arg=label)
            reached = page.eval_on_selector_all("#try-result g.fp-exit.reached",
                                                "nodes => nodes.map(n => n.dataset.pathway)")
            assert reached == [label]
        screenshot(page, "try")
        assert axe_violations(page) == []
        assert page.errors == []  # type: ignore[attr-defined]
        with console.client("everyone") as client:
            assert len(client.list_decisions(page_size=500).records) == before  # dry runs only

    def test_the_form_works_without_javascript(self, browser: Browser, console: Console) -> None:
        """With JavaScript off the submit button evaluates the answers and the outcome is shown."""
        context = browser.new_context(base_url=console.url, java_script_enabled=False)
        try:
            page = context.new_page()
            sign_in(page, "evaluator", f"/try/{GUIDE}/1.0.0")
            for fact, answer in DELIBERATE.items():
                page.check(f"input[name='fact-{fact}'][value='{answer}']")
            page.click("#try-submit")
            assert page.inner_text("#try-pathway").strip() == "JCG_A_DELIBERATE_HARM"
        finally:
            context.close()


class TestFairnessAndReplay:
    def test_the_chart_has_one_mark_per_group_and_matches_the_api(
        self, page: Page, console: Console, recorded: None
    ) -> None:
        """One mark per equality group; the small group is suppressed; table and CSV agree with OutcomeStats."""
        with console.client("auditor") as client:
            stats = client.outcome_stats(GUIDE, "1.0.0")
        (piece,) = stats.slices
        groups = sorted({cell.group for cell in piece.by_equality_group})
        sign_in(page, "auditor", f"/fairness?policy={GUIDE}&version=1.0.0")
        marks = page.eval_on_selector_all("svg.fp-chart g.fp-mark", "nodes => nodes.map(n => n.dataset.group)")
        assert sorted(marks) == groups
        suppressed = page.eval_on_selector_all("svg.fp-chart g.fp-mark.suppressed",
                                               "nodes => nodes.map(n => n.dataset.group)")
        assert suppressed == ["EG-3"]
        # The page says what the CLI says: secondary suppression, so no suppressed count can be derived.
        assert SUPPRESSION_NOTE.format(n=SUPPRESS_BELOW) in page.inner_text("main")
        ratios = {r.group: r for r in piece.relative_likelihood}
        shown = next(r for r in ratios.values() if not r.suppressed)
        row = page.inner_text(f".fp-fairness-table tr[data-group='{shown.group}']")
        assert f"{shown.ratio:.2f} ({shown.ci_low:.2f}\u2013{shown.ci_high:.2f})" in row  # an en dash
        response = page.request.get(f"/fairness.csv?policy={GUIDE}&version=1.0.0")
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text())))
        assert sorted(r["equality_group"] for r in rows) == groups
        by_group = {r["equality_group"]: r for r in rows}
        assert by_group["EG-3"]["suppressed"] == "True"
        assert by_group["EG-3"]["individual_directed"] == ""
        assert by_group[shown.group]["relative_likelihood"] == f"{shown.ratio:.4f}"
        assert axe_violations(page) == []
        screenshot(page, "fairness")
        assert page.errors == []  # type: ignore[attr-defined]

    def test_the_replay_matrix_counts_equal_the_apis(self, page: Page, console: Console, recorded: None) -> None:
        """Replaying the recorded decisions against 1.1.0: each matrix cell is the API's transition count."""
        with console.client("auditor") as client:
            report = client.replay_decisions(GUIDE, "1.1.0")
        assert report.replayed > 0
        sign_in(page, "auditor", "/replay")
        page.select_option("#candidate", f"{GUIDE}@1.1.0")
        page.click("button:has-text('Replay')")
        cells = page.eval_on_selector_all(
            "#impact-matrix td[data-from]",
            "cells => cells.map(c => [c.dataset.from, c.dataset.to, parseInt(c.textContent)])")
        shown = {(a, b): n for a, b, n in cells if n}
        assert shown == {(t.from_pathway, t.to_pathway): t.count for t in report.transitions if t.count}
        assert f"{report.replayed} decisions replayed" in page.inner_text("#replay-summary")
        assert axe_violations(page) == []
        screenshot(page, "replay")
        assert page.errors == []  # type: ignore[attr-defined]


class TestAuthoring:
    def test_validating_a_policy_shows_its_tests_and_flowchart_and_loads_nothing(
        self, page: Page, console: Console
    ) -> None:
        """An author pastes a policy and its tests: valid, every case listed, flowchart drawn; nothing served."""
        policy_text = (POLICIES / GUIDE / "1.0.0.yaml").read_text(encoding="utf-8")
        tests_text = (POLICIES / GUIDE / "1.0.0.tests.yaml").read_text(encoding="utf-8")
        with console.client("author") as client:
            before = client.list_policies()
        sign_in(page, "author", "/policies/validate")
        page.fill("#policy_text", policy_text)
        page.fill("#tests_text", tests_text)
        page.click("#validate-submit")
        result = page.inner_text("#validation-result")
        assert "Valid" in result
        assert page.locator("#test-results li").count() > 10
        assert page.locator("#flowchart g[data-rule]").count() == 14
        assert axe_violations(page) == []
        with console.client("author") as client:
            assert client.list_policies() == before

    def test_an_uploaded_broken_file_shows_problems_with_line_numbers(
        self, page: Page, console: Console, tmp_path: Path
    ) -> None:
        """Uploading a file whose rule G1 leads to an unknown rule lists the error at G1's line."""
        text = (POLICIES / GUIDE / "1.0.0.yaml").read_text(encoding="utf-8")
        broken = text.replace("then: go to G2", "then: go to G9", 1)
        line = broken.splitlines().index("  - id: G1") + 1
        upload = tmp_path / "draft.yaml"
        upload.write_text(broken, encoding="utf-8")
        sign_in(page, "author", "/policies/validate")
        page.set_input_files("#policy_file", str(upload))
        page.click("#validate-submit")
        problems = page.inner_text("#problems")
        assert "G9" in problems
        rows = [row for row in problems.splitlines() if "G9" in row]
        assert rows[0].split("\t")[0].strip() == str(line)
        assert "Not ready" in page.inner_text("#validation-result")

    def test_the_diff_page_reports_as_the_cli_does_and_marks_the_changed_rules(
        self, page: Page, console: Console, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """/policies/{name}/diff/1.0.0/1.1.0 prints `fairpath policy diff`'s report; changed rules are marked."""
        assert main(["policy", "diff", GUIDE, "1.0.0", "1.1.0", "--dir", str(POLICIES)]) == 1
        expected = capsys.readouterr().out.strip()
        sign_in(page, "auditor", f"/policies/{GUIDE}/diff/1.0.0/1.1.0")
        assert (page.text_content("#diff-report") or "").strip() == expected
        marked = page.eval_on_selector_all("#flowchart-new g.fp-node.changed[data-rule]",
                                           "nodes => nodes.map(n => n.dataset.rule)")
        assert sorted(marked) == ["3a", "3c"]
        assert axe_violations(page) == []
        screenshot(page, "diff")
