"""The flowchart of a policy version as the API describes it (``GetPolicy``)."""

from __future__ import annotations

from fairpath_client import PolicyDetail

from fairpath.flowchart import Flowchart


def policy_chart(detail: PolicyDetail) -> Flowchart:
    """Chart ``detail``'s walk rules (checks are not part of the walk), exits titled by pathway."""
    return Flowchart.build(
        f"{detail.summary.name} {detail.summary.version}",
        [rule for rule in detail.rules if rule.kind == "QUESTION"],
        {pathway.code: pathway.title for pathway in detail.pathways},
    )
