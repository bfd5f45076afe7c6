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
    __slots__ = ("done", "error", "item", "result")

    def __init__(self, item: _In) -> None:
        self.item = item
        self.done = False
        self.result: _Out | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[_In, _Out]):
    """Calls ``write`` with batches of submitted items; :meth:`submit` returns once its item is written.

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
        self._pending: list[_Slot[_In, _Out]] = []
        self._writing = False
        self._expected = 0  # threads inside expecting() that have not submitted yet
        self._changed = threading.Condition()

    @contextmanager
    def expecting(self) -> Iterator[None]:
        """Announce a :meth:`submit` to come (or not: leaving the block without one is fine)."""
        with self._changed:
            self._expected += 1
        try:
            yield
        finally:
            with self._changed:
                self._expected -= 1
                self._changed.notify_all()

    def submit(self, item: _In) -> _Out:
        """Write ``item`` (with whatever else is queued) and return its result."""
        slot: _Slot[_In, _Out] = _Slot(item)
        with self._changed:
            self._pending.append(slot)
            self._changed.notify_all()  # a lingering leader may be waiting for this one
        while True:
            with self._changed:
                while self._writing and not slot.done:
                    self._changed.wait()
                if slot.done:
                    return self._outcome(slot)
                # Nobody is writing and this item is still queued: lead the next batch.
                self._writing = True
                self._gather()
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
            self._lead(batch)

    def _gather(self) -> None:
        """Wait (lock held, released while waiting) up to ``linger`` for announced submitters."""
        deadline = time.monotonic() + self._linger
        while self._on_their_way() and len(self._pending) < self._max_batch:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._changed.wait(remaining)

    def _on_their_way(self) -> int:
        # Every pending item's thread is still inside expecting(); the rest have yet to submit.
        return self._expected - len(self._pending)

    def _lead(self, batch: list[_Slot[_In, _Out]]) -> None:
        try:
            results = self._write([slot.item for slot in batch])
            for slot, result in zip(batch, results, strict=True):
                slot.result = result
        except BaseException as error:  # handed to every waiting thread, which re-raises it
            for slot in batch:
                slot.error = error
        finally:
            with self._changed:
                for slot in batch:
                    slot.done = True
                self._writing = False
                self._changed.notify_all()

    @staticmethod
    def _outcome(slot: _Slot[_In, _Out]) -> _Out:
        if slot.error is not None:
            raise slot.error
        return cast(_Out, slot.result)  # set whenever error is not
