"""``/policies/{name}/diff/{old}/{new}``: what a version changes, as ``fairpath policy diff`` reports it.

The diff enumerates answers through two throwaway rulesets, which needs the
policy files themselves: the console reads them from the service's policy
directory (``fairpath serve``'s ``--policies``, or ``fairpath console
--policies``) and shows the diff only when both files' digests equal those the
service reports (``GetPolicy``), so the page describes what is served. Both
flowcharts are drawn with the rules and exits that differ marked.
"""

from __future__ import annotations

from pathlib import Path

from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fairpath.authoring.cli import find_version, render_diff
from fairpath.authoring.diff import diff_policies
from fairpath.console.sessions import Session
from fairpath.console.web import Console, PageError, requires
from fairpath.errors import FairpathError
from fairpath.flowchart import Flowchart, Highlight, policy_flowchart
from fairpath.policy.model import Policy


def changed_rules(old: Policy, new: Policy) -> frozenset[str]:
    """Ids of walk rules added, removed, or with another condition, question or target in ``new``."""

    def shape(policy: Policy) -> dict[str, tuple[str, str, str, str]]:
        return {r.id: (r.condition_text, r.question, str(r.then), str(r.otherwise)) for r in policy.rules}

    before, after = shape(old), shape(new)
    return frozenset(rule for rule in before.keys() | after.keys() if before.get(rule) != after.get(rule))


def _exits(chart: Flowchart) -> set[str]:
    return {node.ref for node in chart.nodes if node.kind == "exit"}


@requires(None)
async def policy_diff(console: Console, request: Request, session: Session) -> Response:
    """GET /policies/{name}/diff/{old}/{new}: the diff report and both flowcharts, changes marked."""
    name, old_version, new_version = (request.path_params[key] for key in ("name", "old", "new"))
    root = console.settings.policies_dir
    if not root:
        raise PageError(404, "Diff unavailable", "This console was started without the policy files "
                        "(fairpath console --policies DIR): a diff enumerates the files themselves.")
    served = [await console.call(session, lambda c, v=v: c.get_policy(name, v))  # type: ignore[misc]
              for v in (old_version, new_version)]
    try:
        old, new = (find_version(Path(root), name, version) for version in (old_version, new_version))
    except FairpathError as error:
        raise PageError(404, "Diff unavailable", str(error)) from None
    if [old.digest, new.digest] != [detail.summary.digest for detail in served]:
        raise PageError(409, "Files differ from the service", "The policy files on disk are not the ones the "
                        "service serves (their digests differ): reload the service, then compare again.")
    try:
        found = await run_in_threadpool(diff_policies, old, new)
    except FairpathError as error:
        raise PageError(422, "Cannot compare", str(error)) from None
    changed = changed_rules(old, new)
    charts = [policy_flowchart(old), policy_flowchart(new)]
    new_exits, old_exits = _exits(charts[1]) - _exits(charts[0]), _exits(charts[0]) - _exits(charts[1])
    svgs = [
        Markup(chart.to_svg(Highlight(changed=changed | exits), label=f"Flowchart of {name} {policy.version}, "  # noqa: S704
                            "changed parts marked"))
        for chart, policy, exits in ((charts[0], old, old_exits), (charts[1], new, new_exits))
    ]
    return console.render(request, "diff.html", {
        "title": f"{name}: {old_version} to {new_version}", "name": name, "old": old, "new": new,
        "report": "\n".join(render_diff(found)), "found": found, "changed": sorted(changed), "svgs": svgs,
    })


ROUTES = [Route("/policies/{name}/diff/{old}/{new}", policy_diff, methods=["GET"])]
