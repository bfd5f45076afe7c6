"""Group commit: appends from many threads share one transaction, each thread still waiting for its own.

Writing a record costs little; committing it (taking the chain lock, a
round trip to PostgreSQL, syncing the log) costs most. When several RPC
threads record at once, the first to arrive becomes the *leader*: it takes
every append queued so far, writes them in one transaction and wakes the
others, whose records are then committed too. A thread alone writes its own
record straight away, with no hand-off to another thread. No thread returns
before its record is committed, so "no decision without its record" holds
exactly as it would one transaction per decision.

Batches stay small when threads arrive one after another (they are mostly
evaluating, and Python runs one at a time), so a leader that knows others are
on their way (:meth:`GroupCommit.expecting`) waits up to ``linger`` for them,
like PostgreSQL's ``commit_delay``, which only applies when at least
``commit_siblings`` other transactions are active.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Generic, TypeVar, cast

_In = TypeVar("_In")
_Out = TypeVar("_Out")


class _Slot(Generic[_In, _Out]):
    """One submitted item; its thread sleeps on ``wake`` until it is written or its turn to lead comes."""

    __slots__ = ("done", "error", "item", "result", "wake")

    def __init__(self, item: _In) -> None:
        self.item = item
        self.done = False
        self.result: _Out | None = None
        self.error: BaseException | None = None
        self.wake = threading.Event()


class GroupCommit(Generic[_In, _Out]):
    """Calls ``write`` with batches of submitted items; :meth:`submit` returns once its item is written.

    Each waiting thread sleeps on its own event, so finishing a batch wakes exactly the threads
    it wrote and the one that leads next, never all of them (every wake-up costs the GIL).

    Args:
        write: Writes a batch in one transaction and returns one result per item, in order;
            whatever it raises is raised in every thread whose item was in the batch.
        max_batch: Largest batch handed to ``write``.
        linger: Longest a leader waits, in seconds, for submitters still on their way.

    """

    def __init__(
        self, write: Callable[[Sequence[_In]], Sequence[_Out]], *, max_batch: int = 256, linger: float = 0.0
    ) -> None:
        self._write = write
        self._max_batch = max_batch
        self._linger = linger
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # a lingering leader waits on this
        self._pending: list[_Slot[_In, _Out]] = []
        self._writing = False
        self._announced = 0  # threads inside expecting() that have not submitted yet
        self._local = threading.local()

    @contextmanager
    def expecting(self) -> Iterator[None]:
        """Announce a :meth:`submit` to come (or not: leaving the block without one is fine)."""
        with self._lock:
            self._announced += 1
        self._local.announced = True
        try:
            yield
        finally:
            if getattr(self._local, "announced", False):  # left without submitting
                self._local.announced = False
                with self._lock:
                    self._announced -= 1
                    self._arrived.notify()

    def submit(self, item: _In) -> _Out:
        """Write ``item`` (with whatever else is queued) and return its result."""
        slot: _Slot[_In, _Out] = _Slot(item)
        with self._lock:
            self._pending.append(slot)
            if getattr(self._local, "announced", False):
                self._local.announced = False
                self._announced -= 1
            self._arrived.notify()  # a lingering leader may be waiting for this one
        while True:
            with self._lock:
                if slot.done:
                    return self._outcome(slot)
                lead = not self._writing
                if lead:
                    # Nobody is writing and this item is still queued: lead the next batch.
                    self._writing = True
                    self._gather()
                    batch = self._pending[: self._max_batch]
                    del self._pending[: self._max_batch]
                else:
                    slot.wake.clear()
            if lead:
                self._lead(batch)
            else:
                slot.wake.wait()

    def _gather(self) -> None:
        """Wait (lock held, released while waiting) up to ``linger`` for announced submitters."""
        deadline = time.monotonic() + self._linger
        while self._announced > 0 and len(self._pending) < self._max_batch:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._arrived.wait(remaining)

    def _lead(self, batch: list[_Slot[_In, _Out]]) -> None:
        try:
            results = self._write([slot.item for slot in batch])
            for slot, result in zip(batch, results, strict=True):
                slot.result = result
        except BaseException as error:  # handed to every waiting thread, which re-raises it
            for slot in batch:
                slot.error = error
        finally:
            with self._lock:
                for slot in batch:
                    slot.done = True
                self._writing = False
                # The oldest waiting item's thread leads next (if it finds someone else already
                # leading, it just sleeps again).
                woken = [*batch, *self._pending[:1]]
            for slot in woken:
                slot.wake.set()

    @staticmethod
    def _outcome(slot: _Slot[_In, _Out]) -> _Out:
        if slot.error is not None:
            raise slot.error
        return cast(_Out, slot.result)  # set whenever error is not
