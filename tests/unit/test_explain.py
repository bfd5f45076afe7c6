"""The explainer: decisions described from what was prepared with the version, entries shared, ids unique."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fairpath.decisions import Decision, MissingFact, RuleResult, Status
from fairpath.engine import explain
from fairpath.policy.registry import PolicyRegistry
from fairpath.serving.evaluator import Evaluator

from tests.support.policy_builder import build_policy

NAME = "mini-policy"
# The minimal policy: r1 "intent_to_harm is YES" -> ACT, else r2 "years >= 2" -> ACT, else LEARN;
# advice a1 when the pathway is ACT; check c1 when severity is HIGH and intent_to_harm is NO.
REQUESTS: list[dict[str, Any]] = [
    {"intent_to_harm": "YES"},
    {"intent_to_harm": "NO", "years": 5},
    {"intent_to_harm": "NO", "years": 1, "severity": "HIGH"},
    {"intent_to_harm": "NO", "years": 1, "severity": "LOW"},
    {"intent_to_harm": "NO"},
    {},
    {"intent_to_harm": "NO", "years": 3, "severity": "HIGH"},
]


@pytest.fixture(name="evaluator")
def _evaluator() -> Iterator[Evaluator]:
    evaluator = Evaluator(PolicyRegistry([build_policy()]))
    yield evaluator
    evaluator.close()


def described(decision: Decision) -> tuple[object, ...]:
    """Everything of a decision but its id and time."""
    return decision.status, decision.pathway, decision.missing_facts, decision.advice, decision.trace, decision.warnings


class TestSharedEntries:
    """Trace entries are immutable and shared between decisions (encoders memoise them by identity)."""

    def test_the_same_answers_give_the_same_entries(self, evaluator: Evaluator) -> None:
        """Two evaluations of one request hand out the very same entry objects, in new decisions."""
        first = evaluator.evaluate(NAME, REQUESTS[2])
        second = evaluator.evaluate(NAME, dict(REQUESTS[2]))
        assert len(first.trace) == len(second.trace) > 0
        assert all(a is b for a, b in zip(first.trace, second.trace, strict=True))
        assert first.decision_id != second.decision_id

    def test_an_entry_is_shared_by_walks_that_reach_it_with_the_same_values(self, evaluator: Evaluator) -> None:
        """r1 answered NO is one entry whichever pathway the walk goes on to, and so is c1 not holding."""
        act = evaluator.evaluate(NAME, {"intent_to_harm": "NO", "years": 5})
        learn = evaluator.evaluate(NAME, {"intent_to_harm": "NO", "years": 1})
        assert act.pathway is not None
        assert learn.pathway is not None
        assert (act.pathway.code, learn.pathway.code) == ("ACT", "LEARN")
        for rule_id in ("r1", "c1"):
            [in_act] = [entry for entry in act.trace if entry.rule_id == rule_id]
            [in_learn] = [entry for entry in learn.trace if entry.rule_id == rule_id]
            assert in_act is in_learn

    def test_a_full_memo_starts_afresh_and_describes_the_same(
        self, evaluator: Evaluator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Past its limit the memo is emptied, and what it describes afterwards is unchanged."""
        expected = [described(evaluator.evaluate(NAME, facts)) for facts in REQUESTS]
        monkeypatch.setattr(explain, "_MEMO_LIMIT", 2)
        fresh = Evaluator(PolicyRegistry([build_policy()]))
        try:
            for _ in range(3):
                assert [described(fresh.evaluate(NAME, facts)) for facts in REQUESTS] == expected
            explainer = fresh.state.version(NAME).explainer
            remembered = len(explainer._walks) + len(explainer._overlay_parts) + len(explainer._memo)
            assert remembered <= 2 + 6  # the limit, and what one call adds: a walk, an overlay part, 4 entries
        finally:
            fresh.close()


class TestPreparedPerPath:
    """What depends only on the compiled path (pathway, questions) comes from the version's preparation."""

    def test_a_walk_stopped_by_an_unanswered_fact_asks_for_it(self, evaluator: Evaluator) -> None:
        """The missing fact comes with its question and rule; the rule's entry says it is unanswered."""
        decision = evaluator.evaluate(NAME, {"intent_to_harm": "NO"})
        assert decision.status is Status.NEEDS_INFORMATION
        assert decision.pathway is None
        assert decision.missing_facts == (MissingFact("years", "Years qualified?", "r2"),)
        [r2] = [entry for entry in decision.trace if entry.rule_id == "r2"]
        assert r2.result is RuleResult.UNANSWERED
        assert r2.reason == "years unanswered: the walk stops here until it is answered"

    def test_every_compiled_path_is_prepared_when_the_version_is(self, evaluator: Evaluator) -> None:
        """The explainer holds one prepared path per compiled path, numbered as the compiler numbers them."""
        served = evaluator.state.version(NAME)
        paths = served.explainer._paths
        assert [path.terminal for path in paths] == list(served.compiled.terminals)
        decided = [path for path in paths if path.pathway is not None]
        assert {path.pathway.code for path in decided if path.pathway} == {"ACT", "LEARN"}
        assert all(path.asks for path in paths if path.pathway is None)


class TestDecisionIds:
    """Decision ids are random version 4 UUIDs in canonical form, drawn from the system a batch at a time."""

    def test_ids_are_canonical_random_uuids_and_distinct(self) -> None:
        """More than a batch of ids: each parses as a version 4, RFC 4122 UUID written as uuid writes it."""
        ids = [explain._ids.new() for _ in range(explain._DecisionIds.BATCH * 2 + 3)]
        assert len(set(ids)) == len(ids)
        for text in ids:
            parsed = uuid.UUID(text)
            assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
    def test_a_forked_child_never_hands_out_its_parents_ids(self) -> None:
        """A worker forked with part of a batch left draws its own: ids stay unique across processes."""
        explain._ids.new()  # a batch is drawn, most of it left
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - the child process
            try:
                os.write(write, "\n".join(explain._ids.new() for _ in range(3)).encode())
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            in_child = set(pipe.read().split("\n"))
        os.waitpid(child, 0)
        in_parent = {explain._ids.new() for _ in range(explain._DecisionIds.BATCH)}
        assert len(in_child) == 3
        assert not in_child & in_parent
