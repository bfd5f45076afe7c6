"""The fact space the authoring tools enumerate: domains, lazy enumeration, sampling."""

from __future__ import annotations

import pytest
from fairpath.authoring.space import (
    Assignment,
    TooManyCombinations,
    explore,
    fact_domains,
    sample,
    satisfying,
    space_size,
)
from fairpath.authoring.walks import WalkEnd, walk, walk_facts
from fairpath.policy import conditions as cond
from fairpath.policy.loader import load_bytes, load_file
from fairpath.policy.model import Policy

from tests.conftest import GUIDE, POLICIES
from tests.support.policy_builder import minimal_policy, policy_text


def _policy(**changes: object) -> Policy:
    document = minimal_policy()
    document.update(changes)
    return load_bytes(policy_text(document).encode())


def test_domains_of_each_fact_type() -> None:
    """Answers, enums and bools are taken as declared; numbers and text split at their literals; None last."""
    document = minimal_policy()
    document["facts"].append({"name": "parties", "type": "set", "values": ["A", "B", "C"], "question": "?"})
    document["checks"].append({"id": "c2", "text": "t", "when": "parties has A and note is 'x y'"})
    domains = fact_domains([load_bytes(policy_text(document).encode())])
    assert domains["intent_to_harm"].values == ("YES", "NO", None)
    assert domains["stage"].values == ("OPEN", "UNKNOWN", None)  # an enum keeps a declared UNKNOWN
    assert domains["on_duty"].values == (True, False, None)
    assert domains["years"].values == (1.0, 2.0, 3.0, None)  # below, at and above the literal 2
    assert domains["note"].values == ("x y", "other", None)
    assert domains["parties"].values == ((), ("A",), None)  # only A is tested...
    assert domains["parties"].weights == (4, 4, 1)  # ...so each stands for 4 of the 8 real subsets
    assert domains["parties"].size == 9


def test_leaves_partition_the_whole_space() -> None:
    """The leaves' weights add up to every combination of the facts counted, each counted once."""
    policy = load_file(POLICIES / GUIDE / "1.0.0.yaml")
    domains = fact_domains([policy])
    facts = walk_facts(policy)

    def decide(assignment: Assignment) -> str | None:
        end = walk(policy, assignment)
        return end if isinstance(end, str) else None

    leaves = explore(domains, facts, decide)
    assert len(leaves) == 29
    assert sum(leaf.weight for leaf in leaves) == space_size(domains, facts) == 3**14


def test_explore_refuses_above_its_limit() -> None:
    """More leaves than the limit raise TooManyCombinations instead of running on."""
    policy = _policy()
    domains = fact_domains([policy])
    with pytest.raises(TooManyCombinations, match="more than 3 classes"):
        explore(domains, ["intent_to_harm", "severity"],
                lambda a: next((f for f in ("intent_to_harm", "severity") if f not in a), None), limit=3)


def test_walk_names_the_fact_it_needs_then_ends() -> None:
    """Over a partial assignment the walk asks for the next fact; with it, the walk ends and says where."""
    policy = _policy()
    assert walk(policy, {}) == "intent_to_harm"
    assert walk(policy, {"intent_to_harm": "NO"}) == "years"
    end = walk(policy, {"intent_to_harm": "NO", "years": 3.0})
    assert isinstance(end, WalkEnd)
    assert end.label() == "ACT"
    stopped = walk(policy, {"intent_to_harm": None})
    assert isinstance(stopped, WalkEnd)
    assert stopped.label() == "NEEDS_INFORMATION at r1"


def test_sampling_is_reproducible() -> None:
    """The same seed draws the same combinations."""
    domains = fact_domains([_policy()])
    facts = ["intent_to_harm", "severity", "years"]
    assert sample(domains, facts, 50, seed=7) == sample(domains, facts, 50, seed=7)
    assert sample(domains, facts, 50, seed=7) != sample(domains, facts, 50, seed=8)


def test_satisfying_finds_answers_or_none() -> None:
    """A satisfiable condition gets answers that make it hold; a contradiction gets None."""
    domains = fact_domains([_policy()])
    holds = cond.to_nnf(cond.parse("severity is HIGH and intent_to_harm is NO"))
    answers = satisfying(holds, domains, {})
    assert answers == {"severity": "HIGH", "intent_to_harm": "NO"}
    never = cond.to_nnf(cond.parse("severity is HIGH and severity is LOW"))
    assert satisfying(never, domains, {}) is None
