"""Keep a command's exit code when whoever reads its output stops early (``fairpath policy test | head -1``).

Python ignores SIGPIPE, so a write to a closed pipe raises :class:`BrokenPipeError`
wherever the command happens to be. Letting it end the command would report
the pipe, not the command: a failing ``policy test`` cut short by ``head``
would say nothing about its failures, and end with whatever exit code the
handler chose. Instead, from the first broken write on, standard output goes
to ``/dev/null`` and the command runs to its end, so its exit code is the one it
would have had with a reader that read everything.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO


class _PipeSafeStdout:
    """Standard output that, once its reader has gone, discards what is written instead of raising."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        """Write ``text``; after the reader went away, discard it."""
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._discard()
            return len(text)

    def flush(self) -> None:
        """Flush; after the reader went away, drop what was buffered."""
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._discard()

    def __getattr__(self, name: str) -> Any:
        # Everything else (fileno, isatty, encoding, buffer…) is the real stream's.
        return getattr(self._stream, name)

    def _discard(self) -> None:
        """Point the descriptor at /dev/null, so buffered and later output is written nowhere, without error."""
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())
        finally:
            os.close(devnull)
        self._stream.flush()  # now succeeds: the buffer that failed goes to /dev/null


@contextmanager
def pipe_safe_stdout() -> Iterator[None]:
    """Within the block, writes to ``sys.stdout`` never raise :class:`BrokenPipeError`.

    On leaving, stdout is flushed (into /dev/null if the reader has gone), so the
    interpreter's own flush at exit cannot fail and turn the exit code into 120.
    """
    original = sys.stdout
    safe = _PipeSafeStdout(original)
    sys.stdout = safe  # duck-typed: every other attribute is the real stream's
    try:
        yield
    finally:
        safe.flush()
        sys.stdout = original
