"""The durable_rules wrapper handles each trap of the engine (docs/engine-notes.md).

These use the real durable_rules engine: the point is to pin how it behaves.
"""

from __future__ import annotations

import copy
import random
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from typing import Any

import pytest
from fairpath.engine.compiler import Action, CompiledPolicy, compile_policy
from fairpath.engine.durable import DurableEngine, _SyncHost
from fairpath.engine.sessions import SessionPool, fnv1a_32
from fairpath.errors import EngineBusyError, EngineError
from fairpath.policy.facts import normalise_facts
from fairpath.policy.loader import load_file
from fairpath.policy.model import Policy
from fairpath.serving.evaluator import Evaluator

from tests.conftest import GUIDE, POLICIES
from tests.support.reference import expected

GUIDE_FILE = POLICIES / GUIDE / "1.0.0.yaml"


@pytest.fixture(name="guide")
def _guide() -> Policy:
    return load_file(GUIDE_FILE)


def _random_facts(policy: Policy, rng: random.Random) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for name, spec in policy.facts.items():
        if rng.random() < 0.85:
            facts[name] = rng.choice(spec.values)
    return facts


def _hand_compiled(policy: Policy, ruleset: str, rules: dict[str, Any], actions: dict[str, Action]) -> CompiledPolicy:
    return CompiledPolicy(policy=policy, ruleset=ruleset, rules=rules, actions=actions, terminals=())


class TestConcurrency:
    def test_eight_threads_by_two_thousand_evaluations_are_all_correct(self, guide: Policy) -> None:
        """8 threads x 2,000 evaluations on one engine: every decision right, no crash, no session left."""
        evaluator = Evaluator.from_directory(POLICIES)
        policy = evaluator.registry.get(GUIDE, "1.0.0")
        errors: list[str] = []

        def work(seed: int) -> int:
            rng = random.Random(seed)
            for _ in range(2000):
                facts = _random_facts(policy, rng)
                decision = evaluator.evaluate(GUIDE, facts, version="1.0.0")
                want = expected(policy, normalise_facts(policy, facts))
                if (decision.pathway.code if decision.pathway else "") != want.pathway or {
                    t.rule_id for t in decision.trace if t.result.value == "FIRED" and t.kind.value != "QUESTION"
                } != want.overlays:
                    errors.append(f"seed {seed}: {facts}")
            return 2000

        with ThreadPoolExecutor(8) as pool:
            done = sum(pool.map(work, range(8)))
        assert done == 16000
        assert errors == []
        assert evaluator.engine.sessions.in_use == 0

    def test_the_engine_starts_no_background_threads(self) -> None:
        """The stock Host's dispatcher timers (which crash the process under load) are never started."""
        before = threading.active_count()
        DurableEngine()
        _SyncHost()
        assert threading.active_count() == before


class TestSessions:
    def test_durable_rules_finds_sessions_by_a_32_bit_hash(self) -> None:
        """The trap itself: two different ids with one FNV-1a hash share a session in durable_rules."""
        assert fnv1a_32("req-991307") == fnv1a_32("req-1971740") == 0xA0059D55
        host = _SyncHost()
        host.register_rulesets({"collide": {"count": {"all": [{"m": {"type": "hit"}}],
                                                      "run": lambda c: c.s.__setitem__("n", (c.s["n"] or 0) + 1)}}})
        host.post("collide", {"type": "hit", "sid": "req-991307"})
        state = host.post("collide", {"type": "hit", "sid": "req-1971740"})
        assert state["n"] == 2  # the second id saw the first id's state

    def test_pool_ids_have_distinct_hashes_and_avoid_the_shared_session(self) -> None:
        """Every id the pool can hand out has its own hash, and none hashes like "0" (the id-less session)."""
        pool = SessionPool(1023)
        ids = [pool.acquire(0) for _ in range(1023)]
        hashes = {fnv1a_32(sid) for sid in ids}
        assert len(hashes) == 1023
        assert fnv1a_32("0") not in hashes

    def test_pool_is_below_durables_session_limit(self) -> None:
        """A pool can never allow the 1,024 live sessions that corrupt a ruleset."""
        with pytest.raises(ValueError, match="between 1 and 1023"):
            SessionPool(1024)

    def test_exhausted_pool_gives_back_pressure_not_a_hang(self, guide: Policy) -> None:
        """When every session is out, evaluate raises EngineBusyError after the timeout."""
        engine = DurableEngine(sessions=1, acquire_timeout=0.05)
        compiled = compile_policy(guide)
        engine.register(compiled)
        held = engine.sessions.acquire(0)
        with pytest.raises(EngineBusyError):
            engine.evaluate(compiled, {})
        engine.sessions.release(held)
        assert engine.evaluate(compiled, {}).terminal.unanswered_rule == "G1"

    def test_quarantined_id_is_replaced_and_its_hash_stays_reserved(self) -> None:
        """An id whose state could not be deleted is never reused, and the pool keeps its size."""
        pool = SessionPool(2)
        bad = pool.acquire(0)
        pool.quarantine(bad)
        ids = {pool.acquire(0), pool.acquire(0)}
        assert bad not in ids
        assert len({fnv1a_32(i) for i in ids} | {fnv1a_32(bad)}) == 3

    def test_state_is_deleted_after_every_evaluation(self, guide: Policy) -> None:
        """No session state survives an evaluation (durable reports 309: no such session)."""
        engine = DurableEngine(sessions=4)
        compiled = compile_policy(guide)
        engine.register(compiled)
        for _ in range(50):
            engine.evaluate(compiled, {"is_patient_safety_incident": "NO"})
        for sid in [engine.sessions.acquire(0) for _ in range(4)]:
            with pytest.raises(Exception, match="309"):
                engine._host.get_state(compiled.ruleset, sid)


class TestMisbehavingRules:
    def test_a_rule_matching_the_session_state_is_aborted_not_looped(self, guide: Policy) -> None:
        """A pattern the state fact satisfies would loop forever; the step budget aborts it with EngineError."""
        engine = DurableEngine()
        looping = _hand_compiled(guide, "loop@test", {"r": {"all": [{"m": {"$nex": {"flag": 1}}}]}},
                                 {"r": Action("overlay", overlays=("x",))})
        engine.register(looping)
        with pytest.raises(EngineError, match="runaway"):
            engine.evaluate(looping, {})
        assert engine.sessions.in_use == 0

    def test_facts_matching_no_rule_are_an_engine_error_not_a_crash(self, guide: Policy) -> None:
        """An unmatched fact is an EngineError; its session (whose deletion segfaults) is stranded, its id retired."""
        engine = DurableEngine(sessions=4)
        partial = _hand_compiled(guide, "partial@test", {"r": {"all": [{"m": {"$and": [{"type": "case"}, {"x": 1}]}}]}},
                                 {"r": Action("terminal", terminal=0)})
        engine.register(partial)
        for _ in range(63):
            with pytest.raises(EngineError, match="not exhaustive"):
                engine.evaluate(partial, {"x": 2.0})
        assert engine.sessions.in_use == 0  # each stranded id was replaced by a fresh one
        with pytest.raises(EngineError, match="not exhaustive"):
            engine.evaluate(partial, {"x": 2.0})
        with pytest.raises(EngineError, match="disabled"):
            engine.evaluate(partial, {"x": 1.0})

    def test_an_exception_inside_an_action_is_not_swallowed(self, guide: Policy) -> None:
        """Durable stores action exceptions in the state; the wrapper turns them into EngineError."""

        class Failing(DurableEngine):
            def _bind(self, compiled: CompiledPolicy, action: Action) -> Any:
                def fail(closure: Any) -> None:
                    raise RuntimeError("boom")

                return fail

        engine = Failing()
        compiled = compile_policy(guide)
        engine.register(compiled)
        with pytest.raises(EngineError, match="action failed"):
            engine.evaluate(compiled, {})

    def test_two_paths_matching_is_an_engine_error(self, guide: Policy) -> None:
        """If a broken compilation let two walks match, the engine refuses to pick one."""
        engine = DurableEngine()
        both = _hand_compiled(
            guide, "both@test",
            {"a": {"all": [{"m": {"type": "case"}}]}, "b": {"all": [{"m": {"type": "case"}}]}},
            {"a": Action("terminal", terminal=0), "b": Action("terminal", terminal=1)},
        )
        engine.register(both)
        with pytest.raises(EngineError, match="2 paths matched"):
            engine.evaluate(both, {})


class TestRegistration:
    def test_registration_does_not_mutate_the_compiled_definition(self, guide: Policy) -> None:
        """Durable deletes 'run' from what it is given; the compiled rules stay intact."""
        compiled = compile_policy(guide)
        snapshot = copy.deepcopy(dict(compiled.rules))
        DurableEngine().register(compiled)
        assert dict(compiled.rules) == snapshot

    def test_same_content_registers_once_and_changed_content_gets_its_own_ruleset(
        self, guide: Policy, tmp_path: Any
    ) -> None:
        """A ruleset can't be replaced: names carry the digest, so an edited file serves beside the original."""
        engine = DurableEngine()
        original = compile_policy(guide)
        engine.register(original)
        engine.register(compile_policy(guide))  # same content: a no-op, not durable's "already registered"
        edited_file = tmp_path / "1.0.0.yaml"
        text = GUIDE_FILE.read_text().replace("pathway JCG_A_DELIBERATE_HARM", "pathway JCG_G_MANAGEMENT_ACTION", 1)
        edited_file.write_text(text)
        edited = compile_policy(load_file(edited_file))
        assert edited.ruleset != original.ruleset
        engine.register(edited)
        facts = {"is_patient_safety_incident": "YES", "individual_concern_raised": "YES",
                 "safeguarding_concern": "NO", "intent_to_harm": "YES"}
        assert engine.evaluate(original, facts).terminal.target.pathway == "JCG_A_DELIBERATE_HARM"
        assert engine.evaluate(edited, facts).terminal.target.pathway == "JCG_G_MANAGEMENT_ACTION"

    def test_actions_are_never_looked_up_by_name(self) -> None:
        """A rule naming an action string (e.g. "os.system") is refused at registration."""
        host = _SyncHost()
        with pytest.raises(LookupError):
            host.register_rulesets({"named": {"r": {"all": [{"m": {"type": "case"}}], "run": "os.system"}}})

    def test_unregistered_policy_is_an_engine_error(self, guide: Policy) -> None:
        """Evaluating a compiled policy the engine never registered fails cleanly."""
        with pytest.raises(EngineError, match="not registered"):
            DurableEngine().evaluate(compile_policy(guide), {})

    def test_durable_rejection_is_reported(self, guide: Policy) -> None:
        """Durable's numeric refusal (here: too many nested alternatives) becomes an EngineError naming the ruleset."""
        nested = {"$and": [{"type": "case"}] + [{"$or": [{f"f{i}": "YES"}, {f"f{i}": "NO"}]} for i in range(25)]}
        rules = {"r": {"all": [{"m": nested}]}}
        bad = _hand_compiled(guide, "nested@test", rules, {"r": Action("terminal", terminal=0)})
        with pytest.raises(EngineError, match="nested@test"):
            DurableEngine().register(bad)


def test_importing_the_engine_patches_nothing_until_an_engine_is_made() -> None:
    """Patching durable_rules' clock and JSON glue is an explicit step of making an engine.

    Importing fairpath.engine.durable alone changes nothing (checked in a fresh interpreter).
    """
    script = (
        "import time\n"
        "from durable import engine as durable\n"
        "import fairpath.engine.durable as ours\n"
        "before = (durable._unix_now is time.time, durable.json is ours._Json)\n"
        "ours.DurableEngine(sessions=1)\n"
        "after = (durable._unix_now is time.time, durable.json is ours._Json)\n"
        "print(before, after)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "(False, False) (True, True)"


def test_the_durable_engine_names_itself_in_every_outcome() -> None:
    """The engine's name and version reach the decision through the outcome, not a module constant."""
    engine = DurableEngine(sessions=1)
    assert (engine.name, engine.version) == ("durable_rules", metadata.version("durable-rules"))
