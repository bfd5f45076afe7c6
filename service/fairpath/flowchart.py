"""A policy's walk as a flowchart: Mermaid text or SVG, optionally with one walk highlighted.

One module draws every flowchart fairpath shows: the review console's pages,
``fairpath policy graph NAME[@VERSION] --format mermaid|svg`` and the README
(Mermaid renders in GitHub and GitLab reviews). The chart is built from the
walk rules as the service describes them (``RuleSpec``: id, title, question,
``then`` and ``else`` targets written ``rule X`` or ``pathway CODE (sub)``), so
the console, a client of the gRPC API, and the offline CLI draw the same thing.

Shapes: a **question** (its condition holding ends the walk at an exit) and a
**gate** (its condition must hold for the walk to go on) show their id, title
and wording; an **exit** shows the pathway code and sub-reason it leads to.

The SVG is laid out here, without a JavaScript renderer, so the console's
Content-Security-Policy can stay strict: rules one per row down the left in
file order (the walk only goes forward), exits on the right beside the first
rule leading to them, a skip to a later rule drawn as a bend down the left
margin. Highlighting is by CSS class (``reached``, ``taken``, ``dimmed``,
``changed``): the console's stylesheet colours them, a standalone SVG carries
its own ``<style>``.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from fairpath.policy.model import Policy

NodeKind = Literal["question", "gate", "exit"]
THEN: Literal["then"] = "then"
ELSE: Literal["else"] = "else"

_ROW = 104  # px between rule rows
_RULE_X, _RULE_W, _NODE_H = 64, 440, 84
_EXIT_X, _EXIT_W = 600, 380
_WIDTH = _EXIT_X + _EXIT_W + 16
_WRAP = 62  # characters per line of wording inside a rule box
_SAFE_ID = re.compile(r"[^A-Za-z0-9_]")
_BOLD = ' font-weight="bold"'


class RuleLike(Protocol):
    """What the chart needs of a walk rule: the client's ``RuleSpec`` has exactly these fields."""

    @property
    def rule_id(self) -> str: ...  # noqa: D102
    @property
    def title(self) -> str: ...  # noqa: D102
    @property
    def question(self) -> str: ...  # noqa: D102
    @property
    def then_target(self) -> str: ...  # noqa: D102
    @property
    def else_target(self) -> str: ...  # noqa: D102


@dataclass(frozen=True)
class StepSpec:
    """A walk rule in the form the chart reads (for callers holding a loaded policy rather than a RuleSpec)."""

    rule_id: str
    title: str
    question: str
    then_target: str
    else_target: str


@dataclass(frozen=True)
class Node:
    """One box: a rule (question or gate) or an exit (a pathway, with its sub-reason)."""

    key: str
    kind: NodeKind
    ref: str
    label: str
    wording: str = ""
    row: int = 0


@dataclass(frozen=True)
class Edge:
    """An arrow from a rule to where one of its branches leads."""

    source: str
    target: str
    branch: Literal["then", "else"]

    @property
    def label(self) -> str:
        """``yes`` on the branch taken when the condition holds, ``no`` on the other."""
        return "yes" if self.branch == THEN else "no"


@dataclass(frozen=True)
class Highlight:
    """A walk to show on the chart: the rules reached, the branches taken, the exit reached.

    Build it with :meth:`from_results` from a decision's trace; an empty highlight draws the
    chart plain. ``changed`` marks what another version changes (the diff page): rule ids, and
    exits by their target text (``CODE`` or ``CODE (sub-reason)``).
    """

    rules: frozenset[str] = frozenset()
    branches: frozenset[tuple[str, str]] = frozenset()
    exit: str = ""
    changed: frozenset[str] = frozenset()

    @classmethod
    def from_results(cls, results: Iterable[tuple[str, str]], rules: Iterable[RuleLike]) -> Highlight:
        """Highlight a walk given ``(rule_id, result)`` pairs of its trace's walk entries.

        ``FIRED`` took the ``then`` branch, ``NOT_FIRED`` the ``else`` branch, ``UNANSWERED``
        stopped the walk at that rule; ``NOT_REACHED`` and other rule ids (advice, checks) are skipped.
        """
        by_id = {rule.rule_id: rule for rule in rules}
        reached: list[str] = []
        branches: set[tuple[str, str]] = set()
        end = ""
        for rule_id, result in results:
            rule = by_id.get(rule_id)
            if rule is None or result not in ("FIRED", "NOT_FIRED", "UNANSWERED"):
                continue
            reached.append(rule_id)
            if result == "UNANSWERED":
                end = ""
                continue
            branch = THEN if result == "FIRED" else ELSE
            branches.add((rule_id, branch))
            target = rule.then_target if branch == THEN else rule.else_target
            end = _exit_key(target) if target.startswith("pathway ") else ""
        return cls(rules=frozenset(reached), branches=frozenset(branches), exit=end)

    @property
    def active(self) -> bool:
        """Whether there is a walk to show (otherwise nothing is dimmed)."""
        return bool(self.rules)


@dataclass(frozen=True)
class Flowchart:
    """The walk of one policy version as nodes and edges, in the order the file lists the rules."""

    title: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    pathway_titles: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, title: str, rules: Iterable[RuleLike], pathway_titles: Mapping[str, str] | None = None) -> Flowchart:
        """Chart the walk ``rules`` describe; ``pathway_titles`` (code -> title) adds words to the exits."""
        steps = list(rules)
        titles = dict(pathway_titles or {})
        nodes: dict[str, Node] = {}
        edges: list[Edge] = []
        for row, rule in enumerate(steps):
            gate = rule.then_target.startswith("rule ") and not rule.else_target.startswith("rule ")
            key = _rule_key(rule.rule_id)
            nodes[key] = Node(key, "gate" if gate else "question", rule.rule_id,
                              f"{rule.rule_id} · {rule.title}", rule.question, row)
        exit_rows: set[int] = set()
        for row, rule in enumerate(steps):
            branches: tuple[tuple[Literal["then", "else"], str], ...] = (
                (THEN, rule.then_target), (ELSE, rule.else_target))
            for branch, target in branches:
                if target.startswith("rule "):
                    key = _rule_key(target.removeprefix("rule "))
                else:
                    key = _exit_key(target)
                    if key not in nodes:
                        # Beside the first rule leading there, or the next row with no exit yet.
                        free = next(r for r in range(row, row + len(steps) * 2 + 2) if r not in exit_rows)
                        exit_rows.add(free)
                        text = target.removeprefix("pathway ").strip()
                        nodes[key] = Node(key, "exit", text, text, titles.get(text.split(" ")[0], ""), free)
                edges.append(Edge(_rule_key(rule.rule_id), key, branch))
        return cls(title, tuple(nodes.values()), tuple(edges), titles)

    def node_for_rule(self, rule_id: str) -> str:
        """The key of ``rule_id``'s node, as used in element ids and Mermaid."""
        return _rule_key(rule_id)

    # --- Mermaid --------------------------------------------------------------------

    def to_mermaid(self, highlight: Highlight | None = None) -> str:
        """Mermaid ``flowchart TD`` text; a highlight becomes ``reached``/``dimmed`` classes and bold links."""
        lines = ["flowchart TD"]
        for node in self.nodes:
            text = _mermaid_text(node)
            shape = {"gate": ('{{"', '"}}'), "question": ('{"', '"}'), "exit": ('(["', '"])')}[node.kind]
            lines.append(f"    {node.key}{shape[0]}{text}{shape[1]}")
        taken_links: list[int] = []
        for index, edge in enumerate(self.edges):
            taken = highlight is not None and (self._ref(edge.source), edge.branch) in highlight.branches
            arrow = "==>" if taken else "-->"
            if taken:
                taken_links.append(index)
            lines.append(f"    {edge.source} {arrow}|{edge.label}| {edge.target}")
        lines.extend([
            "    classDef gate fill:#f0f4f5,stroke:#4c6272",
            "    classDef exit fill:#e8f1f8,stroke:#005eb8",
            "    classDef reached fill:#ffeb3b,stroke:#212b32,stroke-width:3px",
            "    classDef dimmed opacity:0.45",
            "    classDef changed stroke:#d5281b,stroke-width:3px,stroke-dasharray:6 3",
        ])
        gates = [node.key for node in self.nodes if node.kind == "gate"]
        exits = [node.key for node in self.nodes if node.kind == "exit"]
        for name, keys in (("gate", gates), ("exit", exits)):
            if keys:
                lines.append(f"    class {','.join(keys)} {name}")
        if highlight is not None:
            for name, keys in self._classes(highlight).items():
                if keys and name != "taken":
                    lines.append(f"    class {','.join(keys)} {name}")
        if taken_links:
            lines.append(f"    linkStyle {','.join(map(str, taken_links))} stroke:#212b32,stroke-width:3px")
        return "\n".join(lines) + "\n"

    # --- SVG ------------------------------------------------------------------------

    def to_svg(self, highlight: Highlight | None = None, *, standalone: bool = False, label: str = "") -> str:
        """The chart as SVG; ``standalone`` adds an XML declaration-free ``<style>`` so it renders alone.

        Every rule node carries ``data-rule`` (its id) and every exit ``data-pathway``; the classes
        ``reached``, ``taken``, ``dimmed`` and ``changed`` say how a highlight touches each part.
        """
        highlight = highlight or Highlight()
        classes = self._classes(highlight)
        marks = {key: name for name in ("dimmed", "reached", "changed") for key in classes[name]}
        rows = max((node.row for node in self.nodes), default=0) + 1
        height = rows * _ROW + 24
        title = label or f"Flowchart of {self.title}"
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" class="fp-flowchart" viewBox="0 0 {_WIDTH} {height}" '
            f'width="{_WIDTH}" height="{height}" role="img" aria-labelledby="fp-chart-title">',
            f'<title id="fp-chart-title">{escape(title)}</title>',
        ]
        if standalone:
            parts.append(f"<style>{_STANDALONE_CSS}</style>")
        parts.append(
            '<defs><marker id="fp-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
            'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#425563"/></marker></defs>'
        )
        positions = {node.key: node for node in self.nodes}
        skips = 0
        for edge in self.edges:
            source, target = positions[edge.source], positions[edge.target]
            taken = (positions[edge.source].ref, edge.branch) in highlight.branches
            css = "fp-edge taken" if taken else ("fp-edge dimmed" if highlight.active else "fp-edge")
            path, text_at = self._route(source, target, skips)
            if target.kind != "exit" and target.row != source.row + 1:
                skips += 1
            parts.append(
                f'<g class="{css}" data-from="{escape(edge.source)}" data-to="{escape(edge.target)}">'
                f'<path d="{path}" fill="none" stroke="#425563" stroke-width="2" marker-end="url(#fp-arrow)"/>'
                f'<text x="{text_at[0]}" y="{text_at[1]}" font-size="13" fill="#212b32">{edge.label}</text></g>'
            )
        for node in self.nodes:
            parts.append(self._svg_node(node, marks.get(node.key, "")))
        parts.append("</svg>")
        return "".join(parts)

    def _ref(self, key: str) -> str:
        return next((node.ref for node in self.nodes if node.key == key), "")

    def _classes(self, highlight: Highlight) -> dict[str, list[str]]:
        reached = [_rule_key(rule_id) for rule_id in sorted(highlight.rules)]
        if highlight.exit:
            reached.append(highlight.exit)
        changed = [node.key for node in self.nodes if node.ref in highlight.changed]
        dimmed = [node.key for node in self.nodes if highlight.active and node.key not in reached]
        return {"reached": reached, "dimmed": dimmed, "changed": changed, "taken": []}

    @staticmethod
    def _route(source: Node, target: Node, skips: int) -> tuple[str, tuple[int, int]]:
        """The path of an edge and where its label goes."""
        sy = 12 + source.row * _ROW + _NODE_H // 2
        if target.kind == "exit":
            ty = 12 + target.row * _ROW + _NODE_H // 2
            x1, x2 = _RULE_X + _RULE_W, _EXIT_X
            if ty == sy:
                return f"M{x1},{sy} L{x2},{ty}", (x1 + 12, sy - 6)
            mid = (x1 + x2) // 2
            return f"M{x1},{sy} L{mid},{sy} L{mid},{ty} L{x2},{ty}", (x1 + 12, sy - 6)
        top = 12 + target.row * _ROW
        if target.row == source.row + 1:
            x = _RULE_X + _RULE_W // 2
            return f"M{x},{sy + _NODE_H // 2} L{x},{top}", (x + 8, sy + _NODE_H // 2 + 14)
        lane = max(8, _RULE_X - 16 - 10 * (skips % 4))
        ty = top + _NODE_H // 2
        return f"M{_RULE_X},{sy} L{lane},{sy} L{lane},{ty} L{_RULE_X},{ty}", (lane + 2, sy - 6)

    @staticmethod
    def _svg_node(node: Node, mark: str) -> str:
        y = 12 + node.row * _ROW
        css = f"fp-node fp-{node.kind}" + (f" {mark}" if mark else "")
        if node.kind == "exit":
            attrs = f'data-pathway="{escape(node.label)}"'
            x, width, fill, stroke, radius = _EXIT_X, _EXIT_W, "#e8f1f8", "#005eb8", 28
            lines = [node.label, *textwrap.wrap(node.wording, 48)[:2]]
        else:
            attrs = f'data-rule="{escape(node.ref)}"'
            x, width, radius = _RULE_X, _RULE_W, 4
            fill, stroke = ("#f0f4f5", "#4c6272") if node.kind == "gate" else ("#ffffff", "#212b32")
            wording = textwrap.wrap(node.wording, _WRAP)
            if len(wording) > 3:
                wording = [*wording[:2], wording[2][: _WRAP - 1] + "…"]
            lines = [node.label, *wording]
        texts = "".join(
            f'<text x="{x + 12}" y="{y + 22 + 18 * index}" font-size="{14 if index == 0 else 13}"'
            f'{_BOLD if index == 0 else ""} fill="#212b32">{escape(line)}</text>'
            for index, line in enumerate(lines)
        )
        return (
            f'<g class="{css}" id="fp-{escape(node.key)}" {attrs}>'
            f'<rect x="{x}" y="{y}" width="{width}" height="{_NODE_H}" rx="{radius}" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="2"/>{texts}</g>'
        )


def policy_flowchart(policy: Policy) -> Flowchart:
    """The flowchart of a loaded policy version (what the CLI draws from files)."""
    return Flowchart.build(
        policy.key,
        [StepSpec(rule.id, rule.title, rule.question, str(rule.then), str(rule.otherwise)) for rule in policy.rules],
        {code: pathway.title for code, pathway in policy.pathways.items()},
    )


def with_requirements(mermaid: str, policy: Policy) -> str:
    """Add a chained policy's requirements to its Mermaid chart (unchanged for a policy requiring nothing).

    Each required decision is a node of its own, with a dotted edge, labelled with the facts taken from
    it, to the first walk rule that reads one of them: the chart shows where the other policy's result
    enters the walk (the other policy's own walk is its own chart).
    """
    if not policy.requires:
        return mermaid
    head, _, rest = mermaid.partition("\n")
    lines = []
    for index, requirement in enumerate(policy.requires):
        taken = {fact for fact, _ in requirement.facts}
        key = f"q_{index}"
        lines.append(f'    {key}[/"requires {requirement.label}<br/>the decision of another policy"/]')
        reader = next((rule for rule in policy.rules if taken & set(rule.reads)), None)
        if reader is not None:
            label = ", ".join(f"{fact} = its {source}" for fact, source in requirement.facts)
            lines.append(f"    {key} -.->|{label}| {_rule_key(reader.id)}")
    return "\n".join([head, *lines, rest])


def _rule_key(rule_id: str) -> str:
    return "r_" + _SAFE_ID.sub("_", rule_id)


def _exit_key(target: str) -> str:
    return "p_" + _SAFE_ID.sub("_", target.removeprefix("pathway ").strip())


def _mermaid_text(node: Node) -> str:
    text = node.label + (f"<br/>{node.wording}" if node.wording else "")
    # Mermaid labels are quoted: a double quote must be written as an entity.
    return text.replace('"', "#quot;")


_STANDALONE_CSS = (
    "text{font-family:Arial,sans-serif}"
    ".fp-node.reached rect{fill:#ffeb3b;stroke:#212b32;stroke-width:4}"
    ".fp-edge.taken path{stroke:#212b32;stroke-width:4}"
    ".dimmed{opacity:.45}"
    ".fp-node.changed rect{stroke:#d5281b;stroke-width:4;stroke-dasharray:8 4}"
)
