"""The hash chain that makes the decision trail tamper-evident.

Decisions and outcomes share ONE chain, numbered by ``sequence`` (1, 2, 3 …
with no gaps) in the order they were appended. Each record's hash is

    sha256( N(layout) N(sequence) N(previous_hash) N(kind) N(column value) … )

where ``N(x)`` is ``x`` as a netstring (``<length of its bytes>:<bytes>,``,
text as UTF-8, integers in decimal), ``kind`` is ``"decision"`` or ``"outcome"``,
``layout`` says which columns follow: the stored columns named in
:data:`DECISION_LINKS` (by the decision's record format, 1 or 2: see
:mod:`fairpath.audit.codec`) or :data:`OUTCOME_COLUMNS` (layout 1), in that
order (only text, bytes and integers, so they read back from SQLite and
PostgreSQL byte for byte), and ``previous_hash`` is the
hash of record ``sequence - 1`` (:data:`GENESIS` for the first). Netstrings
frame the fields unambiguously without escaping the large JSON columns again. Because the stored columns
themselves are hashed, editing any of them (a status, a pathway, a fact, the
trace) breaks that record's link; deleting or inserting a record breaks the
sequence; recomputing the hashes after an edit breaks the next record's
``previous_hash`` unless the whole tail is rewritten, and a one-row
``chain_head`` (last sequence and hash) catches a removed tail.

Trace entries live in their own table, content-addressed
(:mod:`fairpath.audit.codec`): the document lists their digests, so an entry
changed or deleted after the fact breaks the first record that refers to it.

The equality group and the true values of sensitive facts live in their own
tables, outside the hashed columns; the decision carries a *commitment* to
each, ``sha256(salt || value)`` with a random salt stored beside the value, so
verify detects an edited value while the commitment reveals nothing about it
(a plain hash of "YES" or "G1" would be guessed at once). Such a side row may be
deleted (e.g. a retention purge) without breaking the chain.

A hash chain kept in the database it protects proves the trail was not edited
*afterwards by someone who did not rewrite every later hash*; publishing the
head hash elsewhere from time to time (a ticket, a signed email) anchors it
against an administrator who rewrites the tail too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fairpath.audit.records import ChainReport

#: The layout of an outcome's link and of a format-1 decision's, hashed into the link so that no layout
#: can be confused with another (a format-2 decision's layout is 2).
LINK_FORMAT = 1
#: The ``previous_hash`` of record 1.
GENESIS = "0" * 64
DECISION = "decision"
OUTCOME = "outcome"

#: The hashed columns of a decision row, in link order.
DECISION_COLUMNS = (
    "decision_id", "request_id", "caller", "evaluated_us", "policy", "version", "digest", "status",
    "pathway", "individual_directed", "incident_ref", "staff_ref", "action_ref", "duration_us", "fired",
    "masked_facts", "facts", "document", "equality_commitment", "sensitive_commitment",
)
#: The hashed columns of a decision row of record format 2, in link order: its record and trace digests
#: instead of the JSON document.
DECISION_COLUMNS_2 = (*DECISION_COLUMNS[:DECISION_COLUMNS.index("document")], "record", "trace",
                      "equality_commitment", "sensitive_commitment")
#: A decision's hashed columns by its record format, which is the layout of its link.
DECISION_LINKS = {1: DECISION_COLUMNS, 2: DECISION_COLUMNS_2}
#: The hashed columns of an outcome row, in link order.
OUTCOME_COLUMNS = ("decision_id", "action_taken", "reviewer", "reason", "recorded_us", "departs")


def link_hash(
    sequence: int, previous_hash: str, kind: str, values: Sequence[str | int | bytes], layout: int = LINK_FORMAT
) -> str:
    """Return the hex sha256 of one record's link (see the module docstring)."""
    # Verify computes this a million times: text is framed as text and encoded once per run of text
    # (an ASCII string's length in characters is its length in bytes; isascii() costs nothing).
    parts: list[bytes] = []
    text: list[str] = []
    for value in (layout, sequence, previous_hash, kind, *values):
        if isinstance(value, bytes):
            parts += ["".join(text).encode("utf-8"), b"%d:%s," % (len(value), value)]
            text = []
            continue
        string = value if isinstance(value, str) else str(value)
        size = len(string) if string.isascii() else len(string.encode("utf-8"))
        text.append(f"{size}:{string},")
    parts.append("".join(text).encode("utf-8"))
    return hashlib.sha256(b"".join(parts)).hexdigest()


def new_salt() -> str:
    """Return a fresh random salt for a commitment, hex encoded."""
    return secrets.token_hex(16)


def commitment(salt: str, value: str) -> str:
    """Return ``sha256(salt || value)`` in hex: binds a side-table value without revealing it."""
    return hashlib.sha256(bytes.fromhex(salt) + value.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SideValue:
    """A value kept outside the hashed columns and the commitment the record holds to it."""

    what: str
    committed: str
    salt: str
    value: str


@dataclass(frozen=True)
class Link:
    """One stored record as the verifier needs it."""

    sequence: int
    kind: str
    previous_hash: str
    hash: str
    values: tuple[str | int | bytes, ...]
    side: tuple[SideValue, ...] = ()
    #: A problem found outside the row (e.g. a trace entry it refers to is missing), "" if none.
    problem: str = ""
    #: Which columns ``values`` are (:data:`DECISION_LINKS`), hashed into the link.
    layout: int = LINK_FORMAT


@dataclass(frozen=True)
class Walked:
    """How far a walk over part of the chain got (see :func:`walk`).

    Attributes:
        checked: Links walked, the broken one included.
        next_sequence: The sequence the next link must have.
        last_hash: The hash the next link must name as its ``previous_hash``.
        first_sequence: The sequence of the first link walked (0 when none was walked).
        first_previous: The ``previous_hash`` the first link walked names ("" when none was walked):
            a walk started in the middle checks it against the part before, once that is walked.
        broken: The first link that does not check out, or None.

    """

    checked: int
    next_sequence: int
    last_hash: str
    first_sequence: int = 0
    first_previous: str = ""
    broken: ChainReport | None = None


def walk(links: Iterable[Link], start: int = 1, previous: str | None = GENESIS) -> Walked:
    """Walk ``links`` in sequence order from ``start``; stop at the first that does not check out.

    ``previous`` is the hash the first link must name; None takes whatever it names (a walk of the
    chain's second part, whose first link the caller checks against the first part).
    """
    expected, checked, first = start, 0, None
    last = previous or ""
    for link in links:
        if first is None:
            first = link
        checked += 1
        problem = _problem(link, expected, link.previous_hash if previous is None and link is first else last)
        if problem:
            # A missing record is the first broken link, so report the sequence that was expected.
            report = ChainReport(False, checked, expected, problem)
            return Walked(checked, expected, last, first.sequence, first.previous_hash, report)
        expected, last = link.sequence + 1, link.hash
    if first is None:
        return Walked(0, expected, last)
    return Walked(checked, expected, last, first.sequence, first.previous_hash)


def verify(links: Iterable[Link], head_sequence: int, head_hash: str) -> ChainReport:
    """Walk ``links`` in sequence order and report the first one that does not check out.

    Args:
        links: Every record of both kinds, ordered by sequence.
        head_sequence: The chain head's last sequence (0 for an empty trail).
        head_hash: The chain head's last hash (:data:`GENESIS` for an empty trail).

    """
    walked = walk(links)
    return walked.broken or close(walked, head_sequence, head_hash)


def join(first: Walked, second: Walked) -> Walked:
    """Return the walk of two parts of the chain, ``second`` walked from where ``first`` was to end."""
    if first.broken is not None or not second.checked:
        return first
    # The link across the parts, checked as a walk of the whole would check it: its sequence first
    # (a missing record: the second walk reported it), then the hash it names, then its own hash.
    if second.first_sequence == first.next_sequence and second.first_previous != first.last_hash:
        report = ChainReport(False, first.checked + 1, first.next_sequence, _unlinked(first.next_sequence))
        return dataclasses.replace(first, checked=first.checked + 1, broken=report)
    broken = second.broken
    if broken is not None:
        broken = dataclasses.replace(broken, records_checked=first.checked + broken.records_checked)
    return Walked(first.checked + second.checked, second.next_sequence, second.last_hash, first.first_sequence,
                  first.first_previous, broken)


def close(walked: Walked, head_sequence: int, head_hash: str) -> ChainReport:
    """Return the report of a whole walk that found nothing broken, checking the chain head against it."""
    checked, last, previous = walked.checked, walked.next_sequence - 1, walked.last_hash
    if head_sequence != last:
        return ChainReport(
            False, checked, last + 1,
            f"the chain head records {head_sequence} record(s) but {last} were found: records are missing",
        )
    if head_hash != previous:
        return ChainReport(False, checked, last, f"the chain head hash does not match record {last}")
    return ChainReport(True, checked)


def _problem(link: Link, expected: int, previous: str) -> str:
    if link.sequence != expected:
        return f"record {expected} is missing (the next record found is {link.sequence})"
    if link.previous_hash != previous:
        return _unlinked(link.sequence)
    if link_hash(link.sequence, link.previous_hash, link.kind, link.values, link.layout) != link.hash:
        return f"{link.kind} record {link.sequence} was changed after it was written: its hash does not match"
    for side in link.side:
        if not _commits(side):
            return f"the {side.what} of record {link.sequence} does not match the commitment in the record"
    if link.problem:
        return f"record {link.sequence}: {link.problem}"
    return ""


def _unlinked(sequence: int) -> str:
    return f"record {sequence} does not link to record {sequence - 1}: previous_hash differs"


def _commits(side: SideValue) -> bool:
    """Return whether ``side``'s value and salt match its commitment; a salt that is not hex does not."""
    try:
        return commitment(side.salt, side.value) == side.committed
    except ValueError:  # the salt was edited in the database (it sits outside the hashed columns)
        return False
