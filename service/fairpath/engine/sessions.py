"""A bounded pool of durable_rules session ids that can never share state.

durable_rules finds a session by the 32-bit FNV-1a hash of its id and never
compares the ids themselves, so two live ids with the same hash silently share
one session (``req-991307`` and ``req-1971740`` do). It also holds at most 1,024
live sessions per ruleset, and session 1,025 corrupts the ruleset. This pool
hands out ids whose hashes are pairwise distinct, never more than ``size`` at
once, so neither trap can be reached; a caller that finds none free in time
gets :class:`~fairpath.errors.EngineBusyError` (back-pressure, not a queue
without bound).
"""

from __future__ import annotations

import threading
from collections import deque

from fairpath.errors import EngineBusyError

# durable_rules' own limit (MAX_STATE_INDEX_LENGTH in rete.h).
DURABLE_MAX_LIVE_SESSIONS = 1024


def fnv1a_32(text: str) -> int:
    """The hash durable_rules uses to find a session (FNV-1a, 32 bits, over UTF-8)."""
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


class SessionPool:
    """Session ids with distinct hashes; at most ``size`` in use at a time."""

    def __init__(self, size: int = 256) -> None:
        if not 0 < size < DURABLE_MAX_LIVE_SESSIONS:
            raise ValueError(f"pool size must be between 1 and {DURABLE_MAX_LIVE_SESSIONS - 1}")
        self._lock = threading.Condition()
        self._hashes: set[int] = {fnv1a_32("0")}  # "0" is where id-less messages land: never hand it out
        self._counter = 0
        self._free: deque[str] = deque(self._fresh() for _ in range(size))
        self.size = size

    def _fresh(self) -> str:
        while True:
            self._counter += 1
            candidate = f"fp-{self._counter}"
            digest = fnv1a_32(candidate)
            if digest not in self._hashes:
                self._hashes.add(digest)
                return candidate

    def acquire(self, timeout: float) -> str:
        """Take a free id, waiting up to ``timeout`` seconds."""
        with self._lock:
            if not self._lock.wait_for(lambda: bool(self._free), timeout=timeout):
                raise EngineBusyError(f"all {self.size} engine sessions are busy")
            return self._free.popleft()

    def release(self, sid: str) -> None:
        """Return an id whose session state has been deleted."""
        with self._lock:
            self._free.append(sid)
            self._lock.notify()

    def quarantine(self, sid: str) -> None:
        """Retire an id whose state could not be deleted, and replace it with a fresh one.

        The retired id's hash stays reserved, so no later id can land in its
        leftover session.
        """
        with self._lock:
            self._free.append(self._fresh())
            self._lock.notify()

    @property
    def in_use(self) -> int:
        """How many ids are out."""
        with self._lock:
            return self.size - len(self._free)
