"""Run one piece of work in a child process, bounded in time and memory.

``ValidatePolicy`` compiles, lints and tests text sent by a caller. In the
server's own process that work would hold the GIL for as long as it runs
(durable_rules' C code never releases it, and YAML parsing is pure Python), so
every ``Evaluate`` arriving meanwhile would wait its turn, and a draft that
needs gigabytes would take them from the server. Here the work runs in a fresh
child process instead:

* the child comes from :mod:`multiprocessing`'s fork server, a clean process
  started once (on first use) with the validation modules imported, so a child
  costs a ``fork`` and not an interpreter start-up, and inherits none of the
  server's threads or gRPC state;
* its address space is capped (``RLIMIT_AS``), so an allocation past the cap
  fails inside the child (``MemoryError``) and never touches the server;
* the parent waits at most the time allowed, then kills the child; the child
  also has a CPU-time cap, in case the parent is gone;
* only bytes cross the pipe: the work takes a serialized request and returns a
  serialized answer.

Measured on the 2-core reference machine (``tests/benchmarks/bench_validate.py``):
the fork server starts in about a second, once; after that, a child adds about
80 ms to a validation.
"""

from __future__ import annotations

import math
import multiprocessing
import resource
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Literal

#: The address space a child may use. A validation of the largest shipped policy peaks near 70 MiB.
MEMORY_BYTES = 512 * 1024 * 1024

Work = Callable[[bytes], bytes]
Outcome = Literal["done", "timeout", "memory", "died"]

_context = multiprocessing.get_context("forkserver")


@dataclass(frozen=True)
class Isolated:
    """What became of a piece of work run by :func:`run_isolated`.

    Attributes:
        outcome: ``done`` (``answer`` holds the result), ``timeout`` (killed when its time ran out),
            ``memory`` (it needed more than its memory cap) or ``died`` (the child ended without an answer).
        answer: The work's return value when ``done``, else empty.
        exit_code: The child's exit code (negative: the signal that ended it); None if it never ended by itself.

    """

    outcome: Outcome
    answer: bytes = b""
    exit_code: int | None = None


def run_isolated(
    work: Work, payload: bytes, seconds: float, memory_bytes: int = MEMORY_BYTES, preload: tuple[str, ...] = ()
) -> Isolated:
    """Run ``work(payload)`` in a child process for at most ``seconds``, within ``memory_bytes``.

    ``work`` must be a module-level function (the child finds it by name). ``preload`` names the
    modules the fork server imports when this process first starts it, so children start warm.
    """
    if preload:
        _context.set_forkserver_preload(list(preload))  # read only when the fork server starts
    receiver, sender = _context.Pipe(duplex=False)
    child = _context.Process(
        target=_child, args=(sender, work, payload, memory_bytes, seconds), name="fairpath-isolated", daemon=True
    )
    try:
        child.start()
    finally:
        sender.close()  # the child holds the only sending end: EOF means it ended without answering
    try:
        return _collect(receiver, child, seconds)
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()


def _collect(receiver: Connection, child: multiprocessing.process.BaseProcess, seconds: float) -> Isolated:
    if not receiver.poll(max(0.0, seconds)):
        return Isolated("timeout")
    try:
        outcome, answer = receiver.recv()
    except EOFError:
        child.join()
        return Isolated("died", exit_code=child.exitcode)
    return Isolated(outcome, answer)


def _child(sender: Connection, work: Work, payload: bytes, memory_bytes: int, seconds: float) -> None:
    """The child's whole life: cap itself, do the work, send the outcome."""
    _cap(resource.RLIMIT_AS, memory_bytes)
    _cap(resource.RLIMIT_CPU, math.ceil(seconds) + 1)  # a backstop: the parent kills it sooner, unless gone
    try:
        result: tuple[Outcome, bytes] = ("done", work(payload))
    except MemoryError:
        result = ("memory", b"")
    sender.send(result)
    sender.close()


def _cap(limit: int, value: int) -> None:
    """Lower ``limit`` to ``value`` (never above a hard limit already set, e.g. by the container)."""
    _, hard = resource.getrlimit(limit)
    value = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(limit, (value, value))
