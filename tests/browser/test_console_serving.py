"""How ``fairpath serve`` runs the console: once with several workers, open without an auth config, over TLS."""

from __future__ import annotations

from pathlib import Path

from fairpath.api.auth import hash_token
from playwright.sync_api import Browser

from tests.browser.conftest import USERS, axe_violations
from tests.conftest import POLICIES
from tests.support.certs import make_pki
from tests.support.servers import ServerProcess, free_port


def test_an_open_service_runs_one_open_console_for_all_workers(
    browser: Browser, tmp_path: Path
) -> None:
    """With --workers 2 and no auth config: one console (from the supervisor) that says it is open on every page."""
    port = free_port()
    args = ("--workers", "2", "--console-port", str(port), "--store", f"sqlite:///{tmp_path / 'd.sqlite3'}",
            "--watch-seconds", "0", "--log-level", "info")
    with ServerProcess(POLICIES, *args, cwd=tmp_path) as server:
        # Two workers compile every policy side by side: on a busy two-core box that takes a while.
        server.wait_until(lambda: len(server.events("serving")) == 2, "both workers serving", timeout=120)
        server.wait_until(lambda: bool(server.events("console_serving")), "the console serving")
        context = browser.new_context(base_url=f"http://127.0.0.1:{port}")
        try:
            page = context.new_page()
            for path in ("/policies", "/decisions", "/fairness", "/policies/nhs-just-culture-guide/1.0.0"):
                page.goto(path)
                assert "Open console" in page.inner_text("#open-console"), path
                assert page.locator("button:has-text('Sign in')").count() == 0
            assert axe_violations(page) == []
        finally:
            context.close()
        serving = server.events("serving")
        assert len(serving) == 2  # two workers
        consoles = server.events("console_serving")
        assert len(consoles) == 1
        assert consoles[0]["pid"] not in {event["pid"] for event in serving}  # the supervisor's
        assert server.stop() == 0


def test_a_tls_service_gets_an_https_console_with_secure_cookies(browser: Browser, tmp_path: Path) -> None:
    """With --tls-cert the console speaks TLS to the service and serves HTTPS; its session cookie is Secure."""
    pki = make_pki(tmp_path, ())
    auth = tmp_path / "auth.yaml"
    token, roles = USERS["auditor"]
    auth.write_text(f"tokens:\n  auditor:\n    sha256: {hash_token(token)}\n    roles: {roles}\n", encoding="utf-8")
    port = free_port()
    args = ("--tls-cert", str(pki.server.cert), "--tls-key", str(pki.server.key), "--console-ca", str(pki.ca.cert),
            "--auth-config", str(auth), "--console-port", str(port),
            "--store", f"sqlite:///{tmp_path / 'd.sqlite3'}", "--watch-seconds", "0")
    with ServerProcess(POLICIES, *args, cwd=tmp_path) as server:
        server.wait_until(lambda: bool(server.events("serving")), "the service serving", timeout=120)
        server.wait_until(lambda: bool(server.events("console_serving")), "the console serving")
        context = browser.new_context(base_url=f"https://127.0.0.1:{port}", ignore_https_errors=True)
        try:
            page = context.new_page()
            page.goto("/sign-in?next=/decisions")
            page.fill("#token", token)
            page.click("button:has-text('Sign in')")
            assert "Chain verified" in page.inner_text("#chain-state")  # a DecisionService call over TLS
            cookie = next(c for c in context.cookies() if c["name"] == "fairpath_console")
            assert cookie["secure"] is True
        finally:
            context.close()
        assert server.stop() == 0

