"""`fairpath serve --workers 2` as a real process: a dead worker is replaced, a crash loop stops the service."""

from __future__ import annotations

import collections
import os
import signal
import threading
from pathlib import Path
from typing import Any

import grpc
from fairpath.workers import CRASH_LOOP_DEATHS
from fairpath_client import FairpathClient, FairpathClientError, ServiceUnavailableError

from tests.support.policy_dirs import NAME, lock, write_version
from tests.support.servers import ServerProcess

CLIENTS = 4
FACTS = {"intent_to_harm": "YES"}
# A private subchannel pool gives each client its own connection, which SO_REUSEPORT hands to either worker.
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


class _CallDetails(
    collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
    ),
    grpc.ClientCallDetails,
):
    """The details of one call, as the value an interceptor hands on (grpc ships only the abstract class)."""


class _WaitForReady(grpc.UnaryUnaryClientInterceptor):
    """Make every call wait for a connection instead of failing at once while the channel reconnects.

    A new connection can land on the dying worker's listening socket and be reset; without this,
    calls made during the channel's reconnect back-off fail although no worker ever saw them.
    With it, a call fails only if the worker that died had it: what this test counts.
    """

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        waiting = _CallDetails(
            details.method, details.timeout, details.metadata, details.credentials, True, details.compression
        )
        return continuation(waiting, request)


def _mini_policies(tmp_path: Path) -> Path:
    # One small policy: a worker starts in a fraction of the time the shipped ones take to compile and test.
    root = tmp_path / "policies"
    write_version(root, "1.0.0")
    lock(root)
    return root


def _start(tmp_path: Path, *args: str) -> ServerProcess:
    server = ServerProcess(
        _mini_policies(tmp_path), "--workers", "2", "--watch-seconds", "0", "--console-port", "0", *args, cwd=tmp_path
    )
    try:
        server.wait_until(lambda: len(server.events("serving")) == 2, "two workers serving")
    except BaseException:
        server.close()  # its pipes too: a leaked one fails a later test with a ResourceWarning
        raise
    return server


def _serving_pids(server: ServerProcess) -> list[int]:
    return [event["pid"] for event in server.events("serving")]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class _CallLoop:
    """CLIENTS threads, each with its own connection, calling Evaluate one call at a time until stopped."""

    def __init__(self, target: str) -> None:
        self.stop = threading.Event()
        self.outcomes: list[list[str]] = [[] for _ in range(CLIENTS)]
        self._threads = [threading.Thread(target=self._loop, args=(target, n)) for n in range(CLIENTS)]

    def _loop(self, target: str, number: int) -> None:
        outcomes = self.outcomes[number]
        with grpc.insecure_channel(target, options=OWN_CONNECTION) as channel:
            client = FairpathClient(channel=grpc.intercept_channel(channel, _WaitForReady()), timeout=10)
            while not self.stop.is_set():
                try:
                    client.evaluate(NAME, FACTS, dry_run=True)
                    outcomes.append("OK")
                except FairpathClientError as error:
                    outcomes.append(f"{type(error).__name__}: {error}")

    def __enter__(self) -> _CallLoop:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def answered(self) -> int:
        return sum(outcomes.count("OK") for outcomes in self.outcomes)


def _answers_new_connections(server: ServerProcess, pid: int) -> bool:
    """Whether worker ``pid`` answers some of 40 calls, each on a new connection (which lands on either worker)."""
    logged = len(server.events("rpc"))
    for _ in range(40):
        with grpc.insecure_channel(server.target, options=OWN_CONNECTION) as channel:
            FairpathClient(channel=channel).evaluate(NAME, FACTS, dry_run=True)
    server.wait_until(lambda: len(server.events("rpc")) >= logged + 40, "access log lines")
    return any(event["pid"] == pid for event in server.events("rpc")[logged:])


def test_a_killed_worker_is_replaced_while_the_other_keeps_serving(tmp_path: Path) -> None:
    """SIGKILL of a busy worker: only its in-flight calls fail (UNAVAILABLE), a new worker takes its place."""
    with _start(tmp_path) as server:
        first = _serving_pids(server)
        with _CallLoop(server.target) as calls:
            server.wait_until(lambda: calls.answered() >= 100, "100 calls answered")
            # The victim is a worker that answers calls of the loop, so the kill cuts some off mid-call.
            busy = [e["pid"] for e in server.events("rpc") if e["method"].endswith("/Evaluate")]
            victim = collections.Counter(busy).most_common(1)[0][0]
            survivor = next(pid for pid in first if pid != victim)
            before = [len(outcomes) for outcomes in calls.outcomes]
            os.kill(victim, signal.SIGKILL)
            server.wait_until(lambda: len(server.events("serving")) == 3, "a replacement serving")
            after = calls.answered()
            server.wait_until(lambda: calls.answered() >= after + 100, "100 more calls answered")

        (replacement,) = [pid for pid in _serving_pids(server) if pid not in first]
        assert _alive(survivor)
        assert _alive(replacement)
        assert server.process.poll() is None
        # A client loses only what it had sent to the dead worker: the call in flight and, at most, one more
        # it started before noticing the connection was gone (each fails UNAVAILABLE). Once it has
        # reconnected (to the survivor), nothing fails again.
        for outcomes, start in zip(calls.outcomes, before, strict=True):
            assert set(outcomes[:start]) == {"OK"}
            lost = [index for index, outcome in enumerate(outcomes) if outcome != "OK"]
            assert len(lost) <= 2, [outcomes[index] for index in lost]
            if lost:  # one run of failures, not failures spread over time
                assert lost == list(range(lost[0], lost[-1] + 1))
            assert all(outcomes[index].startswith(ServiceUnavailableError.__name__) for index in lost)
            assert outcomes[-1] == "OK"
        assert _answers_new_connections(server, replacement), "the replacement never answered a call"

        (died,) = server.events("worker_died")
        assert (died["worker_pid"], died["signal"], died["level"]) == (victim, "SIGKILL", "error")
        (replaced,) = server.events("worker_replaced")
        assert (replaced["worker_pid"], replaced["replaces"], replaced["slot"]) == (replacement, victim, died["slot"])

        # The replacement is supervised like the first workers: SIGHUP reaches it too.
        server.process.send_signal(signal.SIGHUP)

        def reloaded_by() -> set[int]:
            return {e["pid"] for e in server.events("policies_reloaded") if e["trigger"] == "signal"}

        server.wait_until(lambda: reloaded_by() == {survivor, replacement}, "both workers reloading on SIGHUP")
        assert server.stop() == 0
    assert not server.events("workers_crash_loop")
    assert server.events("workers_stopped")[0]["exit_code"] == 0
    for pid in (survivor, replacement):
        assert not _alive(pid)


def test_workers_that_keep_dying_stop_the_service_as_a_crash_loop(tmp_path: Path) -> None:
    """The store becomes unopenable, a worker dies: replacements fail at start until the crash-loop stop, exit 1."""
    trail = tmp_path / "trail.sqlite3"
    with _start(tmp_path, "--store", f"sqlite:///{trail}") as server:
        first = _serving_pids(server)
        # The running workers keep their open database; a new worker finds a directory in its place.
        trail.rename(tmp_path / "moved.sqlite3")
        trail.mkdir()
        os.kill(first[0], signal.SIGKILL)
        assert server.wait(timeout=120) == 1, "".join(server.lines)

    # The killed worker, then replacements failing on the store; the death past the limit stops it all.
    died = server.events("worker_died")
    assert len(died) == CRASH_LOOP_DEATHS
    assert died[0]["signal"] == "SIGKILL"
    assert [event["exit_code"] for event in died[1:]] == [1] * (CRASH_LOOP_DEATHS - 1)
    assert len(server.events("store_unavailable")) == CRASH_LOOP_DEATHS
    # The pause before each replacement doubled: a failing worker is not restarted in a tight loop.
    delays = [event["restart_in_seconds"] for event in died]
    assert delays == sorted(delays)
    assert delays[-1] > delays[0]
    (loop,) = server.events("workers_crash_loop")
    assert (loop["level"], loop["deaths"]) == ("error", CRASH_LOOP_DEATHS + 1)
    assert not server.events("serving")[2:], "a replacement served on an unreadable store"
    # The surviving worker was stopped cleanly, and nothing is left running.
    assert [event["pid"] for event in server.events("stopped")] == [first[1]]
    assert not _alive(first[1])
    assert server.events("workers_stopped")[0]["exit_code"] == 1
    assert "Traceback" not in "".join(server.lines)


def test_a_worker_failing_before_any_served_fails_the_start_at_once(tmp_path: Path) -> None:
    """Nothing serves yet (every policy file broken): exit 2 like one process, with no replacement attempted."""
    broken = tmp_path / "policies" / "broken"
    broken.mkdir(parents=True)
    (broken / "1.0.0.yaml").write_text("policy: [unclosed\n")
    with ServerProcess(tmp_path / "policies", "--workers", "2", "--console-port", "0", cwd=tmp_path) as server:
        assert server.wait(timeout=60) == 2, "".join(server.lines)
    assert server.events("worker_failed")[0]["exit_code"] == 2
    assert not server.events("worker_died")
    assert not server.events("worker_replaced")
    assert server.events("workers_stopped")[0]["exit_code"] == 2

