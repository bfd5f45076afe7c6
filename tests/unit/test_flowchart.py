"""The flowchart module: shapes, edges, highlighting, Mermaid and SVG, and ``fairpath policy graph``."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from fairpath.cli import main
from fairpath.flowchart import Flowchart, Highlight, StepSpec, policy_flowchart
from fairpath.policy.loader import load_file

from tests.conftest import GUIDE, POLICIES

SVG = "{http://www.w3.org/2000/svg}"
STEPS = [
    StepSpec("G1", "Gate", "Is it in scope?", "rule Q1", "pathway OUT"),
    StepSpec("Q1", "Question", 'Was it "deliberate" <harm>?', "pathway HARM", "rule Q2"),
    StepSpec("Q2", "Last", "Any mitigation?", "pathway MITIGATED (sub)", "pathway OUT"),
]


def _chart() -> Flowchart:
    return Flowchart.build("demo 1.0.0", STEPS, {"HARM": "Deliberate harm"})


def test_rules_become_gates_or_questions_and_each_exit_is_drawn_once() -> None:
    """A rule whose condition must hold to go on is a gate; exits are one node per target, shared ones once."""
    chart = _chart()
    kinds = {node.ref: node.kind for node in chart.nodes}
    assert kinds == {"G1": "gate", "Q1": "question", "Q2": "question", "OUT": "exit", "HARM": "exit",
                     "MITIGATED (sub)": "exit"}
    assert [(e.source, e.target, e.label) for e in chart.edges] == [
        ("r_G1", "r_Q1", "yes"), ("r_G1", "p_OUT", "no"), ("r_Q1", "p_HARM", "yes"), ("r_Q1", "r_Q2", "no"),
        ("r_Q2", "p_MITIGATED__sub_", "yes"), ("r_Q2", "p_OUT", "no"),
    ]
    harm = next(node for node in chart.nodes if node.ref == "HARM")
    assert harm.wording == "Deliberate harm"  # exits carry the pathway's title


def test_exits_of_one_rule_never_share_a_row() -> None:
    """Two exits first reached from the same rule are laid out on different rows (no overlapping boxes)."""
    chart = Flowchart.build("x", [StepSpec("A", "A", "?", "pathway P1", "pathway P2")])
    rows = [node.row for node in chart.nodes if node.kind == "exit"]
    assert len(set(rows)) == 2


def test_a_highlight_follows_the_trace_results() -> None:
    """FIRED takes then, NOT_FIRED takes else; the exit is where the last step led; unknown ids are ignored."""
    highlight = Highlight.from_results([("G1", "FIRED"), ("Q1", "NOT_FIRED"), ("Q2", "FIRED"),
                                        ("advice-x", "FIRED"), ("Z9", "NOT_REACHED")], STEPS)
    assert highlight.rules == {"G1", "Q1", "Q2"}
    assert highlight.branches == {("G1", "then"), ("Q1", "else"), ("Q2", "then")}
    assert highlight.exit == "p_MITIGATED__sub_"
    stopped = Highlight.from_results([("G1", "FIRED"), ("Q1", "UNANSWERED")], STEPS)
    assert stopped.rules == {"G1", "Q1"}
    assert stopped.exit == ""


def test_the_svg_marks_reached_taken_and_dimmed_parts_and_escapes_wording() -> None:
    """SVG parses; reached nodes and taken edges carry their classes, the rest is dimmed; text is escaped."""
    highlight = Highlight.from_results([("G1", "FIRED"), ("Q1", "FIRED")], STEPS)
    root = ET.fromstring(_chart().to_svg(highlight))  # noqa: S314 (our own output)
    nodes = {g.get("id"): g.get("class", "") for g in root.iter(f"{SVG}g") if g.get("id")}
    assert "reached" in nodes["fp-r_G1"]
    assert "reached" in nodes["fp-r_Q1"]
    assert "reached" in nodes["fp-p_HARM"]
    assert "dimmed" in nodes["fp-r_Q2"]
    assert "dimmed" in nodes["fp-p_OUT"]
    taken = {(g.get("data-from"), g.get("data-to")) for g in root.iter(f"{SVG}g") if "taken" in g.get("class", "")}
    assert taken == {("r_G1", "r_Q1"), ("r_Q1", "p_HARM")}
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert 'Was it "deliberate" <harm>?' in texts


def test_an_unhighlighted_svg_dims_nothing_and_a_standalone_one_carries_its_style() -> None:
    """Without a walk nothing is dimmed or reached; ``standalone`` embeds the styles the classes need."""
    plain = _chart().to_svg()
    assert "dimmed" not in plain
    assert "reached" not in plain.replace(".fp-node.reached", "")
    assert "<style>" not in plain  # the console's CSP allows no inline style: its stylesheet does this
    assert "<style>" in _chart().to_svg(standalone=True)


def test_mermaid_text_has_every_node_edge_and_the_highlight() -> None:
    """Mermaid: shapes per kind, quotes turned into entities, taken links bold, classes for the walk."""
    highlight = Highlight.from_results([("G1", "NOT_FIRED")], STEPS)
    text = _chart().to_mermaid(highlight)
    assert text.startswith("flowchart TD\n")
    assert 'r_G1{{"G1 · Gate<br/>Is it in scope?"}}' in text
    assert "#quot;deliberate#quot;" in text
    assert 'p_OUT(["OUT"])' in text
    assert "r_G1 ==>|no| p_OUT" in text
    assert "r_G1 -->|yes| r_Q1" in text
    assert "class r_G1,p_OUT reached" in text
    assert re.search(r"class [^\n]*r_Q2[^\n]* dimmed", text)


def test_the_guide_chart_covers_every_rule_and_pathway() -> None:
    """The real guide: one node per walk rule, and every pathway the walk can end at is an exit."""
    policy = load_file(POLICIES / GUIDE / "1.0.0.yaml")
    chart = policy_flowchart(policy)
    rules = [node.ref for node in chart.nodes if node.kind != "exit"]
    assert rules == [rule.id for rule in policy.rules]
    exits = {node.ref.split(" ")[0] for node in chart.nodes if node.kind == "exit"}
    assert exits == set(policy.pathways)


def test_policy_graph_prints_mermaid_or_svg(capsys: pytest.CaptureFixture[str]) -> None:
    """``fairpath policy graph NAME@VERSION`` prints Mermaid by default and a standalone SVG on request."""
    assert main(["policy", "graph", f"{GUIDE}@1.0.0", "--dir", str(POLICIES)]) == 0
    assert capsys.readouterr().out.startswith("flowchart TD\n")
    assert main(["policy", "graph", f"{GUIDE}@1.0.0", "--dir", str(POLICIES), "--format", "svg"]) == 0
    root = ET.fromstring(capsys.readouterr().out)  # noqa: S314 (our own output)
    assert len([g for g in root.iter(f"{SVG}g") if g.get("data-rule")]) == 14
    assert main(["policy", "graph", "no-such-policy", "--dir", str(POLICIES)]) == 2
    assert "no-such-policy" in capsys.readouterr().err


def test_changed_rules_and_exits_are_marked() -> None:
    """``changed`` marks rules by id and exits by target text, on the SVG and in Mermaid."""
    changed = Highlight(changed=frozenset({"Q1", "MITIGATED (sub)"}))
    root = ET.fromstring(_chart().to_svg(changed))  # noqa: S314 (our own output)
    marked = {g.get("id") for g in root.iter(f"{SVG}g") if "changed" in g.get("class", "")}
    assert marked == {"fp-r_Q1", "fp-p_MITIGATED__sub_"}
    assert "class r_Q1,p_MITIGATED__sub_ changed" in _chart().to_mermaid(changed)
