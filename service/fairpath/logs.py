"""Logging: one stream of JSON lines on stdout, from structlog and stdlib loggers alike.

fairpath's own code logs through structlog; grpcio and durable_rules log through
the standard library. Both end in one :class:`logging.StreamHandler` whose
:class:`structlog.stdlib.ProcessorFormatter` renders every record with the same
processors, so a log shipper sees one format, and request context bound with
:func:`structlog.contextvars.bind_contextvars` appears on grpc's lines too.

Facts are never logged: they are clinical and HR data. Log ids, counts and
outcomes instead; as a last line of defence a ``facts`` key in any event is
replaced by ``"<redacted>"`` before rendering.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED_KEYS = frozenset({"facts"})


def configure(
    level: str = "info", fmt: str = "json", *, stream: TextIO | None = None, cache: bool = True
) -> logging.Handler:
    """Route structlog and stdlib logging to one handler on ``stream``.

    Safe to call again (the previous fairpath handler is replaced); leaves other
    handlers on the root logger, such as pytest's, alone.

    Args:
        level: Lowest level written, e.g. ``"info"``.
        fmt: ``"json"`` for one JSON object per line, ``"console"`` for people.
        stream: Where lines go; standard output by default.
        cache: Cache bound loggers on first use (fast); tests pass ``False`` so
            :func:`structlog.testing.capture_logs` still sees every logger.

    Returns:
        The handler installed on the root logger.

    """
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_pid,
        _redact,
    ]
    renderer: list[Processor]
    if fmt == "console":
        renderer = [structlog.dev.ConsoleRenderer(colors=(stream or sys.stdout).isatty())]
    else:
        renderer = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]

    handler = _Handler(stream or sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric_level)

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Filters below the level before any processor runs: debug calls cost almost nothing.
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        cache_logger_on_first_use=cache,
    )
    return handler


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure` installs, marked by its class so a second call can replace it."""


def _add_pid(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # With --workers N several processes share stdout; the pid tells their lines apart.
    event_dict.setdefault("pid", os.getpid())
    return event_dict


def _redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key in REDACTED_KEYS.intersection(event_dict):
        event_dict[key] = "<redacted>"
    return event_dict
