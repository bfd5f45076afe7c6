"""Analysis pages (auditor): ``/fairness`` (chart, table, CSV) and ``/replay`` (the impact matrix).

``/fairness`` shows, per equality group of each policy version, the share of
decisions whose pathway is individual-directed with its 95% interval (Wilson),
and the relative likelihood against the reference group as ``OutcomeStats``
reports it (Katz interval). A group whose counts the service suppressed is
shown as suppressed, never estimated. ``/replay`` re-evaluates recorded
decisions against a candidate version (``ReplayDecisions``: nothing is
recorded) and shows recorded pathway against candidate pathway.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import urlencode

from fairpath_client import OutcomeStats, PolicyDetail, ReplayReport, StatsSlice
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fairpath.audit.fairness import SUPPRESS_BELOW, SUPPRESSION_NOTE
from fairpath.console.pages_decisions import parse_filter
from fairpath.console.sessions import Session
from fairpath.console.web import Console, requires

_Z95 = 1.959963984540054


@dataclass(frozen=True)
class GroupRate:
    """One equality group's share of individual-directed pathways in one slice."""

    group: str
    directed: int
    total: int
    suppressed: bool
    reference: bool
    ratio: float | None = None
    ratio_low: float | None = None
    ratio_high: float | None = None

    @property
    def rate(self) -> float:
        """The share (0 to 1); 0 when suppressed."""
        return self.directed / self.total if self.total and not self.suppressed else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        """The 95% Wilson score interval of :attr:`rate`."""
        return wilson(self.directed, self.total) if not self.suppressed else (0.0, 0.0)


def wilson(successes: int, trials: int) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion (sound for small counts and 0 or 100%)."""
    if trials == 0:
        return (0.0, 0.0)
    p = successes / trials
    z2 = _Z95 * _Z95
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    spread = _Z95 * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return max(0.0, centre - spread), min(1.0, centre + spread)


def group_rates(stats: StatsSlice, detail: PolicyDetail) -> list[GroupRate]:
    """Per equality group: individual-directed decisions out of decided ones, with the service's ratios."""
    directed_codes = {p.code for p in detail.pathways if p.individual_directed}
    codes = {p.code for p in detail.pathways}
    groups: dict[str, dict[str, Any]] = {}
    for cell in stats.by_equality_group:
        if cell.pathway not in codes:
            continue  # undecided decisions take no part in the shares, as in the service's ratios
        entry = groups.setdefault(cell.group, {"directed": 0, "total": 0, "suppressed": False})
        entry["suppressed"] |= cell.suppressed
        entry["total"] += cell.count
        entry["directed"] += cell.count if cell.pathway in directed_codes else 0
    ratios = {r.group: r for r in stats.relative_likelihood}
    reference = next((r.reference_group for r in stats.relative_likelihood), "")
    rates = []
    for group, entry in sorted(groups.items()):
        ratio = ratios.get(group)
        if ratio is not None and not ratio.suppressed:
            # The service's own counts: whole even when single pathway cells were too small to show.
            rates.append(GroupRate(group, ratio.individual_directed, ratio.total, False, False,
                                   ratio.ratio, ratio.ci_low, ratio.ci_high))
        else:
            rates.append(GroupRate(group, entry["directed"], entry["total"],
                                   bool(entry["suppressed"]) or ratio is not None, group == reference))
    return rates


def rate_chart(rates: list[GroupRate], caption: str) -> str:
    """A horizontal chart: one mark per group (a bar and its 95% interval, or the word "suppressed")."""
    left, width, row = 220, 460, 44
    height = 40 + row * len(rates)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="fp-chart" viewBox="0 0 {left + width + 40} {height}" '
        f'width="{left + width + 40}" height="{height}" role="img" aria-label="{escape(caption)}">',
        f"<title>{escape(caption)}</title>",
    ]
    for tick in (0, 25, 50, 75, 100):
        x = left + width * tick / 100
        parts.append(f'<line x1="{x}" y1="20" x2="{x}" y2="{height - 10}" stroke="#d8dde0"/>'
                     f'<text x="{x}" y="14" font-size="12" text-anchor="middle" fill="#212b32">{tick}%</text>')
    for index, rate in enumerate(rates):
        y = 28 + row * index
        label = f"{rate.group}{' (reference)' if rate.reference else ''}"
        mark = [f'<text x="{left - 8}" y="{y + 18}" font-size="14" text-anchor="end" fill="#212b32">'
                f"{escape(label)}</text>"]
        if rate.suppressed:
            mark.append(f'<text x="{left + 6}" y="{y + 18}" font-size="14" font-style="italic" fill="#4c6272">'
                        "suppressed (small numbers)</text>")
        else:
            low, high = rate.interval
            css = "fp-bar-ref" if rate.reference else "fp-bar"
            mark.append(f'<rect class="{css}" x="{left}" y="{y + 4}" width="{width * rate.rate:.1f}" height="20" '
                        f'fill="{"#4c6272" if rate.reference else "#005eb8"}"/>')
            x1, x2 = left + width * low, left + width * high
            mark.append(f'<path class="fp-interval" d="M{x1:.1f},{y + 14} L{x2:.1f},{y + 14} M{x1:.1f},{y + 6} '
                        f'L{x1:.1f},{y + 22} M{x2:.1f},{y + 6} L{x2:.1f},{y + 22}" stroke="#212b32" '
                        'stroke-width="2" fill="none"/>')
        state = " suppressed" if rate.suppressed else ""
        parts.append(f'<g class="fp-mark{state}" data-group="{escape(rate.group)}">{"".join(mark)}</g>')
    parts.append("</svg>")
    return "".join(parts)


def _stats_query(request: Request) -> tuple[dict[str, str], dict[str, Any], list[dict[str, str]]]:
    params = {key: value.strip() for key, value in request.query_params.items()}
    query, errors = parse_filter(params)
    arguments: dict[str, Any] = {
        "policy": params.get("policy", ""), "version": params.get("version", ""),
        "since": query.from_time, "until": query.to_time, "reference_group": params.get("reference_group", ""),
    }
    return params, arguments, errors


async def _figures(
    console: Console, session: Session, arguments: dict[str, Any]
) -> tuple[OutcomeStats, list[tuple[StatsSlice, list[GroupRate]]]]:
    stats = await console.call(session, lambda c: c.outcome_stats(**arguments))
    figures = []
    for piece in stats.slices:
        detail = await console.call(session, lambda c, p=piece: c.get_policy(p.policy, p.version))  # type: ignore[misc]
        figures.append((piece, group_rates(piece, detail)))
    return stats, figures


@requires("auditor")
async def fairness(console: Console, request: Request, session: Session) -> Response:
    """GET /fairness: per group, the individual-directed share with its interval, as a chart and a table."""
    params, arguments, errors = _stats_query(request)
    stats, figures = (None, []) if errors else await _figures(console, session, arguments)
    charts = [
        Markup(rate_chart(rates, f"Share of individual-directed pathways by equality group, "  # noqa: S704
                          f"{piece.policy} {piece.version}"))
        for piece, rates in figures
    ]
    csv_query = urlencode({k: v for k, v in params.items() if v})
    return console.render(request, "fairness.html", {
        "title": "Fairness", "params": params, "errors": errors, "stats": stats,
        "figures": list(zip(figures, charts, strict=True)), "csv_query": csv_query,
        "suppression_note": SUPPRESSION_NOTE.format(n=stats.suppression_threshold if stats else SUPPRESS_BELOW),
    })


@requires("auditor")
async def fairness_csv(console: Console, request: Request, session: Session) -> Response:
    """GET /fairness.csv: the same figures as the table, one row per group and slice."""
    _, arguments, errors = _stats_query(request)
    if errors:
        return Response("bad filter\n", status_code=400, media_type="text/plain")
    _, figures = await _figures(console, session, arguments)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["policy", "version", "period", "equality_group", "reference", "individual_directed", "total",
                     "rate", "rate_ci_low", "rate_ci_high", "relative_likelihood", "rl_ci_low", "rl_ci_high",
                     "suppressed"])
    for piece, rates in figures:
        for rate in rates:
            low, high = rate.interval
            numbers = ["", "", "", "", "", "", ""] if rate.suppressed else [
                rate.directed, rate.total, f"{rate.rate:.4f}", f"{low:.4f}", f"{high:.4f}",
                "" if rate.ratio is None else f"{rate.ratio:.4f}",
                "" if rate.ratio_low is None else f"{rate.ratio_low:.4f}",
            ]
            writer.writerow([piece.policy, piece.version, piece.period, rate.group, rate.reference, *numbers,
                             "" if rate.suppressed or rate.ratio_high is None else f"{rate.ratio_high:.4f}",
                             rate.suppressed])
    stamp = datetime.now().strftime("%Y%m%d")
    return Response(out.getvalue(), media_type="text/csv", headers={
        "content-disposition": f'attachment; filename="fairpath-fairness-{stamp}.csv"'})


@requires("auditor")
async def replay(console: Console, request: Request, session: Session) -> Response:
    """GET /replay: choose a candidate version and a filter; the impact matrix when one is chosen."""
    params = {key: value.strip() for key, value in request.query_params.items()}
    policies = await console.call(session, lambda c: c.list_policies())
    candidate = params.get("candidate", "")
    query, errors = parse_filter(params)
    report: ReplayReport | None = None
    name, _, version = candidate.partition("@")
    if candidate and not version:
        errors.append({"field": "candidate", "text": "Choose a candidate version from the list"})
    if candidate and not errors:
        report = await console.call(session, lambda c: c.replay_decisions(
            name, version, query, max_changed=500, timeout=60))
    matrix = _matrix(report) if report else None
    cell = params.get("cell", "")
    shown = []
    if report and cell:
        before, _, after = cell.partition("~")
        shown = [d for d in report.changed_decisions if (d.from_pathway, d.to_pathway) == (before, after)]
    base = {k: v for k, v in params.items() if v and k != "cell"}
    # The unchanged cells link to the trail: the same filter, under the candidate's policy.
    decisions_base = {k: v for k, v in base.items() if k in ("version", "from", "to")}
    if name:
        decisions_base["policy"] = name
    return console.render(request, "replay.html", {
        "title": "Replay", "params": params, "errors": errors, "report": report, "matrix": matrix,
        "candidates": [f"{p.name}@{p.version}" for p in policies], "base": base, "cell": cell,
        "decisions_base": decisions_base,
        "cell_decisions": shown,
    })


def _matrix(report: ReplayReport) -> dict[str, Any]:
    rows = sorted({t.from_pathway for t in report.transitions})
    columns = sorted({t.to_pathway for t in report.transitions})
    counts = {(t.from_pathway, t.to_pathway): t.count for t in report.transitions}
    return {"rows": rows, "columns": columns, "counts": counts}


ROUTES = [
    Route("/fairness", fairness, methods=["GET"]),
    Route("/fairness.csv", fairness_csv, methods=["GET"]),
    Route("/replay", replay, methods=["GET"]),
]
