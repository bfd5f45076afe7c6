"""Pages of the decision trail: ``/decisions`` (filtered, paged) and ``/decisions/{decision_id}``.

Both need the auditor role, as do the DecisionService RPCs they call. A
decision's page draws its walk on the policy's flowchart; recording an outcome
posts to ``/decisions/{decision_id}/outcomes`` and comes back to the page.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

from fairpath_client import DecisionFilter, DecisionRecord, InvalidRequestError
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from fairpath.console.charts import policy_chart
from fairpath.console.sessions import Session
from fairpath.console.web import Console, form_of, requires
from fairpath.flowchart import Highlight

#: Query-string filters of ``/decisions`` and the DecisionFilter field each sets.
FILTERS = ("policy", "version", "pathway", "status", "rule_fired", "incident_ref", "staff_ref", "action_ref")
PAGE_SIZE = 25
_STATUSES = ("DECIDED", "NEEDS_INFORMATION")


def parse_filter(params: dict[str, str]) -> tuple[DecisionFilter, list[dict[str, str]]]:
    """The DecisionFilter the query string asks for, and the problems with it (GOV.UK error-summary items)."""
    errors: list[dict[str, str]] = []
    values: dict[str, Any] = {name: params[name].strip() for name in FILTERS if params.get(name, "").strip()}
    status = values.pop("status", None)
    if status is not None and status not in _STATUSES:
        errors.append({"field": "status", "text": "Choose a status from the list"})
        status = None
    window: dict[str, datetime] = {}
    for name, field, shift in (("from", "from_time", 0), ("to", "to_time", 1)):
        text = params.get(name, "").strip()
        if not text:
            continue
        try:
            day = date.fromisoformat(text)
        except ValueError:
            errors.append({"field": name, "text": f"Enter the {name} date as YYYY-MM-DD, for example 2026-03-31"})
            continue
        # "to" is inclusive for people: decisions before the start of the next day.
        window[field] = datetime.combine(day + timedelta(days=shift), time(), tzinfo=UTC)
    return DecisionFilter(status=status, **values, **window), errors  # type: ignore[arg-type]


@requires("auditor")
async def decision_list(console: Console, request: Request, session: Session) -> Response:
    """GET /decisions: one page of the trail matching the filters, newest first, and the chain's state."""
    params = dict(request.query_params)
    query, errors = parse_filter(params)
    token = params.get("page", "")
    records: tuple[DecisionRecord, ...] = ()
    next_token = ""
    if not errors:
        try:
            # Reviewers come for what was decided lately: the newest decisions first.
            page = await console.call(
                session, lambda c: c.list_decisions(query, page_size=PAGE_SIZE, page_token=token, newest_first=True)
            )
        except InvalidRequestError as error:
            errors.append({"field": "policy", "text": str(error)})
        else:
            records, next_token = page.records, page.next_page_token
    chain = await console.call(session, lambda c: c.verify_chain())
    kept = {key: value for key, value in params.items() if key != "page" and value}
    return console.render(request, "decisions.html", {
        "title": "Decisions", "records": records, "params": params, "errors": errors, "chain": chain,
        "next_query": {**kept, "page": next_token} if next_token else None,
        "first_query": kept if token else None, "statuses": _STATUSES,
    })


@requires("auditor")
async def decision_page(console: Console, request: Request, session: Session) -> Response:
    """GET /decisions/{decision_id}: the decision, its walk drawn on the flowchart, and its outcomes."""
    return await _show(console, request, session, errors=[], status=200)


async def _show(
    console: Console, request: Request, session: Session, *, errors: list[dict[str, str]], status: int
) -> Response:
    decision_id = request.path_params["decision_id"]
    record = await console.call(session, lambda c: c.get_decision(decision_id))
    decision = record.decision
    detail = await console.call(session, lambda c: c.get_policy(decision.policy.name, decision.policy.version))
    chart = policy_chart(detail)
    walk = [entry for entry in decision.trace if entry.kind == "QUESTION" and entry.result != "NOT_REACHED"]
    highlight = Highlight.from_results(((entry.rule_id, entry.result) for entry in walk),
                                       [rule for rule in detail.rules if rule.kind == "QUESTION"])
    return console.render(request, "decision.html", {
        "title": f"Decision {decision_id}", "record": record, "decision": decision, "detail": detail,
        "walk": walk, "overlays": [e for e in decision.trace if e.kind != "QUESTION" and e.result == "FIRED"],
        "svg": Markup(chart.to_svg(highlight, label=f"The walk of decision {decision_id} on "  # noqa: S704
                                   f"{detail.summary.name} {detail.summary.version}")),
        "pathway_codes": [p.code for p in detail.pathways], "errors": errors,
        "form": dict(getattr(request.state, "form_values", {})),
    }, status=status)


@requires("auditor")
async def record_outcome(console: Console, request: Request, session: Session) -> Response:
    """POST /decisions/{decision_id}/outcomes: record what people did, then show the decision again."""
    form = form_of(request)
    decision_id = request.path_params["decision_id"]
    action = str(form.get("action_taken", "")).strip()
    reason = str(form.get("reason", "")).strip()
    if not action:
        request.state.form_values = {"reason": reason}
        errors = [{"field": "action_taken", "text": "Choose or enter the action taken"}]
        return await _show(console, request, session, errors=errors, status=400)
    try:
        await console.call(session, lambda c: c.record_outcome(decision_id, action, reason=reason))
    except InvalidRequestError as error:
        request.state.form_values = {"reason": reason, "action_taken": action}
        return await _show(console, request, session, errors=[{"field": "action_taken", "text": str(error)}],
                           status=400)
    return RedirectResponse(f"/decisions/{quote(decision_id, safe='')}#outcomes", 303)


ROUTES = [
    Route("/decisions", decision_list, methods=["GET"]),
    Route("/decisions/{decision_id}", decision_page, methods=["GET"]),
    Route("/decisions/{decision_id}/outcomes", record_outcome, methods=["POST"]),
]
