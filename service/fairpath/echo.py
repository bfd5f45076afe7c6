"""What an error or a log line may repeat of a caller's input: a short prefix and its length.

A request field can be megabytes long. Echoed whole, it would make an error
status too large for gRPC's trailers (8 KiB by default: the caller then gets
``RESOURCE_EXHAUSTED`` instead of the real error, which clients read as "busy,
retry") and a log line megabytes long. Every error message, ``BadRequest``
detail and log field built from input goes through these helpers instead::

    >>> shown("a" * 3_000_000)
    "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…' (3000000 characters)"
    >>> clipped("x" * 100, 8)
    'xxxxxxxx… (100 characters)'
    >>> listed([f"fact_{n}" for n in range(60)], 3)
    ['fact_0', 'fact_1', 'fact_2', 'and 57 more']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

#: Characters of an echoed value shown before it is cut.
MAX_SHOWN = 32
#: Items of a list of problems shown before the rest are only counted.
MAX_LISTED = 10

_T = TypeVar("_T")


def shown(value: str, limit: int = MAX_SHOWN) -> str:
    """Return ``value`` quoted (``repr``, so control characters are escaped), cut to ``limit`` characters.

    A value that was cut ends in ``…`` inside the quotes and is followed by its full length.
    """
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit] + '…'!r} ({len(value)} characters)"


def prefix(text: str, limit: int = MAX_SHOWN) -> str:
    """Return ``text`` unquoted, cut to ``limit`` characters and marked ``…`` if it was longer (for field paths)."""
    return text if len(text) <= limit else text[:limit] + "…"


def clipped(text: str, limit: int) -> str:
    """Return free ``text`` (a message, a description) cut to ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def more(count: int) -> str:
    """Return the words counting what a list left out: ``and 52 more``."""
    return f"and {count} more"


def listed(items: Sequence[str], limit: int = MAX_LISTED) -> list[str]:
    """Return the first ``limit`` of ``items``, plus ``and N more`` when some were left out."""
    if len(items) <= limit:
        return list(items)
    return [*items[:limit], more(len(items) - limit)]


def first(items: Sequence[_T], limit: int = MAX_LISTED) -> tuple[list[_T], int]:
    """Return the first ``limit`` of ``items`` and how many were left out."""
    return list(items[:limit]), max(0, len(items) - limit)
