"""The Mermaid text of ``fairpath.flowchart`` renders with Mermaid itself, as GitHub and GitLab run it.

Mermaid (vendored, MIT) runs in Chromium on a blank page; every policy version's chart, plain
and with a real decision's walk highlighted, must render without a syntax error. The README's
Mermaid example must be exactly what ``fairpath policy graph`` prints today.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fairpath.cli import main
from fairpath.flowchart import Highlight, StepSpec, policy_flowchart, with_requirements
from fairpath.policy.loader import load_file
from fairpath.policy.registry import policy_files
from fairpath.serving.evaluator import Evaluator
from playwright.sync_api import Browser, Page

from tests.conftest import GUIDE, POLICIES, ROOT

MERMAID = Path(__file__).parent / "assets" / "mermaid.min.js"
_RENDER = """async text => {
  mermaid.initialize({startOnLoad: false, securityLevel: 'strict'});
  try {
    const {svg} = await mermaid.render('chart' + Math.floor(Math.random() * 1e9), text);
    return {ok: true, nodes: (svg.match(/class="node /g) || []).length};
  } catch (error) {
    return {ok: false, error: String(error.message || error)};
  }
}"""


@pytest.fixture(scope="module")
def mermaid(browser: Browser) -> Iterator[Page]:
    """A blank page with Mermaid loaded."""
    page = browser.new_page()
    page.set_content("<!DOCTYPE html><html><body></body></html>")
    page.add_script_tag(content=MERMAID.read_text(encoding="utf-8"))
    yield page
    page.close()


@pytest.mark.parametrize("path", policy_files(POLICIES), ids=lambda path: f"{path.parent.name}@{path.stem}")
def test_every_policy_chart_renders_in_mermaid(mermaid: Page, path: Path) -> None:
    """Each version's chart renders, one Mermaid node per walk rule and exit, and per required decision."""
    policy = load_file(path)
    chart = policy_flowchart(policy)
    result = mermaid.evaluate(_RENDER, with_requirements(chart.to_mermaid(), policy))
    assert result["ok"], result.get("error")
    assert result["nodes"] == len(chart.nodes) + len(policy.requires)


def test_a_highlighted_walk_renders_in_mermaid(mermaid: Page, evaluator: Evaluator) -> None:
    """A real decision's walk (bold links, reached and dimmed classes) still renders."""
    policy = load_file(POLICIES / GUIDE / "1.0.0.yaml")
    decision = evaluator.evaluate(GUIDE, {
        "is_patient_safety_incident": "YES", "individual_concern_raised": "YES", "safeguarding_concern": "NO",
        "intent_to_harm": "NO", "substance_abuse_indicated": "YES",
    }, version="1.0.0")
    steps = [StepSpec(r.id, r.title, r.question, str(r.then), str(r.otherwise)) for r in policy.rules]
    highlight = Highlight.from_results(((e.rule_id, e.result.value) for e in decision.trace), steps)
    text = policy_flowchart(policy).to_mermaid(highlight)
    assert "==>" in text
    result = mermaid.evaluate(_RENDER, text)
    assert result["ok"], result.get("error")


def test_the_readme_example_is_what_policy_graph_prints(capsys: pytest.CaptureFixture[str]) -> None:
    """The README's Mermaid block is today's `fairpath policy graph pre-formal-check@2.0.0` output."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```mermaid\n(.*?)```", readme, flags=re.DOTALL)
    assert main(["policy", "graph", "pre-formal-check@2.0.0", "--dir", str(POLICIES)]) == 0
    assert capsys.readouterr().out in blocks
