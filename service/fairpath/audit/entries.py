"""The ``trace_entries`` table seen from one process: what is stored, and decoded entries by digest.

Trace entries are immutable and content-addressed (:func:`fairpath.audit.codec.entry_digest`),
so both caches here can only ever be stale in the safe direction: a digest
not yet known to be stored is offered to the database again (``ON CONFLICT DO
NOTHING``), and a decoded entry is the same whoever reads it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence

from fairpath.audit import queries
from fairpath.audit.codec import decode_entry
from fairpath.audit.sessions import Session
from fairpath.decisions import TraceEntry
from fairpath.errors import CorruptRecordError
from fairpath.wire import trace_entry_from_body

_LIMIT = 100_000  # digests remembered as stored before starting afresh
# Decoded entries remembered before starting afresh: a decoded entry weighs a kilobyte or two, so this
# bounds what reading a trail whose entries rarely recur (free-text facts) can hold to tens of MiB.
_DECODED_LIMIT = 20_000


class TraceEntries:
    """Caches over the ``trace_entries`` table; safe to share between threads."""

    def __init__(self) -> None:
        self._stored: set[str] = set()
        self._decoded: dict[str, TraceEntry] = {}
        self._lock = threading.Lock()

    def unstored(self, entries: Mapping[str, str | bytes]) -> list[tuple[str, str | bytes]]:
        """Return the ``(digest, encoded entry)`` pairs of ``entries`` not known to be in the table yet."""
        return [(digest, encoded) for digest, encoded in entries.items() if digest not in self._stored]

    def mark_stored(self, digests: Iterable[str]) -> None:
        """Remember that ``digests`` are committed to the table."""
        with self._lock:
            if len(self._stored) >= _LIMIT:
                self._stored.clear()
            self._stored.update(digests)

    def resolve(self, session: Session, digests: Sequence[str]) -> dict[str, TraceEntry]:
        """Return the decoded entry of each digest, reading those not cached from the table.

        Raises:
            CorruptRecordError: A digest has no entry (the table was tampered with: verify says which record).

        """
        cached = self._decoded
        result = {digest: entry for digest in digests if (entry := cached.get(digest)) is not None}
        missing = list(dict.fromkeys(digest for digest in digests if digest not in result))
        if missing:
            found = {
                str(digest): decode_entry(str(text)) if body is None else trace_entry_from_body(_bytes(body))
                for digest, text, body in queries.trace_entries(session, missing)
            }
            if len(found) < len(missing):
                lost = sorted(set(missing) - set(found))
                raise CorruptRecordError(f"trace entries missing from the store: {', '.join(lost[:3])}")
            with self._lock:
                if len(self._decoded) >= _DECODED_LIMIT:
                    self._decoded = {}
                self._decoded.update(found)
            self.mark_stored(found)
            result.update(found)
        return result


def _bytes(body: object) -> bytes:
    """An entry's stored bytes; anything else was edited in (TypeError: the caller's reading() names it)."""
    if not isinstance(body, bytes | memoryview):
        raise TypeError("a trace entry's body is bytes")
    return bytes(body)
