"""Logging: structlog and stdlib records come out as one stream of JSON lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from fairpath import logs


@pytest.fixture(name="lines")
def _lines() -> Iterator[Any]:
    stream = io.StringIO()
    root_level = logging.getLogger().level
    handler = logs.configure("info", "json", stream=stream, cache=False)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logging.getLogger().removeHandler(handler)
    logging.getLogger().setLevel(root_level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def test_structlog_events_are_json_lines_with_context(lines: Any) -> None:
    """An event carries its fields, the bound context, level, logger, UTC timestamp and pid."""
    structlog.contextvars.bind_contextvars(request_id="r-1")
    structlog.get_logger("fairpath.test").info("rpc", code="OK")
    (line,) = lines()
    assert line["event"] == "rpc"
    assert (line["code"], line["request_id"], line["level"]) == ("OK", "r-1", "info")
    assert line["logger"] == "fairpath.test"
    assert line["timestamp"].endswith("Z")
    assert isinstance(line["pid"], int)


def test_stdlib_records_join_the_same_stream(lines: Any) -> None:
    """Grpc's and durable_rules' stdlib loggers are rendered as JSON by the same handler."""
    logging.getLogger("grpc._server").warning("grpc says %s", "hello")
    logging.getLogger("durable").error("engine says hi")
    assert [(line["logger"], line["event"], line["level"]) for line in lines()] == [
        ("grpc._server", "grpc says hello", "warning"),
        ("durable", "engine says hi", "error"),
    ]


def test_levels_below_the_configured_one_are_dropped(lines: Any) -> None:
    """At level info, debug events from either side are not written."""
    structlog.get_logger("fairpath.test").debug("noise")
    logging.getLogger("grpc").debug("noise")
    assert lines() == []


def test_exceptions_are_rendered_as_text(lines: Any) -> None:
    """A logged exception becomes an `exception` string field, keeping the line valid JSON."""
    try:
        raise ValueError("boom")
    except ValueError:
        structlog.get_logger("fairpath.test").exception("failed")
    (line,) = lines()
    assert "ValueError: boom" in line["exception"]


def test_a_facts_field_is_redacted(lines: Any) -> None:
    """Even if code tries to log facts, their values never reach the output."""
    structlog.get_logger("fairpath.test").info("oops", facts={"intent_to_harm": "YES"})
    (line,) = lines()
    assert line["facts"] == "<redacted>"


def test_fields_are_capped_so_a_line_stays_short(lines: Any) -> None:
    """A 3 MB value, a 10,000-item list or a long stdlib message never makes a long line."""
    structlog.get_logger("fairpath.test").info(
        "rpc", policy="p" * 3_000_000, ids=list(range(10_000)), nested={"k": "v" * 5_000}
    )
    logging.getLogger("grpc._server").error("Exception calling application: %s", "x" * 3_000_000)
    policy_line, grpc_line = lines()
    assert policy_line["policy"] == "p" * logs.MAX_FIELD + "… (3000000 characters)"
    assert policy_line["ids"][-1] == f"and {10_000 - logs.MAX_ITEMS} more"
    assert len(policy_line["ids"]) == logs.MAX_ITEMS + 1
    assert len(policy_line["nested"]["k"]) < logs.MAX_FIELD + 30
    assert len(grpc_line["event"]) < logs.MAX_FIELD + 30


def test_a_traceback_quoting_a_huge_value_is_capped(lines: Any) -> None:
    """An exception whose message holds a 3 MB value is rendered, cut to MAX_TRACEBACK characters."""
    try:
        raise ValueError("v" * 3_000_000)
    except ValueError:
        structlog.get_logger("fairpath.test").exception("failed")
    (line,) = lines()
    assert line["exception"].startswith("Traceback")
    assert len(line["exception"]) < logs.MAX_TRACEBACK + 30


def test_the_console_format_never_prints_local_variables() -> None:
    """A traceback in the console format is plain and capped: no frame's locals (facts) are printed."""
    stream = io.StringIO()
    root_level = logging.getLogger().level
    handler = logs.configure("info", "console", stream=stream, cache=False)
    try:
        secret_facts = {"substance_abuse_indicated": "YES-distinctive-value"}
        try:
            raise ValueError("boom " + "v" * 3_000_000)
        except ValueError:
            structlog.get_logger("fairpath.test").exception("failed", pathway="X")
        assert secret_facts
        text = stream.getvalue()
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(root_level)
        structlog.reset_defaults()
    assert "ValueError: boom" in text
    assert "YES-distinctive-value" not in text
    assert len(text) < logs.MAX_TRACEBACK + 1_000


class _Terminal(io.StringIO):
    """A stream that says it is a terminal, as a console's stdout does."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("stream", "is_json"), [(_Terminal(), False), (io.StringIO(), True)])
def test_auto_is_the_console_format_on_a_terminal_and_json_otherwise(stream: io.StringIO, is_json: bool) -> None:
    """``--log-format auto`` (the default): people at a terminal get structlog's console lines, a pipe gets JSON."""
    root_level = logging.getLogger().level
    handler = logs.configure("info", "auto", stream=stream, cache=False)
    try:
        structlog.get_logger("fairpath.test").info("policy_loaded", version="p@1.0.0")
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(root_level)
        structlog.reset_defaults()
    [line] = stream.getvalue().splitlines()
    if is_json:
        assert json.loads(line)["event"] == "policy_loaded"
    else:
        assert "policy_loaded" in line
        assert "version" in line
        assert not line.startswith("{")
