"""The review console in Chromium: sign-in, the decision trail, a decision's walk, outcomes, roles, CSRF.

Runs against a real ``fairpath serve`` (auth config, console on a free port) and its real
gRPC API: what a page shows is compared with what the API returns for the same user.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fairpath_client import Decision, DecisionRecord
from playwright.sync_api import Page

from tests.browser.conftest import Console, axe_violations, screenshot, sign_in

GUIDE = "nhs-just-culture-guide"
CONTEXT = {"investigation_stage": "IN_PROGRESS", "harm_severity": "LOW", "professional_group": "REGISTERED_NURSE"}
# A walk through the gates and 1a, 2a to the physical-health exit 2b.
HEALTH = {
    "is_patient_safety_incident": "YES", "individual_concern_raised": "YES", "safeguarding_concern": "NO",
    "intent_to_harm": "NO", "substance_abuse_indicated": "NO", "physical_ill_health_indicated": "YES", **CONTEXT,
}
# A walk that stops at 1a for want of an answer.
UNANSWERED = {"is_patient_safety_incident": "YES", "individual_concern_raised": "YES",
              "safeguarding_concern": "NO", **CONTEXT}


@pytest.fixture(scope="module")
def decisions(console: Console) -> Iterator[dict[str, Decision]]:
    """Two recorded decisions, made over the API by the evaluator."""
    with console.client("evaluator") as client:
        yield {
            "health": client.evaluate(GUIDE, HEALTH, version="1.0.0",
                                      subject={"incident_ref": "INC-4411", "staff_ref": "STAFF-29"}),
            "unanswered": client.evaluate(GUIDE, UNANSWERED, version="1.0.0",
                                          subject={"incident_ref": "INC-4412", "staff_ref": "STAFF-30"}),
        }


def _record(console: Console, decision_id: str) -> DecisionRecord:
    with console.client("auditor") as client:
        return client.get_decision(decision_id)


class TestSignIn:
    def test_pages_send_an_anonymous_visitor_to_sign_in(self, page: Page) -> None:
        """Without a session, a deep link to a decision lands on the sign-in form, keeping where it was going."""
        page.goto("/decisions/some-id")
        assert page.url.endswith("/sign-in?next=/decisions/some-id")
        assert page.locator("h1").inner_text() == "Sign in"
        assert axe_violations(page) == []
        assert page.errors == []  # type: ignore[attr-defined]

    def test_an_unknown_token_is_refused(self, page: Page) -> None:
        """A token the auth config does not know gets the form again with an error, and no session."""
        page.goto("/sign-in")
        page.fill("#token", "not-a-real-token")
        page.click("button:has-text('Sign in')")
        assert "That token is not recognised." in page.inner_text(".nhsuk-error-summary")
        assert not [c for c in page.context.cookies() if c["name"] == "fairpath_console"]
        page.goto("/decisions")
        assert "/sign-in" in page.url

    def test_sign_in_sets_a_strict_http_only_expiring_cookie_and_sign_out_ends_it(
        self, page: Page, console: Console
    ) -> None:
        """Signing in gives an HttpOnly, SameSite=Strict cookie with an expiry; signing out ends the session."""
        sign_in(page, "auditor", "/decisions")
        assert page.url == f"{console.url}/decisions"
        assert "Signed in as token:auditor" in page.inner_text("header")
        cookie = next(c for c in page.context.cookies() if c["name"] == "fairpath_console")
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Strict"
        assert cookie["expires"] > 0  # not a browser-lifetime cookie
        assert cookie["secure"] is False  # plain HTTP on loopback; Secure comes with TLS
        stolen = cookie["value"]
        page.click("button:has-text('Sign out')")
        assert "/sign-in" in page.url
        page.goto("/decisions")
        assert "/sign-in" in page.url
        # The old cookie value no longer signs anyone in: the session ended on the server.
        page.context.add_cookies([{**cookie, "value": stolen}])
        page.goto("/decisions")
        assert "/sign-in" in page.url

    def test_sign_in_posted_without_its_csrf_token_is_refused(self, page: Page) -> None:
        """The sign-in form is itself protected: a post without its token starts no session."""
        page.goto("/sign-in")
        response = page.request.post("/sign-in", form={"token": "console-auditor-5e1f"}, max_redirects=0)
        assert response.status == 403
        assert not [c for c in page.context.cookies() if c["name"] == "fairpath_console"]


class TestDecisionPages:
    def test_the_trail_lists_decisions_with_filters_and_the_chain_state(
        self, page: Page, console: Console, decisions: dict[str, Decision]
    ) -> None:
        """/decisions shows recorded decisions, filters by staff reference in the query string, and the chain."""
        sign_in(page, "auditor", "/decisions")
        assert "Chain verified" in page.inner_text("#chain-state")
        page.fill("#staff_ref", "STAFF-29")
        page.click("button:has-text('Apply filters')")
        assert "staff_ref=STAFF-29" in page.url
        rows = page.locator("#decision-table tbody tr")
        assert rows.count() == 1
        assert decisions["health"].decision_id[:8] in rows.inner_text()
        assert "JCG_C_HEALTH_ISSUE" in rows.inner_text()
        assert axe_violations(page) == []
        page.goto("/decisions")
        screenshot(page, "decisions")
        assert page.errors == []  # type: ignore[attr-defined]

    def test_the_trail_pages_through_a_long_result(self, page: Page, console: Console) -> None:
        """27 matching decisions newest first: the 25 newest, the 2 oldest after "Next page", back to the first."""
        with console.client("evaluator") as client:
            made = [client.evaluate(GUIDE, UNANSWERED, subject={"staff_ref": "STAFF-PAGED"}).decision_id
                    for _ in range(27)]
        newest_first = made[::-1]

        def shown() -> list[str]:
            links = page.eval_on_selector_all("#decision-table tbody a", "links => links.map(a => a.href)")
            return [link.rsplit("/", 1)[1] for link in links]

        sign_in(page, "auditor", "/decisions?staff_ref=STAFF-PAGED")
        rows = page.locator("#decision-table tbody tr")
        assert rows.count() == 25
        assert shown() == newest_first[:25]
        page.click("#next-page")
        assert "staff_ref=STAFF-PAGED" in page.url
        assert rows.count() == 2
        assert page.locator("#next-page").count() == 0
        assert shown() == newest_first[25:]
        page.click("text=First page")
        assert rows.count() == 25
        assert shown() == newest_first[:25]

    def test_the_keyboard_reaches_the_skip_link_and_the_filters(self, page: Page) -> None:
        """Tab first focuses "Skip to main content"; following it moves on to the page's own content."""
        sign_in(page, "auditor", "/decisions")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to main content"
        page.keyboard.press("Enter")
        assert page.url.endswith("#maincontent")
        page.focus("#policy")
        page.keyboard.type("nhs-just-culture-guide")
        with page.expect_navigation():
            page.keyboard.press("Enter")  # submits the filter form
        assert "policy=nhs-just-culture-guide" in page.url

    def test_a_bad_date_filter_is_explained_not_sent(self, page: Page) -> None:
        """A date that does not parse gets a GOV.UK error summary linking to the field."""
        sign_in(page, "auditor", "/decisions?from=31/12/2026")
        assert "Enter the from date as YYYY-MM-DD" in page.inner_text(".nhsuk-error-summary")
        assert page.locator(".nhsuk-error-summary a[href='#from']").count() == 1

    def test_the_flowchart_highlights_exactly_the_rules_the_trace_reached(
        self, page: Page, console: Console, decisions: dict[str, Decision]
    ) -> None:
        """The decision page marks reached exactly the walk rules the trace reached, and the exit it ended at."""
        for decision in decisions.values():
            sign_in(page, "auditor", f"/decisions/{decision.decision_id}")
            reached = {
                entry.rule_id for entry in decision.trace
                if entry.kind == "QUESTION" and entry.result in ("FIRED", "NOT_FIRED", "UNANSWERED")
            }
            shown = set(page.eval_on_selector_all(
                "#flowchart g.fp-node.reached[data-rule]", "nodes => nodes.map(n => n.dataset.rule)"))
            assert shown == reached
            dimmed = set(page.eval_on_selector_all(
                "#flowchart g.fp-node.dimmed[data-rule]", "nodes => nodes.map(n => n.dataset.rule)"))
            not_reached = {e.rule_id for e in decision.trace if e.kind == "QUESTION" and e.result == "NOT_REACHED"}
            assert dimmed == not_reached
            exits = page.eval_on_selector_all(
                "#flowchart g.fp-exit.reached", "nodes => nodes.map(n => n.dataset.pathway)")
            if decision.pathway is None:
                assert exits == []
            else:
                sub = f" ({decision.pathway.sub_reason})" if decision.pathway.sub_reason else ""
                assert exits == [decision.pathway.code + sub]
            page.context.clear_cookies()

    def test_the_decision_page_shows_the_record_with_sensitive_facts_masked(
        self, page: Page, console: Console, decisions: dict[str, Decision]
    ) -> None:
        """Pathway, recommendation, advice, subject, policy digest and facts (sensitive ones masked)."""
        decision = decisions["health"]
        record = _record(console, decision.decision_id)
        sign_in(page, "auditor", f"/decisions/{decision.decision_id}")
        summary = page.inner_text("#decision-summary")
        assert "JCG_C_HEALTH_ISSUE (PHYSICAL)" in summary
        assert decision.policy.digest in summary
        assert "INC-4411" in summary
        assert [a.code for a in decision.advice] == [
            line.split(":")[0] for line in page.inner_text("#advice").splitlines()]
        facts = page.inner_text("#facts")
        assert record.masked_facts  # the guide marks health facts sensitive
        for name in record.masked_facts:
            row = page.locator("#facts .nhsuk-summary-list__row", has_text=name)
            assert "masked" in row.inner_text()
        assert "REGISTERED_NURSE" in facts  # not sensitive: shown as recorded
        assert axe_violations(page) == []
        screenshot(page, "decision")
        assert page.errors == []  # type: ignore[attr-defined]

    def test_an_auditor_records_an_outcome_as_themselves(
        self, page: Page, console: Console, decisions: dict[str, Decision]
    ) -> None:
        """The outcome form records through RecordOutcome; the API then lists it, by the signed-in caller."""
        decision = decisions["unanswered"]
        sign_in(page, "auditor", f"/decisions/{decision.decision_id}")
        page.check("input[name=action_taken][value=NOT_INDICATED]")
        page.fill("#reason", "Closed after the panel met")
        page.click("button:has-text('Record outcome')")
        assert page.url.endswith(f"/decisions/{decision.decision_id}#outcomes")
        assert "NOT_INDICATED" in page.inner_text("#outcome-table")
        outcomes = _record(console, decision.decision_id).outcomes
        assert [(o.action_taken, o.reviewer, o.reason) for o in outcomes] == [
            ("NOT_INDICATED", "token:auditor", "Closed after the panel met")]

    def test_an_outcome_without_an_action_is_explained(
        self, page: Page, console: Console, decisions: dict[str, Decision]
    ) -> None:
        """Submitting no action shows the error summary linked to the radios and records nothing."""
        decision = decisions["health"]
        sign_in(page, "auditor", f"/decisions/{decision.decision_id}")
        page.click("button:has-text('Record outcome')")
        assert "Choose or enter the action taken" in page.inner_text(".nhsuk-error-summary")
        assert page.locator("#action_taken").count() == 1  # the summary's link target exists
        assert _record(console, decision.decision_id).outcomes == ()

    def test_a_form_post_without_its_csrf_token_is_refused(
        self, page: Page, console: Console, decisions: dict[str, Decision]
    ) -> None:
        """A signed-in browser posting the outcome form without (or with a wrong) CSRF token records nothing."""
        decision = decisions["health"]
        sign_in(page, "auditor", f"/decisions/{decision.decision_id}")
        path = f"/decisions/{decision.decision_id}/outcomes"
        for form in ({"action_taken": "NOT_INDICATED"}, {"action_taken": "NOT_INDICATED", "csrf_token": "forged"}):
            response = page.request.post(path, form=form, max_redirects=0)
            assert response.status == 403
            assert "security token" in response.text()
        assert _record(console, decision.decision_id).outcomes == ()


class TestRolesAndHeaders:
    def test_an_evaluator_sees_no_decision_trail(self, page: Page, decisions: dict[str, Decision]) -> None:
        """The evaluator's menu has no Decisions, Replay or Fairness, and the pages refuse them (403)."""
        sign_in(page, "evaluator", "/policies")
        menu = page.inner_text("nav[aria-label=Menu]")
        assert "Policies" in menu
        assert "Decisions" not in menu
        assert "Fairness" not in menu
        response = page.goto(f"/decisions/{decisions['health'].decision_id}")
        assert response is not None
        assert response.status == 403
        assert "needs the auditor role" in page.inner_text("#error-message")

    def test_an_auditor_cannot_try_or_reload(self, page: Page) -> None:
        """The auditor may not evaluate (even a dry run) or reload policies: no link or button, and 403 if asked."""
        sign_in(page, "auditor", "/policies")
        assert page.locator("a:has-text('Try it')").count() == 0
        response = page.goto(f"/try/{GUIDE}/1.0.0")
        assert response is not None
        assert response.status == 403
        page.goto("/policies")
        assert page.locator("#reload-form").count() == 0
        # Even with a valid CSRF token of their own session, the auditor's reload is refused.
        csrf = page.get_attribute("form[action='/sign-out'] input[name=csrf_token]", "value")
        refused = page.request.post("/policies/reload", form={"csrf_token": csrf or ""}, max_redirects=0)
        assert refused.status == 403
        assert "needs the author role" in refused.text()

    def test_pages_carry_the_security_headers(self, page: Page, decisions: dict[str, Decision]) -> None:
        """Decision pages: strict CSP with frame-ancestors 'none', no-store; static files may be cached."""
        sign_in(page, "auditor", "/decisions")
        response = page.goto(f"/decisions/{decisions['health'].decision_id}")
        assert response is not None
        headers = response.headers
        assert headers["cache-control"] == "no-store"
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert headers["x-content-type-options"] == "nosniff"
        static = page.request.get("/static/console.css")
        assert static.headers["cache-control"].startswith("public")

    def test_no_fact_value_reaches_the_console_log(self, console: Console, decisions: dict[str, Decision]) -> None:
        """After every page above, nothing the console logged names a fact or carries an answer code."""
        facts = {*HEALTH, *UNANSWERED}
        logged = [event for event in console.console_log() if event.get("event") != "console_serving"]
        assert logged, "the console logged nothing at all: the check would prove nothing"
        for event in logged:
            text = str(event)
            assert not any(name in text for name in facts), event
            assert "REGISTERED_NURSE" not in text, event
            assert "IN_PROGRESS" not in text, event
