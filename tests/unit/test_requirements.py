"""Chained policies at load: the ``requires:`` entry of one file, and what every file together must satisfy.

One file (:mod:`fairpath.policy.loader`): a policy requiring itself, an undeclared or mistyped chained fact,
a bad version. All files (:mod:`fairpath.policy.requirements`): cycles (also through versions), a required
policy or version not served, values a chained fact cannot take, chains too deep; each refusal names the
file and the line of the requirement, and everything else keeps serving.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fairpath.errors import PolicyFileError
from fairpath.policy.loader import load_file
from fairpath.policy.model import Policy
from fairpath.policy.requirements import MAX_DEPTH, closure, find_cycles, requirement_problems

from tests.support.policy_builder import line_of, minimal_policy, write_policy


def _document(name: str, version: str, requires: list[dict[str, Any]] | None = None, **top: Any) -> dict[str, Any]:
    """The minimal policy; with ``requires``, a fact ``upstream`` (codes ACT, LEARN) to take a decision's pathway."""
    document = minimal_policy(name=name, version=version, **top)
    if requires is not None:
        document["facts"].append({"name": "upstream", "type": "enum", "values": ["ACT", "LEARN"], "question": "Up?"})
        document["requires"] = requires
    return document


def _requires(policy: str, version: str = "current", facts: dict[str, str] | None = None) -> dict[str, Any]:
    return {"policy": policy, "version": version, "facts": facts or {"upstream": "pathway"}}


def _write(root: Path, name: str, version: str, *requires: dict[str, Any], **top: Any) -> Policy:
    path = write_policy(root / name / f"{version}.yaml", _document(name, version, list(requires) or None, **top))
    return load_file(path)


# --- one file -------------------------------------------------------------------------------------


def test_a_policy_requiring_itself_is_refused_at_the_line_of_its_requirement(tmp_path: Path) -> None:
    """Self-reference, whatever the version, is a cycle found in the file alone: file and line named."""
    path = write_policy(tmp_path / "a.yaml", _document("pol-a", "1.0.0", [_requires("pol-a", "0.9.0")]))
    with pytest.raises(PolicyFileError) as raised:
        load_file(path)
    assert raised.value.path == str(path)
    assert raised.value.line == line_of(path, "- policy: pol-a")
    assert "requirement cycle: pol-a -> pol-a" in raised.value.message


@pytest.mark.parametrize(
    ("requirement", "message"),
    [
        (_requires("pol-b", facts={"nothing": "pathway"}), "fact 'nothing' is not declared"),
        (_requires("pol-b", facts={"on_duty": "pathway"}), "takes the decision's pathway, so it must be of type enum"),
        (_requires("pol-b", facts={"upstream": "advice"}), "must be taken from one of pathway, category"),
        (_requires("pol-b", version="latest"), "version 'latest' must be 'current' or MAJOR.MINOR.PATCH"),
        ({"policy": "pol-b", "version": "current", "facts": {}}, "'facts' must map this policy's facts"),
        ({"policy": "pol-b", "version": "current"}, "'facts' must map this policy's facts"),
    ],
)
def test_a_requirement_that_cannot_work_in_its_own_file_is_refused(
    tmp_path: Path, requirement: dict[str, Any], message: str
) -> None:
    """Undeclared, mistyped or unsourced chained facts and unknown versions are refused with the requirement's line."""
    path = write_policy(tmp_path / "a.yaml", _document("pol-a", "1.0.0", [requirement]))
    with pytest.raises(PolicyFileError, match=message) as raised:
        load_file(path)
    assert raised.value.line == line_of(path, "- policy: pol-b")


def test_a_fact_taken_from_two_requirements_is_refused(tmp_path: Path) -> None:
    """One chained fact, one source: taking it from two decisions would leave which one wins to chance."""
    document = _document("pol-a", "1.0.0", [_requires("pol-b"), _requires("pol-c")])
    with pytest.raises(PolicyFileError, match="'upstream' is already taken from pol-b"):
        load_file(write_policy(tmp_path / "a.yaml", document))


def test_a_requirement_is_read_with_its_facts_and_line(tmp_path: Path) -> None:
    """The loaded policy says what it requires and which facts are chained (the rest are the caller's)."""
    policy = _write(tmp_path, "pol-a", "1.0.0", _requires("pol-b", "2.1.0"))
    (requirement,) = policy.requires
    assert (requirement.policy, requirement.version, requirement.pinned) == ("pol-b", "2.1.0", "2.1.0")
    assert requirement.facts == (("upstream", "pathway"),)
    assert requirement.line == line_of(Path(policy.path), "- policy: pol-b")
    assert set(policy.chained) == {"upstream"}


# --- every file -----------------------------------------------------------------------------------


def test_policies_requiring_each_other_are_both_refused_naming_the_cycle(tmp_path: Path) -> None:
    """A requires B requires A: each is refused at its own requirement's line; an unrelated policy is untouched."""
    a = _write(tmp_path, "pol-a", "1.0.0", _requires("pol-b"))
    b = _write(tmp_path, "pol-b", "1.0.0", _requires("pol-a"))
    other = _write(tmp_path, "pol-c", "1.0.0")

    refused = requirement_problems([a, b, other])

    assert set(refused) == {"pol-a@1.0.0", "pol-b@1.0.0"}
    for policy in (a, b):
        error = refused[policy.key]
        assert error.path == policy.path
        assert error.line == policy.requires[0].line
        assert "requirement cycle: pol-a@1.0.0 -> pol-b@1.0.0 -> pol-a@1.0.0" in error.message


def test_a_cycle_through_versions_refuses_only_the_versions_on_it(tmp_path: Path) -> None:
    """A@2 requires B@1.0.0, which requires A's current version, which may be A@2: a cycle; A@1 is not on it."""
    a1 = _write(tmp_path, "pol-a", "1.0.0")
    a2 = _write(tmp_path, "pol-a", "2.0.0", _requires("pol-b", "1.0.0"))
    b1 = _write(tmp_path, "pol-b", "1.0.0", _requires("pol-a"))

    assert find_cycles({p.key: p for p in (a1, a2, b1)}) == [["pol-a@2.0.0", "pol-b@1.0.0", "pol-a@2.0.0"]]
    assert set(requirement_problems([a1, a2, b1])) == {"pol-a@2.0.0", "pol-b@1.0.0"}


def test_a_draft_on_the_way_back_is_no_cycle_for_current(tmp_path: Path) -> None:
    """``current`` only ever resolves to an active version: a draft requiring back cannot close a cycle through it."""
    a = _write(tmp_path, "pol-a", "1.0.0", _requires("pol-b"))
    b1 = _write(tmp_path, "pol-b", "1.0.0")
    b2 = _write(tmp_path, "pol-b", "2.0.0", _requires("pol-a"), status="draft")

    assert requirement_problems([a, b1, b2]) == {}


def test_of_a_cycle_only_the_blamed_versions_are_refused(tmp_path: Path) -> None:
    """A reload blames the changed file (a new B@2 requiring A back): A and B@1, serving before, keep serving."""
    a = _write(tmp_path, "pol-a", "1.0.0", _requires("pol-b"))
    b1 = _write(tmp_path, "pol-b", "1.0.0")
    b2 = _write(tmp_path, "pol-b", "2.0.0", _requires("pol-a"))

    refused = requirement_problems([a, b1, b2], blame=lambda policy: policy.key == "pol-b@2.0.0")

    assert set(refused) == {"pol-b@2.0.0"}
    assert set(requirement_problems([a, b1, b2])) == {"pol-a@1.0.0", "pol-b@2.0.0"}


def test_a_three_policy_cycle_is_found(tmp_path: Path) -> None:
    """A -> B -> C -> A is refused whole and named in order."""
    policies = [
        _write(tmp_path, "pol-a", "1.0.0", _requires("pol-b")),
        _write(tmp_path, "pol-b", "1.0.0", _requires("pol-c")),
        _write(tmp_path, "pol-c", "1.0.0", _requires("pol-a")),
    ]
    refused = requirement_problems(policies)
    assert set(refused) == {"pol-a@1.0.0", "pol-b@1.0.0", "pol-c@1.0.0"}
    assert "pol-a@1.0.0 -> pol-b@1.0.0 -> pol-c@1.0.0 -> pol-a@1.0.0" in refused["pol-a@1.0.0"].message


def test_a_required_policy_or_version_not_served_refuses_the_requirer_and_whatever_requires_it(
    tmp_path: Path,
) -> None:
    """Missing name, missing pinned version, no active version for current; and refusals propagate."""
    missing_name = _write(tmp_path, "pol-a", "1.0.0", _requires("pol-x"))
    needs_a = _write(tmp_path, "pol-z", "1.0.0", _requires("pol-a"))
    b = _write(tmp_path, "pol-b", "1.0.0")
    missing_version = _write(tmp_path, "pol-c", "1.0.0", _requires("pol-b", "9.9.9"))
    draft = _write(tmp_path, "pol-d", "1.0.0", status="draft")
    only_draft = _write(tmp_path, "pol-e", "1.0.0", _requires("pol-d"))
    pinned_draft = _write(tmp_path, "pol-f", "1.0.0", _requires("pol-d", "1.0.0"))

    refused = requirement_problems([missing_name, needs_a, b, missing_version, draft, only_draft, pinned_draft])

    assert set(refused) == {"pol-a@1.0.0", "pol-z@1.0.0", "pol-c@1.0.0", "pol-e@1.0.0"}
    assert "no version of pol-x is served" in refused["pol-a@1.0.0"].message
    assert "no version of pol-a is served" in refused["pol-z@1.0.0"].message
    assert "version 9.9.9 of pol-b is not served" in refused["pol-c@1.0.0"].message
    assert "pol-d has no active version served" in refused["pol-e@1.0.0"].message


def test_a_chained_enum_fact_must_accept_every_pathway_the_required_policy_can_give(tmp_path: Path) -> None:
    """A value the caller never sent must never be refused: a pathway code missing from the enum refuses at load."""
    document = _document("pol-b", "1.0.0")
    document["pathways"].append({"code": "ESCALATE", "title": "Escalate", "recommendation": "Up.",
                                 "individual_directed": False})
    document["rules"][1]["then"] = "pathway ESCALATE"
    b = load_file(write_policy(tmp_path / "pol-b" / "1.0.0.yaml", document))
    a = _write(tmp_path, "pol-a", "1.0.0", _requires("pol-b"))

    refused = requirement_problems([a, b])

    assert "pol-b@1.0.0 can give pathway ESCALATE, which fact 'upstream' does not accept" in refused[a.key].message


def test_a_fact_declared_differently_by_two_policies_of_a_chain_is_refused(tmp_path: Path) -> None:
    """The caller sends a fact once, to every policy declaring it: their declarations must agree."""
    document = _document("pol-b", "1.0.0")
    document["facts"][1]["values"] = ["LOW", "MEDIUM", "HIGH"]  # severity
    b = load_file(write_policy(tmp_path / "pol-b" / "1.0.0.yaml", document))
    a = _write(tmp_path, "pol-a", "1.0.0", _requires("pol-b"))

    assert "fact 'severity' is declared differently" in requirement_problems([a, b])[a.key].message


def test_a_chain_deeper_than_the_limit_is_refused(tmp_path: Path) -> None:
    """MAX_DEPTH policies in a row are fine; one more refuses the one at the top (and nothing below it)."""
    names = [f"pol-{chr(ord('a') + index)}" for index in range(MAX_DEPTH + 1)]
    policies = [_write(tmp_path, names[-1], "1.0.0")]
    for below, name in zip(reversed(names[1:]), reversed(names[:-1]), strict=True):
        policies.append(_write(tmp_path, name, "1.0.0", _requires(below)))

    refused = requirement_problems(policies)

    assert set(refused) == {"pol-a@1.0.0"}
    assert f"at most {MAX_DEPTH} policies deep" in refused["pol-a@1.0.0"].message


def test_closure_holds_every_version_a_requirement_may_lead_to(tmp_path: Path) -> None:
    """Author tools evaluate a file with what it requires: every version of each required policy, transitively."""
    a = _write(tmp_path, "pol-a", "1.0.0", _requires("pol-b"))
    b1 = _write(tmp_path, "pol-b", "1.0.0", _requires("pol-c"))
    b2 = _write(tmp_path, "pol-b", "2.0.0")
    c = _write(tmp_path, "pol-c", "1.0.0")
    unrelated = _write(tmp_path, "pol-d", "1.0.0")

    assert sorted(p.key for p in closure(a, [b1, b2, c, unrelated])) == [
        "pol-a@1.0.0", "pol-b@1.0.0", "pol-b@2.0.0", "pol-c@1.0.0",
    ]
