"""The command line's output: help for every option, tables and colour following the terminal, no progress in pipes."""

from __future__ import annotations

import argparse
import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest
from fairpath.cli import build_parser
from fairpath_client import _term

from tests.conftest import POLICIES, ROOT

_RST = re.compile(r"``|:(class|func|mod|data|meth|attr):")


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("fairpath",)) -> Iterator[
    tuple[tuple[str, ...], argparse.ArgumentParser]
]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def test_every_option_of_every_command_has_help_and_no_help_shows_markup() -> None:
    """Each option and argument of each command says what it is for, and --help shows no reStructuredText."""
    missing, markup = [], []
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if not isinstance(action, argparse._SubParsersAction) and action.help is None:
                missing.append(f"{' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
        if _RST.search(parser.format_help()):
            markup.append(" ".join(path))
    assert missing == []
    assert markup == []
    assert len(list(_parsers(build_parser()))) > 25  # the walk reached the subcommands


def _on_a_terminal(*args: str, columns: int, env: dict[str, str] | None = None) -> str:
    """Run ``fairpath ARGS`` with stdout on a pseudo-terminal ``columns`` wide; return what it printed."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "TERM")}
    process = subprocess.Popen([sys.executable, "-m", "fairpath", *args], stdout=follower, stderr=subprocess.DEVNULL,
                               cwd=ROOT, env={**environment, "TERM": "xterm", **(env or {})})
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(60) == 0
    return b"".join(chunks).decode("utf-8").replace("\r\n", "\n")


def test_on_a_terminal_tables_use_its_width_and_bold_headings() -> None:
    """A 200-column terminal gets each title on one line and a bold header; NO_COLOR gives plain text."""
    wide = _on_a_terminal("policies", "--policies", str(POLICIES), columns=200)
    assert "\x1b[1m" in wide
    plain = _on_a_terminal("policies", "--policies", str(POLICIES), columns=200, env={"NO_COLOR": "1"})
    assert "\x1b[" not in plain
    assert any(line.rstrip().endswith("Marx just culture model - human error, at-risk and reckless behaviour (2001)")
               for line in plain.splitlines())
    assert max(len(line) for line in plain.splitlines()) > 100


def test_a_narrow_terminal_wraps_text_but_never_an_identifier() -> None:
    """At 80 columns titles wrap between words; names, versions and digest prefixes stay whole on their lines."""
    text = _on_a_terminal("policies", "--policies", str(POLICIES), columns=80, env={"NO_COLOR": "1"})
    rows = [line.split() for line in text.splitlines() if line.startswith("nhs-just-culture-guide ")]
    assert [row[1] for row in rows] == ["1.0.0", "1.0.1", "1.1.0"]
    assert all(any(re.fullmatch(r"[0-9a-f]{12}", word) for word in row) for row in rows)
    assert sum(1 for line in text.splitlines() if line.startswith(" ")) > len(rows)  # the titles wrapped


def test_no_progress_bar_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """`working` draws nothing, and advancing it is harmless, when stderr is a pipe or a file."""
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    with _term.working("Exporting decisions", total=3) as work:
        work.advance()
        work.total(5)
    assert stderr.getvalue() == ""


def test_piped_output_is_plain_and_100_columns(tmp_path: Path) -> None:
    """In a pipe: no escape codes, and no line of a table wider than 100 columns."""
    done = subprocess.run([sys.executable, "-m", "fairpath", "policies", "show", "nhs-just-culture-guide",
                           "--policies", str(POLICIES)], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stdout
    assert max(len(line) for line in done.stdout.splitlines()) <= 100
