"""Logging: one stream of JSON lines on stdout, from structlog and stdlib loggers alike.

fairpath's own code logs through structlog; grpcio and durable_rules log through
the standard library. Both are rendered by the same processors and written to one
:class:`logging.StreamHandler`'s stream under its lock, so a log shipper sees one format,
and request context bound with :func:`structlog.contextvars.bind_contextvars` appears on
grpc's lines too. Stdlib records reach the handler's :class:`structlog.stdlib.ProcessorFormatter`;
structlog's own events skip the stdlib round trip (a ``LogRecord``, caller lookup, a copy of the
record for the formatter): that was two thirds of an access-log line (issue 14: ~100 → ~35 µs).

Facts are never logged: they are clinical and HR data. Log ids, counts and
outcomes instead; as a last line of defence a ``facts`` key in any event is
replaced by ``"<redacted>"`` before rendering.

No field of a line is longer than :data:`MAX_FIELD` characters (a traceback
:data:`MAX_TRACEBACK`), nor lists more than :data:`MAX_ITEMS` items: whatever a
caller sends, a log line stays a line (:func:`fairpath.echo.clipped` says how
long the value was).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from fairpath.echo import clipped, more

REDACTED_KEYS = frozenset({"facts"})
#: Longest text of one log field (ids, names and error messages are far shorter), in characters.
MAX_FIELD = 1000
#: Longest rendered traceback, in characters.
MAX_TRACEBACK = 16_000
#: Most items of a list or mapping field shown; the rest are counted ("and 52 more").
MAX_ITEMS = 100


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def configure(
    level: str = "info", fmt: str = "json", *, stream: TextIO | None = None, cache: bool = True
) -> logging.Handler:
    """Route structlog and stdlib logging to one handler on ``stream``.

    Safe to call again (the previous fairpath handler is replaced); leaves other
    handlers on the root logger, such as pytest's, alone: they still see stdlib records (grpcio,
    durable_rules), but structlog's own events go straight to this handler's stream, not through
    the root logger (that round trip was two thirds of an access-log line).

    Args:
        level: Lowest level written, e.g. ``"info"``.
        fmt: ``"json"`` for one JSON object per line, ``"console"`` for people, ``"auto"`` for
            console when ``stream`` is a terminal and JSON otherwise.
        stream: Where lines go; standard output by default.
        cache: Cache bound loggers on first use (fast); tests pass ``False`` so
            :func:`structlog.testing.capture_logs` still sees every logger.

    Returns:
        The handler installed on the root logger.

    """
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    if fmt == "auto":
        # People at a terminal read the console format; a pipe, a file or a log shipper gets JSON.
        fmt = "console" if _is_terminal(stream or sys.stdout) else "json"
    stamped: list[Processor] = [structlog.processors.TimeStamper(fmt="iso", utc=True), _add_pid, _redact, _cap]
    common: list[Processor] = [structlog.contextvars.merge_contextvars, structlog.processors.add_log_level]
    shared: list[Processor] = [*common, structlog.stdlib.add_logger_name, *stamped]
    renderer: list[Processor]
    if fmt == "console":
        # Tracebacks are formatted as plain, capped text first: structlog's default console
        # formatter is rich's, which prints every frame's local variables - facts included.
        console = structlog.dev.ConsoleRenderer(
            colors=(stream or sys.stdout).isatty(), exception_formatter=structlog.dev.plain_traceback
        )
        renderer = [structlog.processors.format_exc_info, _cap_traceback, console]
    else:
        renderer = [structlog.processors.format_exc_info, _cap_traceback, structlog.processors.JSONRenderer()]

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
        processors=[*common, _add_logger_name, *stamped, *renderer],
        logger_factory=lambda *args: _LineLogger(str(args[0]) if args else ""),
        # Filters below the level before any processor runs: debug calls cost almost nothing.
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        cache_logger_on_first_use=cache,
    )
    return handler


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure` installs, marked by its class so a second call can replace it."""


class _LineLogger:
    """Where structlog's events end: the rendered line goes to the handler's stream under the handler's lock.

    The same lock as stdlib records take, so lines of both never interleave. The handler is the one
    installed on the root logger when the line is written (as a stdlib record would find it), so a
    logger cached on first use writes where a later :func:`configure` points (in the format and at
    the level it was first used with: ``fairpath serve`` configures once per process); with none
    installed, the line is dropped.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def msg(self, message: str) -> None:
        """Write one line."""
        handler = next((h for h in logging.getLogger().handlers if isinstance(h, _Handler)), None)
        if handler is None:
            return
        handler.acquire()
        try:
            handler.stream.write(message + handler.terminator)
            handler.flush()
        except (OSError, ValueError):
            # As logging.Handler.handleError does when it cannot write: the call being logged goes on.
            pass
        finally:
            handler.release()

    debug = info = warning = warn = error = critical = exception = fatal = msg


def _add_logger_name(logger: WrappedLogger, _: str, event_dict: EventDict) -> EventDict:
    # structlog.get_logger(__name__) passes the name to the factory, which keeps it on the logger.
    event_dict["logger"] = getattr(logger, "name", "")
    return event_dict


def _add_pid(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # With --workers N several processes share stdout; the pid tells their lines apart.
    event_dict.setdefault("pid", os.getpid())
    return event_dict


def _redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key in REDACTED_KEYS.intersection(event_dict):
        event_dict[key] = "<redacted>"
    return event_dict


def _cap(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # Any field may hold something a caller sent (grpc's own lines quote errors): cap them all.
    for key, value in event_dict.items():
        if isinstance(value, str):
            # The common case, tested inline: every access-log line has a dozen short text fields.
            if len(value) > MAX_FIELD:
                event_dict[key] = clipped(value, MAX_FIELD)
        elif isinstance(value, list | tuple | dict):
            event_dict[key] = _capped(value)
    return event_dict


def _capped(value: object) -> object:
    if isinstance(value, str):
        return clipped(value, MAX_FIELD)
    if isinstance(value, list | tuple):
        kept = [_capped(item) for item in value[:MAX_ITEMS]]
        return kept if len(value) <= MAX_ITEMS else [*kept, more(len(value) - MAX_ITEMS)]
    if isinstance(value, dict):
        items = list(value.items())
        capped = {str(key)[:MAX_FIELD]: _capped(item) for key, item in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            capped["…"] = more(len(items) - MAX_ITEMS)
        return capped
    return value


def _cap_traceback(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # format_exc_info runs after _cap; its traceback may quote the exception's (caller-supplied) message.
    exception = event_dict.get("exception")
    if isinstance(exception, str):
        event_dict["exception"] = clipped(exception, MAX_TRACEBACK)
    return event_dict
