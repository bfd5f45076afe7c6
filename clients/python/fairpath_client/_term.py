"""Tables, colour and progress for the command line, through ``rich``.

Output written for people fits the width it is read at: a terminal's own width,
or :data:`PIPED_WIDTH` columns when the output goes to a file or a pipe (where
nobody knows the reader's width, and 100 columns fit a review tool or an e-mail).
Colour only reaches a terminal, never a pipe or a file, and never when
``NO_COLOR`` is set (https://no-color.org). Text cells wrap between words only,
so an identifier (a decision id, a rule id, a fact name) is never broken across
lines: a column is never narrower than its longest word, and a table whose
identifiers alone are wider than the width is laid out wider rather than cut.
Progress bars go to standard error and only when it is a terminal, so nothing
they draw ends up in a redirected file.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

#: The width of text written to a pipe or a file.
PIPED_WIDTH = 100
#: Spaces between two table columns.
_GAP = 2
#: The narrowest a column of text (not identifiers) becomes when a table is too wide.
_TEXT_FLOOR = 12


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal (a closed or odd stream is not)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def output_width() -> int:
    """The width standard output is read at: the terminal's, else :data:`PIPED_WIDTH`."""
    if is_terminal(sys.stdout):
        return max(40, shutil.get_terminal_size((PIPED_WIDTH, 24)).columns)
    return PIPED_WIDTH


def colour() -> bool:
    """Whether standard output gets colour: a terminal, ``NO_COLOR`` unset and ``TERM`` not ``dumb``."""
    return is_terminal(sys.stdout) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def styled(text: str, style: str) -> str:
    """``text`` in a rich style (e.g. ``"bold red"``) when standard output gets colour, else ``text`` itself."""
    if not colour():
        return text
    return _render(Text(text, style=style), len(text) + 1).rstrip("\n")


def table(rows: Sequence[Sequence[str]], width: int | None = None) -> list[str]:
    """Lay out ``rows`` (the first is the header) as left-aligned columns two spaces apart.

    The table fits ``width`` (default :func:`output_width`) by wrapping text cells between words;
    a column of identifiers (no cell holds a space) never wraps. Lines carry no trailing blanks.
    The header is bold on a terminal.
    """
    header, body = rows[0], rows[1:]
    widths = _widths(rows, width or output_width())
    grid = Table(
        box=None, pad_edge=False, show_edge=False, padding=(0, _GAP // 2), header_style="bold" if colour() else "",
        show_header=True,
    )
    for index, title in enumerate(header):
        grid.add_column(Text(title), width=widths[index], no_wrap=_identifiers(rows, index), overflow="fold")
    for row in body:
        grid.add_row(*(Text(cell) for cell in row))
    text = _render(grid, sum(widths) + _GAP * (len(widths) - 1))
    return [line.rstrip() for line in text.splitlines()]


def _identifiers(rows: Sequence[Sequence[str]], index: int) -> bool:
    return not any(" " in row[index] for row in rows[1:])


def _widths(rows: Sequence[Sequence[str]], width: int) -> list[int]:
    """Column widths: identifiers at full width, text columns shrunk alike to fit ``width``, never below a floor.

    The floor is the longest word of the column (so no word is cut) or :data:`_TEXT_FLOOR`, whichever
    is larger, unless the column is narrower anyway. When identifiers and floors alone are wider
    than ``width``, the table is wider than ``width``: cutting an identifier would be worse.
    """
    count = len(rows[0])
    natural = [max(len(row[i]) for row in rows) for i in range(count)]
    text = [i for i in range(count) if not _identifiers(rows, i)]
    available = width - _GAP * (count - 1) - sum(natural[i] for i in range(count) if i not in text)
    if sum(natural[i] for i in text) <= available:
        return natural
    widths = list(natural)
    floors = {
        i: min(natural[i], max(_TEXT_FLOOR, *(len(word) for row in rows for word in row[i].split() or [""])))
        for i in text
    }
    spare = max(0, available - sum(floors.values()))
    excess = sum(natural[i] - floors[i] for i in text) or 1
    for i in text:
        widths[i] = floors[i] + (natural[i] - floors[i]) * spare // excess
    return widths


def _render(renderable: Table | Text, width: int) -> str:
    buffer = io.StringIO()
    painted = colour()
    console = Console(
        file=buffer, width=width, force_terminal=painted, color_system="standard" if painted else None,
        highlight=False, emoji=False, markup=False, legacy_windows=False, no_color=not painted,
    )
    console.print(renderable)
    return buffer.getvalue()


class Work:
    """A progress display for one long task; every method does nothing when standard error is not a terminal."""

    def __init__(self, progress: Progress | None, task: TaskID | None) -> None:
        self._progress = progress
        self._task = task

    def advance(self, steps: int = 1) -> None:
        """Count ``steps`` more items done."""
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, steps)

    def total(self, total: int) -> None:
        """Say how many items there are, once known."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=total)


@contextmanager
def working(description: str, total: int | None = None) -> Iterator[Work]:
    """Show a progress bar (a pulsing one while ``total`` is unknown) on standard error, if it is a terminal.

    The bar disappears when the work ends, so the terminal keeps only the command's output.
    """
    if not is_terminal(sys.stderr):
        yield Work(None, None)
        return
    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(file=sys.stderr), transient=True,
    )
    with progress:
        yield Work(progress, progress.add_task(description, total=total))
