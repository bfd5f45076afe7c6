"""Policy pages: ``/policies``, ``/policies/{name}/{version}`` and the try-it form ``/try/{name}/{version}``.

Every role may read the policies. Trying a version evaluates a dry run
(``Evaluate`` with ``dry_run``), which the evaluator role may call: the
service records nothing, and the page says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fairpath_client import Decision, FactSpec, InvalidFactsError, PolicyDetail, PolicySummary, ValidationReport
from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fairpath.authoring.cli import find_version
from fairpath.console.charts import policy_chart
from fairpath.console.sessions import Session
from fairpath.console.web import Console, PageError, form_of, requires
from fairpath.errors import FairpathError
from fairpath.flowchart import Highlight
from fairpath.policy.cases import cases_file
from fairpath.policy.registry import semver_key

_CHOICE_TYPES = ("ANSWER", "ENUM", "BOOL")


@requires(None)
async def policy_list(console: Console, request: Request, session: Session) -> Response:
    """GET /policies: every loaded version with its status, whether current, effective date and digest."""
    policies = await console.call(session, lambda c: c.list_policies())
    return console.render(request, "policies.html", {"title": "Policies", "grouped": _grouped(policies),
                                                     "reload": None})


def _grouped(policies: list[PolicySummary]) -> dict[str, list[PolicySummary]]:
    names = sorted({p.name for p in policies})
    return {name: sorted((p for p in policies if p.name == name), key=lambda p: semver_key(p.version))
            for name in names}


@requires("author")
async def reload_policies(console: Console, request: Request, session: Session) -> Response:
    """POST /policies/reload: the service reloads its policy directory; the list shows what happened."""
    report = await console.call(session, lambda c: c.reload())
    policies = await console.call(session, lambda c: c.list_policies())
    return console.render(request, "policies.html", {
        "title": "Policies", "grouped": _grouped(policies), "reload": report,
    })


@requires(None)
async def policy_page(console: Console, request: Request, session: Session) -> Response:
    """GET /policies/{name}/{version}: flowchart, facts, pathways and advice of one version."""
    name, version = request.path_params["name"], request.path_params["version"]
    detail = await console.call(session, lambda c: c.get_policy(name, version))
    others = [p.version for p in await console.call(session, lambda c: c.list_policies())
              if p.name == name and p.version != version]
    chart = policy_chart(detail)
    return console.render(request, "policy.html", {
        "title": f"{detail.summary.name} {detail.summary.version}", "detail": detail, "others": others,
        "can_check": session.may("author") and bool(console.settings.policies_dir), "facts": ordered_facts(detail),
        "svg": Markup(chart.to_svg(label=f"Flowchart of {name} {version}")),  # noqa: S704 (escaped by the module)
        "mermaid": chart.to_mermaid(),
        "checks": [rule for rule in detail.rules if rule.kind == "CHECK"],
    })


@requires("author")
async def policy_checks(console: Console, request: Request, session: Session) -> Response:
    """GET /policies/{name}/{version}/checks: the served file's tests, coverage and lint (ValidatePolicy).

    A page of its own, opened on request: running a version's tests takes seconds.
    """
    name, version = request.path_params["name"], request.path_params["version"]
    detail = await console.call(session, lambda c: c.get_policy(name, version))
    checked = await _checked(console, session, detail)
    if checked is None:
        raise PageError(404, "Checks unavailable", "This console has no copy of that version's file "
                        "(fairpath console --policies DIR), or the file differs from the one served.")
    return console.render(request, "checks.html", {
        "title": f"Tests and lint of {name} {version}", "detail": detail, "checked": checked,
    })


async def _checked(console: Console, session: Session, detail: PolicyDetail) -> ValidationReport | None:
    """Lint findings and test coverage of the served file (ValidatePolicy, author role); None without the files."""
    root = console.settings.policies_dir
    if not root:
        return None
    try:
        policy = find_version(Path(root), detail.summary.name, detail.summary.version)
    except FairpathError:
        return None
    if policy.digest != detail.summary.digest:
        return None  # the file on disk is not the one served: its findings would mislead
    tests = cases_file(policy.path)
    policy_text = Path(policy.path).read_text(encoding="utf-8")
    tests_text = tests.read_text(encoding="utf-8") if tests.is_file() else ""
    return await console.call(session, lambda c: c.validate_policy(policy_text, tests_text, policy.path))


def ordered_facts(detail: PolicyDetail) -> list[FactSpec]:
    """The facts in walk order (the order walk rules first read them), then the others in file order."""
    return detail.facts_in_walk_order()  # the CLI's `policies show` lists them in the same order


def answers_from(form: FormData | Mapping[str, Any], facts: list[FactSpec]) -> tuple[dict[str, Any], dict[str, str]]:
    """The facts a try-it form gives (unanswered ones left out) and the raw values to show again."""
    facts_out: dict[str, Any] = {}
    raw: dict[str, str] = {}
    for fact in facts:
        key = f"fact-{fact.name}"
        if fact.type == "SET":
            chosen = [str(v) for v in form.getlist(key)] if isinstance(form, FormData) else []
            if chosen:
                facts_out[fact.name] = chosen
                raw[fact.name] = ",".join(chosen)
            continue
        value = str(form.get(key, "") or "").strip()
        if not value:
            continue
        raw[fact.name] = value
        if fact.type == "BOOL":
            facts_out[fact.name] = value == "true"
        elif fact.type == "NUMBER":
            try:
                number = float(value)
            except ValueError:
                facts_out[fact.name] = value  # the service explains what is wrong with it
            else:
                facts_out[fact.name] = int(number) if number.is_integer() else number
        else:
            facts_out[fact.name] = value
    return facts_out, raw


@requires("evaluator")
async def try_page(console: Console, request: Request, session: Session) -> Response:
    """GET /try/{name}/{version}: the form, nothing answered yet."""
    return await _try(console, request, session, submitted=None)


@requires("evaluator")
async def try_submit(console: Console, request: Request, session: Session) -> Response:
    """POST /try/{name}/{version}: evaluate the answers as a dry run and show the walk."""
    return await _try(console, request, session, submitted=form_of(request))


async def _try(console: Console, request: Request, session: Session, *, submitted: FormData | None) -> Response:
    name, version = request.path_params["name"], request.path_params["version"]
    detail = await console.call(session, lambda c: c.get_policy(name, version))
    facts = await _askable_facts(console, session, detail)
    answers, raw = answers_from(submitted, facts) if submitted is not None else ({}, {})
    decision: Decision | None = None
    errors: list[dict[str, str]] = []
    try:
        decision = await console.call(session, lambda c: c.evaluate(name, answers, version=version, dry_run=True))
    except InvalidFactsError as error:
        errors = [{"field": f"fact-{v.field.removeprefix('facts.')}", "text": v.description} for v in error.violations]
    rules = [rule for rule in detail.rules if rule.kind == "QUESTION"]
    highlight = Highlight()
    if decision is not None:
        highlight = Highlight.from_results(
            ((entry.rule_id, entry.result) for entry in decision.trace if entry.kind == "QUESTION"), rules)
    chart = policy_chart(detail)
    return console.render(request, "try.html", {
        "title": f"Try {detail.summary.name} {detail.summary.version}", "detail": detail, "facts": facts,
        "raw": raw, "decision": decision, "errors": errors, "choice_types": _CHOICE_TYPES,
        "svg": Markup(chart.to_svg(highlight, label=f"The walk of these answers on {name} {version}")),  # noqa: S704
    }, status=400 if errors else 200)


async def _askable_facts(console: Console, session: Session, detail: PolicyDetail) -> list[FactSpec]:
    """The questions a try-it form asks: for a chained policy, the required policies' first, never a chained fact."""
    facts: list[FactSpec] = []
    for requirement in detail.requires:
        policy, pinned = requirement.policy, None if requirement.version == "current" else requirement.version
        required: PolicyDetail = await console.call(session, lambda c: c.get_policy(policy, pinned))  # noqa: B023 - awaited here
        facts += await _askable_facts(console, session, required)
    seen = {fact.name for fact in facts}
    return facts + [fact for fact in ordered_facts(detail) if not fact.taken_from and fact.name not in seen]


ROUTES = [
    Route("/policies", policy_list, methods=["GET"]),
    Route("/policies/reload", reload_policies, methods=["POST"]),
    Route("/policies/{name}/{version}", policy_page, methods=["GET"]),
    Route("/policies/{name}/{version}/checks", policy_checks, methods=["GET"]),
    Route("/try/{name}/{version}", try_page, methods=["GET"]),
    Route("/try/{name}/{version}", try_submit, methods=["POST"]),
]
