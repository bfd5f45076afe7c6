"""Group commit: appends from many threads share one transaction, each thread still waiting for its own.

Writing a record costs little; committing it (taking the chain lock, a
round trip to PostgreSQL, syncing the log) costs most. When several RPC
threads record at once, the first to arrive becomes the *leader*: it takes
every append queued so far, writes them in one transaction and wakes the
others, whose records are then committed too. A thread alone writes its own
record straight away, with no hand-off to another thread. No thread returns
before its record is committed, so "no decision without its record" holds
exactly as it would one transaction per decision.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
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

    """

    def __init__(self, write: Callable[[Sequence[_In]], Sequence[_Out]], *, max_batch: int = 256) -> None:
        self._write = write
        self._max_batch = max_batch
        self._pending: list[_Slot[_In, _Out]] = []
        self._writing = False
        self._changed = threading.Condition()

    def submit(self, item: _In) -> _Out:
        """Write ``item`` (with whatever else is queued) and return its result."""
        slot: _Slot[_In, _Out] = _Slot(item)
        with self._changed:
            self._pending.append(slot)
        while True:
            with self._changed:
                while self._writing and not slot.done:
                    self._changed.wait()
                if slot.done:
                    return self._outcome(slot)
                # Nobody is writing and this item is still queued: lead the next batch.
                self._writing = True
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
            self._lead(batch)

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
