"""Reload triggers that are not RPCs: SIGHUP, and polling the policy directory.

:class:`ReloadDaemon` runs reloads on its own thread, never in a signal
handler or an RPC thread. SIGHUP only sets an event (:meth:`ReloadDaemon.request`
is safe to call from a handler); every ``interval`` seconds the daemon takes a
cheap snapshot of the directory (path, modification time and size of every
policy file, its tests file and the lock file; no file contents, no new
dependency) and reloads when it differs from the last one. The files are found
as a reload finds them (:func:`~fairpath.policy.registry.policy_files`), and
``stat`` follows symlinks, so a Kubernetes ConfigMap update (an atomic swap of
its ``..data`` link) shows as changed files. An interval of 0 turns polling
off; SIGHUP still works. Whatever a reload raises is logged (``reload_failed``)
and the daemon keeps watching.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import structlog

from fairpath.policy.cases import cases_file
from fairpath.policy.lock import lock_path
from fairpath.policy.registry import policy_files
from fairpath.serving.reload import Reloader

Snapshot = frozenset[tuple[str, int, int]]

_log = structlog.get_logger(__name__)


def snapshot(root: str | Path) -> Snapshot:
    """Return (path, mtime in ns, size) of every file a reload reads under ``root``."""
    policies = policy_files(root) if Path(root).is_dir() else []
    entries = set()
    for path in (lock_path(root), *policies, *(cases_file(policy) for policy in policies)):
        try:
            stat = path.stat()
        except OSError:  # absent, or deleted between listing and stat: the next scan sees it
            continue
        entries.add((str(path), stat.st_mtime_ns, stat.st_size))
    return frozenset(entries)


class ReloadDaemon:
    """A thread that reloads on request (SIGHUP) and when the policy directory changes."""

    def __init__(self, reloader: Reloader, interval: float) -> None:
        self._reloader = reloader
        self._interval = interval
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="fairpath-reload", daemon=True)
        # Taken now: create the daemon before the start-up reload, so that a change made
        # while that reload runs is still seen as a change.
        self._seen = snapshot(reloader.policies_dir)

    def start(self) -> None:
        """Start watching (the start-up reload has already happened)."""
        self._thread.start()

    def request(self) -> None:
        """Ask for a reload as soon as possible (safe from a signal handler)."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread, letting a reload in progress finish."""
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            requested = self._wake.wait(self._interval or None)
            if self._stopping:
                return
            self._wake.clear()
            trigger = "signal" if requested else "watch"
            try:
                self._check(trigger)
            except Exception as error:
                # Reloader.reload reports a failed staging itself; whatever else escapes is a defect.
                # Letting it out would end this thread: no more polling, and SIGHUP silently ignored.
                # A reload reads policy files only, so the traceback holds no facts.
                _log.error("reload_failed", trigger=trigger, error_type=type(error).__name__, exc_info=error)

    def _check(self, trigger: str) -> None:
        # Snapshot before reloading, so a change made during the reload is seen next time. It is
        # kept even if the reload fails: the next change or SIGHUP retries, rather than every poll.
        current = snapshot(self._reloader.policies_dir)
        if trigger == "signal" or current != self._seen:
            self._seen = current
            self._reloader.reload(trigger)


@contextlib.contextmanager
def reload_on_sighup(on_signal: Callable[[], None]) -> Iterator[None]:
    """Call ``on_signal`` on SIGHUP while the block runs (main thread only), then restore the old handler."""

    def handler(signum: int, _: FrameType | None) -> None:
        _log.info("signal_received", signal=signal.Signals(signum).name)
        on_signal()

    previous = signal.signal(signal.SIGHUP, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)
