"""Suggest the name a caller probably meant: "did you mean `individual_concern_raised`?".

Used where a request names something that does not exist (a fact, a policy, a
code), so the error says how to fix it. The suggestion is always a declared
name, never the caller's input, so it cannot make an error echo more than
:mod:`fairpath.echo` allows.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

#: Input longer than this is not compared: no declared name is that long, and comparing costs
#: time proportional to the product of the lengths.
MAX_COMPARED = 64
#: How alike (difflib's ratio, 0..1) a declared name must be to be suggested: difflib's default.
CUTOFF = 0.6


def closest(given: str, known: Iterable[str]) -> str | None:
    """Return the declared name most like ``given``, or None when none is alike enough."""
    if len(given) > MAX_COMPARED:
        return None
    found = difflib.get_close_matches(given, list(known), n=1, cutoff=CUTOFF)
    return found[0] if found else None


def did_you_mean(given: str, known: Iterable[str]) -> str:
    """Return ``did you mean `NAME`?`` for the closest declared name, or "" when there is none."""
    name = closest(given, known)
    return f"did you mean `{name}`?" if name else ""
