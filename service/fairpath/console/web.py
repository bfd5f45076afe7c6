"""What every console page is built on.

The settings, the per-request ``Console``, rendering with the navigation and security headers,
role checks (:func:`requires`) and form reading.

The page modules (``pages_*.py``) import this; :mod:`fairpath.console.app` imports the pages and
assembles the application, so no page imports the application.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import grpc
import jinja2
import structlog
from fairpath_client import (
    DecisionNotFoundError,
    FairpathClient,
    FairpathClientError,
    PermissionDeniedError,
    PolicyNotFoundError,
    UnauthenticatedError,
)
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from fairpath.api.auth import AuthPolicy
from fairpath.console.sessions import Session, SessionStore

_log = structlog.get_logger(__name__)
CONSOLE_DIR = Path(__file__).parent
_T = TypeVar("_T")

#: The Content-Security-Policy of every response: nothing inline, nothing from elsewhere, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


@dataclass(frozen=True)
class ConsoleSettings:
    """What the console needs: the service's gRPC channel and how users sign in.

    Attributes:
        channel: A channel to the gRPC service (plaintext or TLS); each request adds the user's token.
        auth: The service's auth config; None means the service is open and so is the console.
        secure_cookies: Mark cookies ``Secure`` (the console itself is served over TLS).
        timeout: Deadline of each RPC, in seconds.
        policies_dir: The service's policy directory, for the diff page ("" turns that page off).

    """

    channel: grpc.Channel
    auth: AuthPolicy | None = None
    secure_cookies: bool = False
    timeout: float = 30.0  # ValidatePolicy may take its full 30 s
    policies_dir: str = ""


class PageError(Exception):
    """A page cannot be shown: rendered as an error page with ``status`` and ``message``."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


class Console:
    """The state every page shares: settings, sessions and templates."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        self.sessions = SessionStore()
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(CONSOLE_DIR / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.templates.filters["urlpart"] = lambda value: quote(str(value), safe="")

    @property
    def open(self) -> bool:
        """Whether the console runs without sign-in (the service has no auth config)."""
        return self.settings.auth is None

    def client(self, session: Session) -> FairpathClient:
        """A client calling with ``session``'s token (the shared channel stays open)."""
        return FairpathClient(
            channel=self.settings.channel, token=session.token, timeout=self.settings.timeout
        )

    async def call(self, session: Session, rpc: Callable[[FairpathClient], _T]) -> _T:
        """Run ``rpc`` with the user's credentials off the event loop; API refusals become error pages."""

        def run() -> _T:
            return rpc(self.client(session))

        try:
            return await run_in_threadpool(run)
        except PermissionDeniedError:
            raise PageError(403, "Not allowed", "Your role does not allow this.") from None
        except UnauthenticatedError:
            raise PageError(401, "Signed out", "The service no longer accepts your token: sign in again.") from None
        except DecisionNotFoundError:
            raise PageError(404, "Decision not found", "No decision with that id is recorded.") from None
        except PolicyNotFoundError:
            raise PageError(404, "Policy not found", "That policy version is not loaded.") from None

    def render(
        self, request: Request, template: str, context: Mapping[str, Any], *, status: int = 200
    ) -> HTMLResponse:
        """Render ``template`` within the layout for the request's session."""
        session: Session | None = request.state.session
        page = self.templates.get_template(template).render(
            **context,
            session=session,
            console_open=self.open,
            path=request.url.path,
            nav=_navigation(session, request.url.path),
        )
        return HTMLResponse(page, status_code=status)


Handler = Callable[[Request], Awaitable[Response]]


def requires(role: str | None) -> Callable[[Callable[[Console, Request, Session], Awaitable[Response]]], Handler]:
    """Wrap a page: find the session (or send to sign-in), check ``role``, render errors as pages."""

    def wrap(page: Callable[[Console, Request, Session], Awaitable[Response]]) -> Handler:
        async def endpoint(request: Request) -> Response:
            console: Console = request.app.state.console
            session: Session | None = request.state.session
            if session is None:
                wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/sign-in?next={quote(local_path(wanted), safe='/')}", 303)
            try:
                if role is not None and not session.may(role):
                    raise PageError(403, "Not allowed", f"This page needs the {role} role, which you do not hold.")
                if request.method == "POST":
                    form = await request.form()
                    if not session.csrf_ok(form.get("csrf_token")):
                        raise PageError(403, "Form expired", "The form was missing its security token: "
                                        "reload the page and try again.")
                    request.state.form = form
                return await page(console, request, session)
            except PageError as error:
                return console.render(request, "error.html", {"title": error.title, "message": error.message},
                                      status=error.status)
            except FairpathClientError as error:
                # Never a traceback: the API's own words, which never echo fact values.
                _log.warning("console_call_failed", error=type(error).__name__, path=request.url.path)
                return console.render(request, "error.html", {
                    "title": "The service refused", "message": str(error),
                }, status=502)

        return endpoint

    return wrap


def form_of(request: Request) -> FormData:
    """The form a POST page was given (read and CSRF-checked by :func:`requires`)."""
    form: FormData = request.state.form
    return form


def local_path(path: str) -> str:
    """``path`` if it is a path on this site (no scheme, host or ``//``), else ``/``: no open redirects."""
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or not path.startswith("/") or path.startswith("//"):
        return "/"
    return path


_NAV = (
    ("/decisions", "Decisions", "auditor"),
    ("/policies", "Policies", None),
    ("/replay", "Replay", "auditor"),
    ("/fairness", "Fairness", "auditor"),
    ("/policies/validate", "Validate a policy", "author"),
)


def _navigation(session: Session | None, path: str) -> list[dict[str, Any]]:
    if session is None:
        return []
    current = max((href for href, _, _ in _NAV if path.startswith(href)), key=len, default="")
    return [
        {"href": href, "text": text, "current": href == current}
        for href, text, role in _NAV
        if role is None or session.may(role)
    ]


# --- sign-in -------------------------------------------------------------------------
