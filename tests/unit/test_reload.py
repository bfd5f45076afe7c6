"""Hot reload in process, on the real engine: what serves after a reload, and what never does.

Each test builds a policy directory of ``mini-policy`` versions in ``tmp_path``
(:mod:`tests.support.policy_dirs`), serves it through a :class:`Reloader`, then
changes files and reloads.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fairpath.config import Config, ConfigError
from fairpath.decisions import Decision, Subject
from fairpath.engine.compiler import CompiledPolicy, compile_policy
from fairpath.engine.durable import DurableEngine
from fairpath.errors import EngineError, PolicyNotFoundError
from fairpath.policy.loader import load_file
from fairpath.policy.lock import lock_path
from fairpath.serving.evaluator import Evaluator
from fairpath.serving.reload import Reloader, ReloadResult
from fairpath.serving.state import ServedVersion
from fairpath.serving.watch import ReloadDaemon, snapshot
from structlog.testing import capture_logs

from tests.support.policy_dirs import NAME, lock, write_version
from tests.support.waiting import wait_until

EXPERIENCED = {"intent_to_harm": "NO", "years": 5}  # ACT when the threshold is 2, LEARN when it is 10


@pytest.fixture(name="root")
def _root(tmp_path: Path) -> Path:
    """Two locked active versions: 1.0.0 (threshold 2) and 2.0.0 (threshold 10)."""
    write_version(tmp_path, "1.0.0", threshold=2)
    write_version(tmp_path, "2.0.0", threshold=10)
    lock(tmp_path)
    return tmp_path


@pytest.fixture(name="evaluator")
def _evaluator() -> Iterator[Evaluator]:
    evaluator = Evaluator()
    yield evaluator
    evaluator.close()


@pytest.fixture(name="reloader")
def _reloader(root: Path, evaluator: Evaluator) -> Reloader:
    reloader = Reloader(evaluator, root)
    assert reloader.reload("startup").ok
    return reloader


def last_trigger(reloader: Reloader) -> str:
    return reloader.last.trigger if reloader.last is not None else ""


def pathway(evaluator: Evaluator, version: str = "") -> str:
    decision = evaluator.evaluate(NAME, EXPERIENCED, version=version)
    assert decision.pathway is not None
    return decision.pathway.code


class TestVersionsSideBySide:
    """Several versions serve at once; the current one follows the documented rule."""

    def test_pinned_request_gets_the_pinned_version_and_decisions_name_the_digest(
        self, reloader: Reloader, evaluator: Evaluator
    ) -> None:
        """Unpinned gets the highest active (2.0.0), pinned gets 1.0.0; each decision names its digest."""
        registry = evaluator.registry
        assert pathway(evaluator) == "LEARN"
        assert pathway(evaluator, "1.0.0") == "ACT"
        for version in ("1.0.0", "2.0.0"):
            decision = evaluator.evaluate(NAME, EXPERIENCED, version=version)
            expected = (version, registry.get(NAME, version).digest)
            assert (decision.policy.version, decision.policy.digest) == expected

    def test_retired_version_stays_evaluable_but_never_current(
        self, root: Path, reloader: Reloader, evaluator: Evaluator
    ) -> None:
        """A higher retired version serves only when pinned; the current one does not change."""
        write_version(root, "3.0.0", threshold=2, status="retired")
        lock(root)
        assert reloader.reload("rpc").loaded == (f"{NAME}@3.0.0",)
        assert evaluator.registry.get(NAME).version == "2.0.0"
        assert pathway(evaluator, "3.0.0") == "ACT"

    def test_draft_serves_unlocked_but_never_current(
        self, root: Path, reloader: Reloader, evaluator: Evaluator
    ) -> None:
        """A draft with no lock line serves when pinned and is never what an unpinned request gets."""
        write_version(root, "9.0.0", threshold=2, status="draft")
        result = reloader.reload("rpc")
        assert (result.ok, result.loaded) == (True, (f"{NAME}@9.0.0",))
        assert evaluator.registry.get(NAME).version == "2.0.0"
        assert pathway(evaluator, "9.0.0") == "ACT"


class TestLock:
    """Published versions never change silently."""

    def test_edited_locked_file_is_refused_and_the_version_keeps_serving(
        self, root: Path, reloader: Reloader, evaluator: Evaluator
    ) -> None:
        """Editing 1.0.0 in place: a lock problem and a policy_refused line; 1.0.0 serves as before."""
        before = evaluator.evaluate(NAME, EXPERIENCED, version="1.0.0").policy.digest
        edited = write_version(root, "1.0.0", threshold=10)  # would change its decisions
        with capture_logs() as logs:
            result = reloader.reload("rpc")
        assert not result.ok
        (problem,) = result.problems
        assert (problem.check, problem.path, problem.severity) == ("lock", str(edited), "error")
        decision = evaluator.evaluate(NAME, EXPERIENCED, version="1.0.0")
        assert (decision.policy.digest, decision.pathway and decision.pathway.code) == (before, "ACT")
        (refused,) = [entry for entry in logs if entry["event"] == "policy_refused"]
        assert refused["version"] == f"{NAME}@1.0.0"
        assert refused["path"] == str(edited)
        assert refused["expected"] == before[:12]
        assert refused["actual"] != before[:12]
        assert refused["still_serving"].startswith(f"{NAME}@1.0.0 {before[:12]}")

    def test_unlocked_published_version_is_refused_by_default(
        self, root: Path, reloader: Reloader, evaluator: Evaluator
    ) -> None:
        """A new active version missing from the lock does not serve; once locked, it does."""
        write_version(root, "3.0.0", threshold=2)
        result = reloader.reload("rpc")
        assert [p.check for p in result.problems] == ["lock"]
        with pytest.raises(PolicyNotFoundError):
            evaluator.evaluate(NAME, EXPERIENCED, version="3.0.0")
        lock(root)
        assert reloader.reload("rpc").loaded == (f"{NAME}@3.0.0",)
        assert evaluator.registry.get(NAME).version == "3.0.0"

    def test_allow_unlocked_serves_it_with_a_warning(self, root: Path, evaluator: Evaluator) -> None:
        """With allow_unlocked, an unlocked active version serves and the result stays ok, with a warning."""
        write_version(root, "3.0.0", threshold=2)
        result = Reloader(evaluator, root, allow_unlocked=True).reload("startup")
        assert result.ok
        assert [(p.check, p.severity) for p in result.problems] == [("lock", "warning")]
        assert evaluator.registry.get(NAME).version == "3.0.0"

    def test_a_malformed_lock_file_refuses_new_published_versions(
        self, root: Path, evaluator: Evaluator
    ) -> None:
        """An unreadable lock is a problem, and nothing published serves against it."""
        lock_path(root).write_text("- not a mapping\n")
        result = Reloader(evaluator, root).reload("startup")
        assert not result.ok
        assert evaluator.registry.all() == []
        assert {p.check for p in result.problems} == {"lock"}


class TestSafeReload:
    """A broken or untested file never disturbs what is serving."""

    def test_new_version_serves_without_restart(
        self, root: Path, reloader: Reloader, evaluator: Evaluator
    ) -> None:
        """A version dropped into the directory serves after the next reload, which names it as loaded."""
        write_version(root, "2.1.0", threshold=2)
        lock(root)
        result = reloader.reload("rpc")
        assert (result.ok, result.loaded, result.trigger) == (True, (f"{NAME}@2.1.0",), "rpc")
        assert pathway(evaluator) == "ACT"

    def test_unchanged_files_are_carried_over_not_recompiled(
        self, reloader: Reloader, evaluator: Evaluator
    ) -> None:
        """A reload with nothing changed loads nothing and keeps the same compiled versions."""
        before = evaluator.state.versions()
        rulesets = evaluator.engine.rulesets
        result = reloader.reload("watch")
        assert (result.ok, result.loaded) == (True, ())
        assert [v.compiled for v in evaluator.state.versions()] == [v.compiled for v in before]
        assert evaluator.engine.rulesets == rulesets

    def test_broken_new_file_is_refused_and_serving_is_untouched(
        self, root: Path, reloader: Reloader, evaluator: Evaluator
    ) -> None:
        """Invalid YAML in a new file: one load problem with its line; both versions serve as before."""
        before = [v.compiled for v in evaluator.state.versions()]
        broken = root / NAME / "3.0.0.yaml"
        broken.write_text("policy: mini-policy\nversion: [unclosed\n")
        result = reloader.reload("rpc")
        (problem,) = result.problems
        assert (problem.check, problem.path) == ("load", str(broken))
        assert problem.line is not None
        assert [v.compiled for v in evaluator.state.versions()] == before

    def test_version_whose_tests_fail_is_refused_and_unloaded(
        self, root: Path, reloader: Reloader, evaluator: Evaluator
    ) -> None:
        """Failing cases: one tests problem per failing case, not served, its ruleset unloaded."""
        rulesets = evaluator.engine.rulesets
        write_version(root, "3.0.0", threshold=2, wrong=True)
        lock(root)
        result = reloader.reload("rpc")
        assert not result.ok
        (problem,) = result.problems
        assert problem.check == "tests"
        assert "'experienced'" in problem.message
        assert "expected 'LEARN', got 'ACT'" in problem.message
        with pytest.raises(PolicyNotFoundError):
            evaluator.evaluate(NAME, EXPERIENCED, version="3.0.0")
        assert evaluator.engine.rulesets == rulesets

    def test_version_without_tests_is_refused(
        self, root: Path, reloader: Reloader, evaluator: Evaluator
    ) -> None:
        """No <version>.tests.yaml beside it: the version never serves."""
        write_version(root, "3.0.0", threshold=2, tests=False)
        lock(root)
        (problem,) = reloader.reload("rpc").problems
        assert problem.check == "tests"
        assert "3.0.0.tests.yaml" in problem.path
        assert evaluator.registry.get(NAME).version == "2.0.0"

    def test_broken_edit_of_a_draft_keeps_its_previous_content_serving(
        self, root: Path, reloader: Reloader, evaluator: Evaluator
    ) -> None:
        """A draft edited into a failing state keeps serving its last good content."""
        write_version(root, "9.0.0", threshold=2, status="draft")
        reloader.reload("rpc")
        good = evaluator.registry.get(NAME, "9.0.0").digest
        # New content, old cases (written for threshold 2): "experienced" now fails.
        write_version(root, "9.0.0", threshold=10, status="draft", tests=False)
        result = reloader.reload("rpc")
        assert not result.ok
        assert evaluator.registry.get(NAME, "9.0.0").digest == good

    def test_changed_draft_replaces_its_previous_content(
        self, root: Path, reloader: Reloader, evaluator: Evaluator
    ) -> None:
        """A draft whose new content passes its cases replaces the old content, which is unloaded."""
        write_version(root, "9.0.0", threshold=2, status="draft")
        reloader.reload("rpc")
        rulesets = evaluator.engine.rulesets
        old = evaluator.registry.get(NAME, "9.0.0").digest
        write_version(root, "9.0.0", threshold=2, status="draft", title="Reworded")
        assert reloader.reload("rpc").loaded == (f"{NAME}@9.0.0",)
        assert evaluator.registry.get(NAME, "9.0.0").digest != old
        assert evaluator.engine.rulesets == rulesets

    def test_two_new_files_defining_one_version_are_both_refused(
        self, root: Path, reloader: Reloader, evaluator: Evaluator
    ) -> None:
        """No winner by file order: both copies are refused as duplicates."""
        first = write_version(root, "3.0.0", threshold=2)
        second = root / "copy" / "3.0.0.yaml"
        second.parent.mkdir()
        second.write_bytes(first.read_bytes())
        (second.parent / "3.0.0.tests.yaml").write_bytes((first.parent / "3.0.0.tests.yaml").read_bytes())
        lock(root)
        result = reloader.reload("rpc")
        duplicates = sorted(p.path for p in result.problems if p.check == "duplicate")
        assert duplicates == sorted([str(first), str(second)])
        assert evaluator.registry.get(NAME).version == "2.0.0"

    def test_copy_of_a_serving_version_is_refused_and_the_original_serves(
        self, root: Path, reloader: Reloader, evaluator: Evaluator
    ) -> None:
        """A second file claiming a serving version is refused; the serving file keeps it."""
        original = root / NAME / "1.0.0.yaml"
        copy = root / "copy" / "1.0.0.yaml"
        copy.parent.mkdir()
        copy.write_bytes(original.read_bytes())
        result = reloader.reload("rpc")
        assert [(p.check, p.path) for p in result.problems] == [("duplicate", str(copy))]
        assert evaluator.registry.get(NAME, "1.0.0").path == str(original)

    def test_removed_file_stops_serving(self, root: Path, reloader: Reloader, evaluator: Evaluator) -> None:
        """Deleting a version's file unserves it on the next reload; the other version becomes current."""
        (root / NAME / "2.0.0.yaml").unlink()
        reloader.reload("rpc")
        assert [p.version for p in evaluator.registry.all()] == ["1.0.0"]
        assert evaluator.registry.get(NAME).version == "1.0.0"

    def test_startup_with_one_broken_file_serves_the_rest(self, root: Path, evaluator: Evaluator) -> None:
        """Start-up is a reload too: a broken file is a problem, every other version serves."""
        (root / NAME / "3.0.0.yaml").write_text("policy: [unclosed\n")
        result = Reloader(evaluator, root).reload("startup")
        assert (result.ok, result.trigger) == (False, "startup")
        assert [p.version for p in evaluator.registry.all()] == ["1.0.0", "2.0.0"]

    def test_missing_directory_serves_nothing_and_says_why(
        self, tmp_path: Path, evaluator: Evaluator
    ) -> None:
        """A policy directory that does not exist is one problem and no versions."""
        result = Reloader(evaluator, tmp_path / "nope").reload("startup")
        assert not result.ok
        assert "does not exist" in result.problems[0].message
        assert evaluator.registry.all() == []

    def test_unknown_trigger_is_refused(self, reloader: Reloader) -> None:
        """Only startup, rpc, signal and watch are triggers."""
        with pytest.raises(ValueError, match="trigger"):
            reloader.reload("cron")


class TestInFlight:
    """Evaluations running during reloads finish on the state they started with.

    Deterministic: each test opens the race window by hand. Threads evaluating through
    many reloads are tests/integration/test_reload_service.py's, over gRPC.
    """

    def test_an_evaluation_whose_state_closes_before_its_lease_takes_the_new_one(
        self, root: Path, reloader: Reloader, evaluator: Evaluator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A reload closing the state an evaluation has read but not yet leased sends it to the new state."""
        old = evaluator.state
        real_enter = old.enter
        entered: list[bool] = []

        def enter_after_a_reload() -> bool:
            (root / NAME / "2.0.0.yaml").unlink()
            reloader.reload("rpc")  # nobody leases the old state yet, so it closes now
            entered.append(real_enter())
            return entered[-1]

        monkeypatch.setattr(old, "enter", enter_after_a_reload)
        decision = evaluator.evaluate(NAME, EXPERIENCED)
        assert entered == [False]
        assert old.closed
        assert decision.policy.version == "1.0.0"

    def test_a_release_that_raises_neither_fails_the_evaluation_nor_keeps_the_other_versions(
        self, root: Path, reloader: Reloader, evaluator: Evaluator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The last evaluation on a superseded state returns though a release raises; the rest unload."""
        first = evaluator.state.version(NAME, "1.0.0").compiled
        real_release = evaluator.engine.release
        real_decide = ServedVersion.decide

        def release(compiled: CompiledPolicy) -> None:
            if compiled is first:
                raise RuntimeError("release failed")
            real_release(compiled)

        def decide_during_a_reload(self: ServedVersion, *args: Any, **kwargs: Any) -> Decision:
            if (root / NAME / "2.0.0.yaml").exists():  # once: the reload's own test cases decide too
                (root / NAME / "2.0.0.yaml").unlink()
                reloader.reload("rpc")  # supersedes the state this evaluation holds
            return real_decide(self, *args, **kwargs)

        monkeypatch.setattr(evaluator.engine, "release", release)
        monkeypatch.setattr(ServedVersion, "decide", decide_during_a_reload)
        with capture_logs() as logs:
            decision = evaluator.evaluate(NAME, EXPERIENCED, version="2.0.0")
        assert decision.policy.version == "2.0.0"
        assert evaluator.engine.rulesets == 1  # 2.0.0 was released and unloaded after 1.0.0 failed
        (failed,) = [log for log in logs if log["event"] == "release_failed"]
        assert (failed["version"], failed["error_type"]) == (f"{NAME}@1.0.0", "RuntimeError")


class TestMemoryBounded:
    """Versions nobody serves any more are unloaded from durable_rules."""

    def test_rulesets_stay_bounded_over_50_reloads(self, root: Path, evaluator: Evaluator) -> None:
        """50 reloads of a changed draft leave as many durable rulesets as versions serving."""
        reloader = Reloader(evaluator, root)
        for round_ in range(50):
            write_version(root, "9.0.0", threshold=2, status="draft", title=f"Draft {round_}")
            reloader.reload("watch")
        assert evaluator.engine.rulesets == len(evaluator.registry.all()) == 3

    def test_without_unloading_rulesets_pile_up(self, root: Path) -> None:
        """The contrast: with unloading off, every superseded draft stays loaded."""
        evaluator = Evaluator(engine=DurableEngine(unload=False))
        reloader = Reloader(evaluator, root)
        for round_ in range(10):
            write_version(root, "9.0.0", threshold=2, status="draft", title=f"Draft {round_}")
            reloader.reload("watch")
        assert evaluator.engine.rulesets == 2 + 10

    def test_a_leased_state_is_unloaded_only_after_its_last_evaluation(
        self, root: Path, reloader: Reloader, evaluator: Evaluator
    ) -> None:
        """A superseded state that an evaluation still holds keeps its rulesets until that evaluation ends."""
        old = evaluator.state
        assert old.enter()  # an evaluation in flight on the old state
        (root / NAME / "2.0.0.yaml").unlink()
        reloader.reload("rpc")
        assert not old.closed
        assert evaluator.engine.rulesets == 2
        served = old.version(NAME, "2.0.0")
        decision = served.decide(evaluator.engine, EXPERIENCED, subject=Subject(), request_id="")
        assert decision.policy.version == "2.0.0"
        old.leave()
        assert old.closed
        assert evaluator.engine.rulesets == 1
        with pytest.raises(EngineError, match="not registered"):
            served.decide(evaluator.engine, EXPERIENCED, subject=Subject(), request_id="")


class TestEngineRelease:
    """DurableEngine.register / release count holders and unload at zero."""

    def test_last_release_unloads_and_the_same_content_can_register_again(self, root: Path) -> None:
        """Two holders: the first release keeps the ruleset, the second unloads it; it can register again."""
        engine = DurableEngine()
        policy = compile_policy(load_file(root / NAME / "1.0.0.yaml"))
        engine.register(policy)
        engine.register(policy)
        engine.release(policy)
        assert engine.rulesets == 1
        engine.release(policy)
        assert engine.rulesets == 0
        engine.register(policy)
        assert engine.evaluate(policy, {"intent_to_harm": "YES"}).terminal.target is not None


class TestCurrentByDate:
    """The current version follows the calendar without a reload."""

    def test_a_version_becomes_current_on_its_effective_date(
        self, tmp_path: Path, evaluator: Evaluator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A version effective tomorrow is current tomorrow, in the same serving state."""
        write_version(tmp_path, "1.0.0")
        future = write_version(tmp_path, "2.0.0", threshold=10)
        future.write_text(future.read_text().replace("'2020-01-01'", "'2030-01-01'"))
        lock(tmp_path)
        Reloader(evaluator, tmp_path).reload("startup")

        class Day(date):
            today_is = date(2029, 12, 31)

            @classmethod
            def today(cls) -> date:
                return cls.today_is

        monkeypatch.setattr("fairpath.policy.registry.date", Day)
        assert evaluator.registry.get(NAME).version == "1.0.0"
        Day.today_is = date(2030, 1, 1)
        assert evaluator.registry.get(NAME).version == "2.0.0"

    def test_an_evaluation_gets_the_new_current_version_from_local_midnight(
        self, tmp_path: Path, evaluator: Evaluator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The serving state remembers each day's current version, and only until the date changes."""
        write_version(tmp_path, "1.0.0")
        future = write_version(tmp_path, "2.0.0", threshold=10)
        future.write_text(future.read_text().replace("'2020-01-01'", "'2030-01-01'"))
        lock(tmp_path)
        Reloader(evaluator, tmp_path).reload("startup")
        clock = {"now": datetime(2029, 12, 31, 23, 59, 59).timestamp()}  # local time, as the date is

        class Day(date):
            @classmethod
            def today(cls) -> date:
                return datetime.fromtimestamp(clock["now"]).date()

        monkeypatch.setattr("fairpath.policy.registry.date", Day)
        monkeypatch.setattr("fairpath.serving.state.time", SimpleNamespace(time=lambda: clock["now"]))
        assert evaluator.evaluate(NAME, EXPERIENCED).policy.version == "1.0.0"
        assert evaluator.evaluate(NAME, EXPERIENCED).policy.version == "1.0.0"
        clock["now"] += 2  # 00:00:01 on the day 2.0.0 takes effect
        assert evaluator.evaluate(NAME, EXPERIENCED).policy.version == "2.0.0"


class TestTriggers:
    """SIGHUP requests and directory polling (fairpath.serving.watch), in process."""

    def test_snapshot_changes_when_a_policy_file_or_the_lock_changes(self, root: Path) -> None:
        """The cheap scan sees a new policy file and a rewritten lock file, and nothing else."""
        first = snapshot(root)
        (root / "notes.txt").write_text("not a policy")
        assert snapshot(root) == first
        write_version(root, "3.0.0")
        second = snapshot(root)
        assert second != first
        lock(root)
        assert snapshot(root) != second

    def test_a_request_reloads_with_trigger_signal(self, root: Path, reloader: Reloader) -> None:
        """request() (what the SIGHUP handler calls) reloads on the daemon thread, polling off."""
        daemon = ReloadDaemon(reloader, 0)
        daemon.start()
        try:
            write_version(root, "9.0.0", status="draft")
            daemon.request()
            wait_until(lambda: last_trigger(reloader) == "signal", 10, "a signal reload")
        finally:
            daemon.stop()
        assert reloader.last is not None
        assert reloader.last.loaded == (f"{NAME}@9.0.0",)

    def test_polling_reloads_on_change_only(self, root: Path, reloader: Reloader) -> None:
        """Polling: an unchanged directory causes no reload, a new file causes a 'watch' reload."""
        daemon = ReloadDaemon(reloader, 0.02)
        daemon.start()
        try:
            time.sleep(0.2)
            assert reloader.last is not None
            assert reloader.last.trigger == "startup"
            write_version(root, "9.0.0", status="draft")
            wait_until(lambda: last_trigger(reloader) == "watch", 10, "a watch reload")
        finally:
            daemon.stop()

    def test_a_reload_that_raises_is_logged_and_the_daemon_keeps_going(
        self, root: Path, reloader: Reloader, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An exception out of reload() is logged as reload_failed; later requests and changes reload."""
        real_reload = reloader.reload
        calls: list[str] = []

        def fail_once(trigger: str) -> ReloadResult:
            calls.append(trigger)
            if len(calls) == 1:
                raise RuntimeError("install failed")
            return real_reload(trigger)

        def serving() -> list[str]:
            return [p.version for p in reloader.evaluator.registry.all()]

        monkeypatch.setattr(reloader, "reload", fail_once)
        daemon = ReloadDaemon(reloader, 0.02)
        with capture_logs() as logs:
            daemon.start()
            try:
                # The failure comes from a request, not a file change: writing a file may show to
                # the poller as more than one change, so only the reload it asks for is counted.
                daemon.request()  # what SIGHUP does
                wait_until(lambda: len(calls) == 1, 10, "the failing reload")
                write_version(root, "9.0.0", status="draft")
                wait_until(lambda: "9.0.0" in serving(), 10, "polling to load 9.0.0")
                write_version(root, "9.1.0", status="draft")
                daemon.request()
                wait_until(lambda: "9.1.0" in serving() and calls[-1] == "signal", 10, "the next request")
            finally:
                daemon.stop()
        assert calls[0] == "signal"
        assert "watch" in calls
        (failed,) = [log for log in logs if log["event"] == "reload_failed"]
        assert (failed["trigger"], failed["error_type"]) == ("signal", "RuntimeError")

    def test_settings_come_from_flags_and_environment(self) -> None:
        """--watch-seconds and --allow-unlocked (and their FAIRPATH_* variables) reach the config."""
        assert Config.from_sources([], {}).watch_seconds == 2.0
        assert not Config.from_sources([], {}).allow_unlocked
        config = Config.from_sources(["--watch-seconds", "0"], {"FAIRPATH_ALLOW_UNLOCKED": "yes"})
        assert (config.watch_seconds, config.allow_unlocked) == (0.0, True)
        with pytest.raises(ConfigError, match="--watch-seconds"):
            Config.from_sources(["--watch-seconds", "-1"], {})

