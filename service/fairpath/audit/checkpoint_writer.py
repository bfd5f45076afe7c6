"""The server's own periodic checkpoints: sign the chain head every N minutes, log it, append it to a file.

A checkpoint only anchors the trail once it is somewhere the database
administrator cannot reach, so each one goes to the log (``event=checkpoint``,
the signed line in ``checkpoint``) and, with ``--checkpoint-file``, onto the end
of a file; operators ship either off the database host. A head that has not
moved is signed again: a fresh signature says the trail was still there, with
nothing removed, at that time. One more checkpoint is written on stop, so the
last head before a shutdown is anchored too.

Before each checkpoint the writer also checks that the trail still holds the
record of its previous one with the same hash; if not (the tail was cut off, or
the trail rewritten, since), it logs ``checkpoint_contradicted`` at error level
and signs nothing. Signing what it found would anchor the altered trail: a
verify given only the newer checkpoints would call it intact. So the check is
repeated, and the alarm logged again, every interval (and on stop) until the
trail holds that checkpoint again (restored from a backup); :attr:`CheckpointWriter.contradicted`
says so meanwhile. What the writer last signed is kept in memory only: after a
restart it signs the trail as it finds it, so an operator who restarts the
service must first have kept the alarm and the checkpoint file it refers to.

With several workers the supervisor runs the one writer (:func:`fairpath.app.serve`).
A failed checkpoint (store unreachable, file not writable) is logged and the next
one tried on schedule: checkpoints never stop the service.
"""

from __future__ import annotations

import threading

import structlog

from fairpath.audit.checkpoint import Checkpoint, CheckpointSigner, append_line, contradiction
from fairpath.audit.store import DecisionStore, open_store
from fairpath.config import Config
from fairpath.errors import StoreError

_log = structlog.get_logger(__name__)


class CheckpointWriter:
    """Writes a signed checkpoint of ``store`` every ``every_seconds`` on a thread of its own.

    Args:
        store: The trail to checkpoint.
        signer: Signs each checkpoint.
        every_seconds: Interval between checkpoints (> 0).
        path: File to append each checkpoint line to; "" logs them only.
        owns_store: Close ``store`` on :meth:`stop` (it was opened for the writer alone).

    """

    def __init__(
        self,
        store: DecisionStore,
        signer: CheckpointSigner,
        every_seconds: float,
        path: str = "",
        *,
        owns_store: bool = False,
    ) -> None:
        self._store = store
        self._signer = signer
        self._every = every_seconds
        self._path = path
        self._owns_store = owns_store
        self._last: Checkpoint | None = None
        self._contradicted = ""
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fairpath-checkpoints", daemon=True)

    def start(self) -> None:
        """Start writing on schedule."""
        _log.info("checkpoints_started", every_seconds=self._every, key_id=self._signer.key_id,
                  file=self._path or None)
        self._thread.start()

    def stop(self) -> None:
        """Stop the schedule, write a last checkpoint, and close the store if the writer opened it."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        self.write()
        if self._owns_store:
            self._store.close()

    @property
    def contradicted(self) -> str:
        """How the trail contradicts the last checkpoint written, found at the last attempt ("" if not)."""
        return self._contradicted

    def write(self) -> bool:
        """Sign the head now, log it and append it to the file; return whether it was written everywhere.

        Nothing is signed while the trail contradicts the previous checkpoint (an error is logged instead).
        """
        try:
            sequence, head = self._store.chain_head()
            self._contradicted = self._contradiction(sequence)
        except StoreError as error:
            _log.error("checkpoint_failed", error=str(error))
            return False
        if self._contradicted:
            return False
        signed = self._last = self._signer.sign(sequence, head)
        # The line holds sequences and hashes only, never a fact: safe to log in full.
        _log.info("checkpoint", sequence=signed.sequence, key_id=signed.key_id, checkpoint=signed.to_line())
        if not self._path:
            return True
        try:
            append_line(self._path, signed)
        except OSError as error:
            _log.error("checkpoint_file_failed", file=self._path, error=error.strerror or str(error))
            return False
        return True

    def _contradiction(self, sequence: int) -> str:
        """Return how a trail ending at ``sequence`` contradicts the previous checkpoint ("" if not), logged."""
        previous = self._last
        if previous is None:
            return ""
        found = self._store.chain_hashes([previous.sequence]) if 0 < previous.sequence <= sequence else {}
        problem = contradiction(previous, sequence, found)
        if problem:
            # The signed line lets whoever answers the alarm verify with the very checkpoint contradicted.
            _log.error("checkpoint_contradicted", sequence=previous.sequence, problem=problem,
                       checkpoint=previous.to_line())
        return problem

    def _run(self) -> None:
        while not self._stopping.wait(self._every):
            self.write()


def writer_for(config: Config, store: DecisionStore | None = None) -> CheckpointWriter | None:
    """Return the (unstarted) writer ``config`` asks for, or None when periodic checkpoints are off.

    Args:
        config: ``checkpoint_every``, ``checkpoint_key``, ``checkpoint_file`` and ``store``.
        store: The server's open store; None opens one of the writer's own (the supervisor's case).

    Raises:
        CredentialsError: The checkpoint key cannot be used.
        StoreError: The writer's own store cannot be opened.

    """
    if not config.checkpoint_every:
        return None
    signer = CheckpointSigner.load(config.checkpoint_key)
    owns = store is None
    return CheckpointWriter(
        store if store is not None else open_store(config.store), signer, config.checkpoint_every * 60,
        config.checkpoint_file, owns_store=owns,
    )
