"""Verify's second half of a long chain, walked in a child process on the other core.

Verifying is Python work per record (hashing the link, reading the record's indexed fields back,
checking its rule rows), so one process walks a million records in about 100 s on the reference
machine, whatever the database. From :data:`PARALLEL_FROM` records on,
:meth:`fairpath.audit.sql.SqlStore.verify_chain` walks the first half itself and has a child
process walk the second: each reads its own part of the chain, which is immutable below the
head it read, and :func:`fairpath.audit.chain.join` checks the link across the parts exactly as
one walk would. The child comes from :mod:`multiprocessing`'s fork server (a clean process that
inherits none of the server's threads or gRPC state), opens the store by its URL
(:func:`fairpath.audit.store.walk_part`, which :func:`~fairpath.audit.store.open_store` gives the
store as its :data:`Starter`), and sends back only what a report needs (:class:`HalfWalk`).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

from fairpath.audit.chain import Walked

#: Fewest records for which verify walks the chain on two cores (below it a child's start-up,
#: about a second, is not worth it).
PARALLEL_FROM = 200_000

_context = multiprocessing.get_context("forkserver")


@dataclass(frozen=True)
class HalfWalk:
    """What a walk of part of the chain found.

    Attributes:
        walked: How far it got, and the first link that did not check out.
        inconsistent: The earliest disagreement before that link (sequence -> problem), if any.

    """

    walked: Walked
    inconsistent: dict[int, str]


#: Starts walking records ``first`` to ``last`` elsewhere: ``(first, last, chunk) -> (pool, future)``.
Starter = Callable[[int, int, int], tuple[ProcessPoolExecutor, "Future[HalfWalk]"]]


def start(work: Callable[..., HalfWalk], *args: object) -> tuple[ProcessPoolExecutor, Future[HalfWalk]]:
    """Run ``work(*args)`` in a child process from the fork server; shut the pool down when done with it."""
    pool = ProcessPoolExecutor(max_workers=1, mp_context=_context)
    return pool, pool.submit(work, *args)
