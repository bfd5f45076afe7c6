"""The review console in Chromium: a chained policy's decision links the decision it required, and back.

``pre-formal-check`` 2.0.0 requires the guide's decision: both are recorded, and each decision page
names the other with a link (against a real ``fairpath serve`` and its gRPC API).
"""

from __future__ import annotations

from playwright.sync_api import Page

from tests.browser.conftest import Console, axe_violations, sign_in

FACTS = {
    "is_patient_safety_incident": "YES", "individual_concern_raised": "YES", "safeguarding_concern": "NO",
    "intent_to_harm": "NO", "substance_abuse_indicated": "NO", "physical_ill_health_indicated": "YES",
    "investigation_stage": "IN_PROGRESS", "professional_group": "REGISTERED_NURSE",
    "exclusion_under_consideration": "NO",
}


def test_a_chained_decision_page_links_the_required_decision_and_it_links_back(page: Page, console: Console) -> None:
    """The link row says what was taken from the guide's decision; following it shows 'Required by' back."""
    with console.client("evaluator") as client:
        decision = client.evaluate("pre-formal-check", FACTS, version="2.0.0")
    guide_id = decision.required[0].decision_id

    sign_in(page, "auditor", f"/decisions/{decision.decision_id}")
    assert page.inner_text("#required-1") == (
        "nhs-just-culture-guide (current): just_culture_guide_pathway taken from its pathway")
    assert axe_violations(page) == []
    page.click("#required-1 a")

    assert page.url.endswith(f"/decisions/{guide_id}")
    assert "JCG_C_HEALTH_ISSUE" in page.inner_text("#pathway")
    assert decision.decision_id in page.inner_text("#required-by")
    assert page.errors == []  # type: ignore[attr-defined]


def test_trying_a_chained_policy_asks_the_required_policys_questions_never_the_chained_fact(
    page: Page, console: Console
) -> None:
    """The try-it form for pre-formal-check 2.0.0 asks the guide's questions, then its own; never the pathway."""
    sign_in(page, "evaluator", "/try/pre-formal-check/2.0.0")
    names = page.eval_on_selector_all("#try-form [name^='fact-']", "inputs => inputs.map(i => i.name)")
    assert "fact-just_culture_guide_pathway" not in names
    assert names.index("fact-is_patient_safety_incident") < names.index("fact-exclusion_under_consideration")
    assert axe_violations(page) == []
