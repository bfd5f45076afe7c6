"""``fairpath serve --workers N``: N server processes on one port, kept at N.

:class:`WorkerSupervisor` is the parent process. It serves nothing itself; it starts
the workers, forwards signals to them and replaces those that die:

* SIGTERM or SIGINT: passed on to every worker, which drains and exits 0; the
  supervisor returns once all have (0 unless a worker failed before that).
* SIGHUP: passed on; each worker reloads its policies.
* A worker that dies — killed by a signal (the kernel's OOM killer, a crash in
  durable_rules' C code) or exiting non-zero — is logged (``worker_died``) and
  replaced, while the others keep serving. The pause before the replacement
  starts doubles with every death in the last :data:`CRASH_LOOP_SECONDS`
  (0.1 s, 0.2 s, 0.4 s … at most :data:`MAX_RESTART_DELAY_SECONDS`), like a
  gunicorn arbiter that does not hammer a failing resource.
* More than :data:`CRASH_LOOP_DEATHS` deaths within :data:`CRASH_LOOP_SECONDS` is a
  crash loop: ``workers_crash_loop`` is logged, the rest are stopped and the
  supervisor returns :data:`EXIT_FAILED`.
* Until a first worker has served, a worker that fails fails the whole start,
  with its own exit code (2 when no policy serves): a bad configuration stops at
  once instead of looping.
* A worker that exits 0 by itself was stopped on purpose (sent SIGTERM alone) and
  is not replaced.

The first workers are forked from the supervisor at once, while it has no
thread yet (and no gRPC object: gRPC's core is not fork-safe once started).
Replacements come from multiprocessing's *fork server*, a clean process
started on the first death, because by then the supervisor runs threads (the
checkpoint writer, the review console) that a fork would copy mid-step, locks
held and all. A replacement therefore starts a second or two later than a
forked worker would, the first time.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import ForkContext, ForkServerContext
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import structlog

from fairpath.config import Config

RESTART_DELAY_SECONDS = 0.1
MAX_RESTART_DELAY_SECONDS = 5.0
CRASH_LOOP_DEATHS = 5
CRASH_LOOP_SECONDS = 60.0
EXIT_FAILED = 1
# Imported once by the fork server, so each replacement starts with the server code already loaded.
WORKER_MODULES = ["fairpath.app"]
_HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

# Runs one server process until it stops and returns its exit code; calls the callback once serving.
WorkerMain = Callable[[Config, Callable[[], None]], int]

_log = structlog.get_logger(__name__)


@dataclass
class _Slot:
    """One of the N worker places: the process in it, or when a replacement is due."""

    index: int
    process: BaseProcess | None = None
    restart_at: float | None = None
    died: int | None = None  # the pid of the worker a pending replacement replaces


class WorkerSupervisor:
    """Runs ``config.workers`` processes of ``worker_main`` and keeps them running; see the module."""

    def __init__(self, config: Config, worker_main: WorkerMain) -> None:
        """Prepare the supervisor; :meth:`start`, then :meth:`run` it from the main thread."""
        self._config = config
        self._worker_main = worker_main
        self._fork = multiprocessing.get_context("fork")
        self._fork_server = multiprocessing.get_context("forkserver")
        self._fork_server.set_forkserver_preload(WORKER_MODULES)
        self._slots = [_Slot(index) for index in range(config.workers)]
        # Workers write their pid here once serving; the first one tells a failed start from a death.
        self._serving, self._serving_sender = self._fork.Pipe(duplex=False)
        self._served = False
        self._deaths: deque[float] = deque()
        self._stopping = False
        self._exit_code = 0
        # Signal handlers only set these and wake the loop; the loop acts on them.
        self._stop_signalled = False
        self._reload_signalled = False
        self._wake_reader, self._wake_writer = os.pipe()
        os.set_blocking(self._wake_writer, False)
        self._previous: dict[int, Any] = {}

    def start(self) -> None:
        """Start the workers, then take over SIGTERM, SIGINT and SIGHUP (from the main thread, before any thread)."""
        for slot in self._slots:
            # Forked before the handlers change: a worker starts with the default ones until it sets its own.
            self._start(slot, self._fork)
        self._previous = {signum: signal.signal(signum, self._on_signal) for signum in _HANDLED}
        _log.info(
            "workers_started",
            pids=[slot.process.pid for slot in self._slots if slot.process is not None],
            port=self._config.port,
        )

    def run(self) -> int:
        """Supervise the started workers until they have all stopped; return the exit code."""
        try:
            while any(slot.process is not None or slot.restart_at is not None for slot in self._slots):
                self._wait()
                self._act_on_signals()
                self._reap()
                self._restart_due()
        finally:
            for signum, old in self._previous.items():
                signal.signal(signum, old)
            for descriptor in (self._wake_reader, self._wake_writer):
                os.close(descriptor)
            self._serving.close()
            self._serving_sender.close()
        return self._exit_code

    # --- the loop ---------------------------------------------------------------

    def _wait(self) -> None:
        """Sleep until a worker exits, a worker reports serving, a signal arrives or a restart is due."""
        due = [slot.restart_at for slot in self._slots if slot.restart_at is not None]
        timeout = max(0.0, min(due) - time.monotonic()) if due else None
        sentinels = [slot.process.sentinel for slot in self._slots if slot.process is not None]
        ready = multiprocessing.connection.wait([*sentinels, self._serving, self._wake_reader], timeout)
        if self._wake_reader in ready:
            os.read(self._wake_reader, 512)
        while self._serving.poll():
            self._serving.recv_bytes()
            self._served = True

    def _act_on_signals(self) -> None:
        if self._stop_signalled and not self._stopping:
            self._stop_all()
        if self._reload_signalled:
            self._reload_signalled = False
            self._signal_workers(signal.SIGHUP)

    def _reap(self) -> None:
        for slot in self._slots:
            process = slot.process
            if process is None or process.is_alive():
                continue
            process.join()
            slot.process = None
            self._on_exit(slot, process.pid, process.exitcode or 0)

    def _on_exit(self, slot: _Slot, pid: int | None, code: int) -> None:
        if self._stopping:
            return
        if code == 0:
            # Only a SIGTERM or SIGINT sent to the worker itself ends it cleanly: someone meant it.
            _log.warning("worker_stopped", slot=slot.index, worker_pid=pid, replaced=False)
            return
        cause = {"exit_code": code} if code > 0 else {"signal": signal.Signals(-code).name}
        if not self._served:
            # Nothing has served yet: the configuration or the environment is wrong, and a retry would meet it again.
            _log.error("worker_failed", slot=slot.index, worker_pid=pid, **cause)
            self._exit_code = code if code > 0 else EXIT_FAILED
            self._stop_all()
            return
        now = time.monotonic()
        self._deaths.append(now)
        while self._deaths[0] < now - CRASH_LOOP_SECONDS:
            self._deaths.popleft()
        if len(self._deaths) > CRASH_LOOP_DEATHS:
            _log.error(
                "workers_crash_loop",
                deaths=len(self._deaths),
                within_seconds=CRASH_LOOP_SECONDS,
                hint="see the worker_died lines and the last lines each worker logged; fix the cause and restart",
            )
            self._exit_code = EXIT_FAILED
            self._stop_all()
            return
        delay = min(RESTART_DELAY_SECONDS * 2 ** (len(self._deaths) - 1), MAX_RESTART_DELAY_SECONDS)
        slot.restart_at, slot.died = now + delay, pid
        _log.error(
            "worker_died", slot=slot.index, worker_pid=pid, **cause,
            recent_deaths=len(self._deaths), restart_in_seconds=round(delay, 3),
        )

    def _restart_due(self) -> None:
        now = time.monotonic()
        for slot in self._slots:
            if slot.restart_at is None or self._stopping or slot.restart_at > now:
                continue
            slot.restart_at = None
            self._start(slot, self._fork_server)
            pid = slot.process.pid if slot.process is not None else None
            _log.info("worker_replaced", slot=slot.index, worker_pid=pid, replaces=slot.died)

    # --- acting on workers ----------------------------------------------------------

    def _start(self, slot: _Slot, context: ForkContext | ForkServerContext) -> None:
        if self._stopping:
            return
        process = context.Process(
            target=_run_worker,
            args=(self._worker_main, self._config, self._serving_sender),
            name=f"fairpath-worker-{slot.index}",
        )
        process.start()
        slot.process = process

    def _stop_all(self) -> None:
        self._stopping = True
        for slot in self._slots:
            slot.restart_at = None
        self._signal_workers(signal.SIGTERM)

    def _signal_workers(self, signum: signal.Signals) -> None:
        for slot in self._slots:
            process = slot.process
            if process is not None and process.pid is not None and process.is_alive():
                os.kill(process.pid, signum)

    def _on_signal(self, signum: int, _: FrameType | None) -> None:
        # Runs between two statements of the loop: record and wake it; the loop does the work.
        _log.info("signal_received", signal=signal.Signals(signum).name)
        if signum == signal.SIGHUP:
            self._reload_signalled = True
        else:
            self._stop_signalled = True
        # A full pipe holds earlier wake-ups: the loop wakes anyway.
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_writer, b"\0")


def _run_worker(worker_main: WorkerMain, config: Config, serving: Connection) -> None:
    """A worker process's entry point: run ``worker_main`` and exit with its code."""

    def report_serving() -> None:
        serving.send_bytes(str(os.getpid()).encode())
        serving.close()

    supervisor = multiprocessing.parent_process()
    if supervisor is not None:
        threading.Thread(
            target=_stop_without, args=(supervisor.sentinel,), name="fairpath-supervisor-watch", daemon=True
        ).start()
    raise SystemExit(worker_main(config, report_serving))


def _stop_without(supervisor_sentinel: int) -> None:
    """Stop this worker as SIGTERM would once the supervisor is gone (killed, say), rather than live on orphaned."""
    # The sentinel is a pipe the supervisor holds open for its worker's whole life.
    multiprocessing.connection.wait([supervisor_sentinel])
    _log.warning("supervisor_gone")
    os.kill(os.getpid(), signal.SIGTERM)
