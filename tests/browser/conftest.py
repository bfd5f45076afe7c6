"""A real ``fairpath serve`` with its review console, and a real Chromium driven by Playwright.

Debian's Chromium (``apt-get install chromium``) is launched by path: Playwright's own
browser download cannot work here. Without it the browser tests skip with the reason,
except under ``CI=true``, where a missing browser is a failure (``.ci/run`` installs it).

One server and one browser per module keep the tier fast; each test gets its own browser
context (cookies), so sign-in state never leaks between tests.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fairpath.api.auth import hash_token
from fairpath_client import FairpathClient

from tests.conftest import POLICIES
from tests.support.servers import ServerProcess, free_port
from tests.support.waiting import wait_until

CHROMIUM = Path(os.environ.get("FAIRPATH_CHROMIUM", "/usr/bin/chromium"))
AXE = Path(__file__).parent / "assets" / "axe.min.js"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"

#: Token name -> (token, roles) of the console's users.
USERS = {
    "auditor": ("console-auditor-5e1f", ["auditor"]),
    "evaluator": ("console-evaluator-77aa", ["evaluator"]),
    "author": ("console-author-09c3", ["author"]),
    "everyone": ("console-everyone-d41b", ["auditor", "evaluator", "author"]),
}

try:
    from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None  # type: ignore[assignment]


def _require_browser() -> None:
    problem = ""
    if sync_playwright is None:
        problem = "playwright is not installed (pip install -e '.[test]')"
    elif not CHROMIUM.exists() and not shutil.which("chromium"):
        problem = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests must run under CI: {problem}")
        pytest.skip(problem)


@dataclass
class Console:
    """The served console: its URL, the gRPC target behind it and the server process (its log)."""

    url: str
    target: str
    server: ServerProcess

    def client(self, user: str) -> FairpathClient:
        """A gRPC client with ``user``'s token, to compare pages with what the API says."""
        return FairpathClient(self.target, token=USERS[user][0], timeout=60)  # a loaded CI box is slow

    def console_log(self) -> list[dict[str, Any]]:
        """The JSON log lines written by the console (its own loggers and uvicorn's)."""
        found = []
        for line in list(self.server.lines):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if str(event.get("logger", "")).startswith(("fairpath.console", "uvicorn")):
                found.append(event)
        return found


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """``fairpath serve`` over the real policies, with an auth config and the console on a free port."""
    _require_browser()
    home = tmp_path_factory.mktemp("console")
    auth = home / "auth.yaml"
    auth.write_text(json.dumps({"tokens": {
        name: {"sha256": hash_token(token), "roles": roles} for name, (token, roles) in USERS.items()
    }}), encoding="utf-8")
    port = free_port()
    args = ("--console-port", str(port), "--auth-config", str(auth), "--store",
            f"sqlite:///{home / 'decisions.sqlite3'}", "--watch-seconds", "0")
    with ServerProcess(POLICIES, *args, cwd=home) as server:
        server.wait_until(lambda: bool(server.events("serving")), "the service serving", timeout=120)
        server.wait_until(lambda: bool(server.events("console_serving")), "the console serving")
        yield Console(f"http://127.0.0.1:{port}", server.target, server)
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module."""
    _require_browser()
    assert sync_playwright is not None
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser, console: Console) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) with the console as its base URL."""
    fresh = browser.new_context(base_url=console.url, viewport={"width": 1200, "height": 900})
    yield fresh
    fresh.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A tab in the fresh profile that fails the test on any console error (a CSP refusal included)."""
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.errors = errors  # type: ignore[attr-defined]
    return tab


def sign_in(page: Page, user: str, next_path: str = "/") -> None:
    """Sign in through the form as ``user`` and wait for the page it leads to."""
    page.goto(f"/sign-in?next={quote(next_path, safe='/')}")
    page.fill("#token", USERS[user][0])
    page.click("button:has-text('Sign in')")
    page.wait_for_load_state()
    assert "Signed in as" in page.inner_text("header"), page.content()


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Run axe-core (vendored, MPL-2.0) in the page against WCAG 2.2 A and AA; return its violations."""
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
    result = page.evaluate(
        "async () => (await axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}})).violations"
        ".map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    assert isinstance(result, list)
    return result


def screenshot(page: Page, name: str) -> None:
    """Save the page for the README (docs/console/NAME.png), when FAIRPATH_SCREENSHOTS=1."""
    if os.environ.get("FAIRPATH_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def wait_for(predicate: Any, message: str) -> None:
    """Poll ``predicate`` for up to 10 s (for what the live form updates)."""
    wait_until(predicate, 10, message)
