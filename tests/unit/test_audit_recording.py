"""Masking, document encoding, group commit and the recorder, without a database."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence

import pytest
from fairpath.audit.batching import GroupCommit
from fairpath.audit.codec import DecisionEncoder, decode_decision, decode_entry, from_micros, to_micros
from fairpath.audit.records import NewDecision, StoredDecision
from fairpath.policy.registry import PolicyRegistry
from fairpath.recording import DecisionRecorder
from fairpath.serving.evaluator import Evaluator
from fairpath.serving.masking import MASK, Masker
from fairpath.serving.state import ServingState

GUIDE = "nhs-just-culture-guide"
FACTS = {
    "is_patient_safety_incident": "YES",
    "individual_concern_raised": "YES",
    "safeguarding_concern": "NO",
    "intent_to_harm": "NO",
    "substance_abuse_indicated": "YES",
    "professional_group": "DOCTOR",
    "harm_severity": None,
}


def test_the_guide_masks_exactly_the_facts_it_marks_sensitive(evaluator: Evaluator) -> None:
    """Masking follows the policy's `sensitive: true` declarations; answered facts only."""
    masker = Masker.for_policy(evaluator.registry.get(GUIDE))
    decision = evaluator.evaluate(GUIDE, FACTS)

    masked = masker.mask(FACTS, decision)

    assert masked.masked_facts == ("intent_to_harm", "safeguarding_concern", "substance_abuse_indicated")
    assert masked.facts["professional_group"] == "DOCTOR"
    assert masked.facts["intent_to_harm"] == MASK
    assert masked.facts["harm_severity"] is None  # unanswered: nothing to hide
    assert masked.sensitive_facts == {
        "intent_to_harm": "NO",
        "safeguarding_concern": "NO",
        "substance_abuse_indicated": "YES",
    }


def test_masking_reaches_facts_seen_and_the_words_of_reasons(evaluator: Evaluator) -> None:
    """No trace entry of the masked decision carries a sensitive value, in data or in words."""
    masker = Masker.for_policy(evaluator.registry.get(GUIDE))
    decision = evaluator.evaluate(GUIDE, FACTS)

    masked = masker.mask(FACTS, decision).decision
    entry = next(e for e in masked.trace if e.rule_id == "2a")

    assert entry.facts_seen == {"substance_abuse_indicated": MASK}
    assert entry.reason.startswith("substance_abuse_indicated = ***: the condition holds")
    assert [e.result for e in masked.trace] == [e.result for e in decision.trace]
    assert next(e for e in decision.trace if e.rule_id == "2a").facts_seen == {"substance_abuse_indicated": "YES"}


def test_a_document_and_its_entries_decode_to_the_same_decision(evaluator: Evaluator) -> None:
    """Encoding stores trace entries by digest; decoding with those entries gives the decision back."""
    import json  # noqa: PLC0415

    decision = dataclasses.replace(evaluator.evaluate(GUIDE, FACTS), caller="token:hr", request_id="r")
    encoded = DecisionEncoder().encode(decision)
    entries = {digest: decode_entry(text) for digest, text in encoded.entries.items()}

    decoded = decode_decision(json.loads(encoded.document), entries)

    assert decoded == dataclasses.replace(decision, trace=decoded.trace)
    assert [dataclasses.asdict(e) for e in decoded.trace] == [dataclasses.asdict(e) for e in decision.trace]
    assert len(encoded.document) < 5000  # the ~14 KB of trace text lives in the entries


def test_identical_trace_entries_share_one_digest(evaluator: Evaluator) -> None:
    """Two decisions walking the same way refer to the same stored entries."""
    encoder = DecisionEncoder()
    first = encoder.encode(evaluator.evaluate(GUIDE, FACTS))
    second = encoder.encode(evaluator.evaluate(GUIDE, FACTS))

    assert first.entries == second.entries


def test_microseconds_round_trip() -> None:
    """Times are indexed as integer microseconds since the epoch, exactly."""
    moment = from_micros(1_790_000_000_123_456)

    assert to_micros(moment) == 1_790_000_000_123_456
    assert moment.tzinfo is not None


def test_a_lone_submitter_writes_its_own_item_at_once() -> None:
    """Without contention every submit is its own batch, written on the caller's thread."""
    batches: list[tuple[list[int], str]] = []

    def write(items: Sequence[int]) -> list[int]:
        batches.append((list(items), threading.current_thread().name))
        return [item * 2 for item in items]

    commit: GroupCommit[int, int] = GroupCommit(write)

    assert [commit.submit(n) for n in range(3)] == [0, 2, 4]
    assert [items for items, _ in batches] == [[0], [1], [2]]
    assert {name for _, name in batches} == {threading.current_thread().name}


def test_items_queued_behind_a_write_share_the_next_batch_and_get_their_own_results() -> None:
    """While one batch is being written the others queue, then go together; results stay per item."""
    batches: list[list[int]] = []
    release = threading.Event()

    def write(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        if len(batches) == 1:
            release.wait(5)
        return [item + 100 for item in items]

    commit: GroupCommit[int, int] = GroupCommit(write, max_batch=3)
    results: dict[int, int] = {}

    def submit(n: int) -> None:
        results[n] = commit.submit(n)

    first = threading.Thread(target=submit, args=(0,))
    first.start()
    while not batches:
        time.sleep(0.001)
    others = [threading.Thread(target=submit, args=(n,)) for n in range(1, 6)]
    for thread in others:
        thread.start()
    time.sleep(0.1)
    release.set()
    for thread in [first, *others]:
        thread.join(5)

    assert results == {n: n + 100 for n in range(6)}
    assert batches[0] == [0]
    assert sorted(n for batch in batches[1:] for n in batch) == [1, 2, 3, 4, 5]
    assert max(len(batch) for batch in batches) == 3
    assert len(batches) == 3


def test_a_failed_write_fails_every_item_of_its_batch_and_not_later_ones() -> None:
    """An error writing a batch reaches each waiting submitter; the next submit writes normally."""
    calls = 0

    def write(items: Sequence[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("disk gone")
        return list(items)

    commit: GroupCommit[int, int] = GroupCommit(write)

    with pytest.raises(OSError, match="disk gone"):
        commit.submit(1)
    assert commit.submit(2) == 2


class _Store:
    """Records what the recorder appends, in memory."""

    def __init__(self) -> None:
        self.appended: list[NewDecision] = []

    def append_decisions(self, batch: Sequence[NewDecision]) -> list[StoredDecision]:
        self.appended += batch
        return [
            StoredDecision(n, item.decision, item.facts, item.masked_facts, 1.0, "h", "p")
            for n, item in enumerate(batch, start=len(self.appended))
        ]

    def append_groups(self, groups: Sequence[Sequence[NewDecision]]) -> list[list[StoredDecision]]:
        return [self.append_decisions(group) for group in groups]


def test_the_recorder_masks_with_the_answering_versions_masker_even_after_a_reload(evaluator: Evaluator) -> None:
    """The decision comes with the version that made it.

    A reload between deciding and recording cannot change which facts are masked: the recorder
    never looks the version up again.
    """
    own = Evaluator(PolicyRegistry([evaluator.registry.get(GUIDE)]))
    store = _Store()
    recorder = DecisionRecorder(own, store)  # type: ignore[arg-type]
    real = own.decide

    def decide_then_reload_everything_away(*args: object, **kwargs: object) -> object:
        made = real(*args, **kwargs)  # type: ignore[arg-type]
        own.install(ServingState.empty(own.engine))  # the version that answered is gone
        return made

    own.decide = decide_then_reload_everything_away  # type: ignore[method-assign]
    try:
        recorder.evaluate(GUIDE, FACTS, equality_group="EQ-GROUP-9")
    finally:
        own.close()

    (item,) = store.appended
    assert item.masked_facts == ("intent_to_harm", "safeguarding_concern", "substance_abuse_indicated")
    assert item.facts["intent_to_harm"] == MASK
    assert item.facts["professional_group"] == "DOCTOR"
    assert item.equality_group == "EQ-GROUP-9"
    assert "EQ-GROUP-9" not in repr(item.decision)


def test_a_leader_lingers_for_announced_submitters_but_never_alone() -> None:
    """With linger, a batch waits briefly for threads that announced a submit; a lone submit never waits."""
    batches: list[list[int]] = []
    commit: GroupCommit[int, int] = GroupCommit(lambda items: batches.append(list(items)) or list(items), linger=5.0)

    started = time.perf_counter()
    with commit.expecting():
        commit.submit(0)
    alone = time.perf_counter() - started

    second_announced = threading.Event()

    def late_submitter() -> None:
        with commit.expecting():
            second_announced.set()
            time.sleep(0.05)  # still evaluating when the first one is ready to write
            commit.submit(2)

    thread = threading.Thread(target=late_submitter)
    thread.start()
    second_announced.wait(5)
    with commit.expecting():
        commit.submit(1)
    thread.join(5)

    assert alone < 1.0
    assert batches == [[0], [1, 2]]
