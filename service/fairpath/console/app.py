"""The review console's web application: sign-in, security headers, page rendering, role checks.

The console is a client of the gRPC API. Each request runs the RPCs its page
needs through :class:`~fairpath_client.FairpathClient` with the signed-in
user's bearer token, so the service applies exactly the roles it applies to
any caller and records the user as the ``caller`` of what they do. The pages
themselves live in :mod:`fairpath.console.pages_decisions`,
:mod:`~fairpath.console.pages_policies` and :mod:`~fairpath.console.pages_analysis`.
"""

from __future__ import annotations

import secrets
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
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fairpath.api.auth import AuthPolicy
from fairpath.console.sessions import ALL_ROLES, COOKIE, MAX_SECONDS, PRESESSION_COOKIE, Session, SessionStore
from fairpath.errors import UnauthenticatedError as ServiceUnauthenticated

_log = structlog.get_logger(__name__)
_HERE = Path(__file__).parent
_T = TypeVar("_T")

#: The Content-Security-Policy of every response: nothing inline, nothing from elsewhere, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_SECURITY_HEADERS = (
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
            loader=jinja2.FileSystemLoader(_HERE / "templates"),
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
                return RedirectResponse(f"/sign-in?next={quote(_local(wanted), safe='/')}", 303)
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


def _local(path: str) -> str:
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


async def sign_in_page(request: Request) -> Response:
    """GET /sign-in: the token form (or, on an open console, straight on)."""
    console: Console = request.app.state.console
    if console.open or request.state.session is not None:
        return RedirectResponse(_local(request.query_params.get("next", "/")), 303)
    return _sign_in_form(console, request, error="", status=200)


def _sign_in_form(console: Console, request: Request, *, error: str, status: int) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = console.render(request, "sign_in.html", {
        "title": "Sign in", "error": error, "csrf_token": console.sessions.signin_token(nonce),
        "next": _local(request.query_params.get("next", "/")),
    }, status=status)
    _set_cookie(console, response, PRESESSION_COOKIE, nonce, max_age=15 * 60)
    return response


async def sign_in(request: Request) -> Response:
    """POST /sign-in: check the token against the auth config and start a session."""
    console: Console = request.app.state.console
    if console.settings.auth is None:
        return RedirectResponse("/", 303)
    form = await request.form()
    if not console.sessions.signin_token_ok(request.cookies.get(PRESESSION_COOKIE), form.get("csrf_token")):
        return console.render(request, "error.html", {
            "title": "Form expired", "message": "The sign-in form was missing its security token: try again.",
        }, status=403)
    token = str(form.get("token", "")).strip()
    try:
        caller = console.settings.auth.identify({"authorization": f"Bearer {token}"}, {}) if token else None
    except ServiceUnauthenticated:
        caller = None
    if caller is None:
        _log.info("console_sign_in_refused")
        return _sign_in_form(console, request, error="That token is not recognised.", status=401)
    session = console.sessions.create(token, caller.name, frozenset(str(role) for role in caller.roles))
    _log.info("console_signed_in", caller=caller.name)
    target = _local(str(form.get("next", "/")))
    response = RedirectResponse(target if target != "/sign-in" else "/", 303)
    _set_cookie(console, response, COOKIE, console.sessions.cookie_value(session), max_age=MAX_SECONDS)
    response.delete_cookie(PRESESSION_COOKIE, path="/")
    return response


@requires(None)
async def sign_out(console: Console, request: Request, session: Session) -> Response:
    """POST /sign-out: end the session and clear its cookie."""
    console.sessions.end(session)
    _log.info("console_signed_out", caller=session.caller)
    response = RedirectResponse("/sign-in" if not console.open else "/", 303)
    response.delete_cookie(COOKIE, path="/", secure=console.settings.secure_cookies, httponly=True,
                           samesite="strict")
    return response


@requires(None)
async def home(console: Console, request: Request, session: Session) -> Response:
    """GET /: the decision trail for auditors, the policies for everyone else."""
    return RedirectResponse("/decisions" if session.may("auditor") else "/policies", 303)


def _set_cookie(console: Console, response: Response, name: str, value: str, *, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", httponly=True, samesite="strict",
        secure=console.settings.secure_cookies,
    )


# --- middleware ----------------------------------------------------------------------


class _ConsoleMiddleware:
    """Finds the session of each request and adds the security headers to each response.

    Every response gets the CSP, ``frame-ancestors 'none'`` and friends; everything but the
    static files gets ``Cache-Control: no-store``, since pages show decisions and facts.
    """

    def __init__(self, app: ASGIApp, console: Console) -> None:
        self.app = app
        self.console = console

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        session = self.console.sessions.find(request.cookies.get(COOKIE))
        new_cookie = ""
        if session is None and self.console.open and not scope["path"].startswith("/static/"):
            # An open console still needs a session: it holds the CSRF token of the forms.
            session = self.console.sessions.create(None, "", ALL_ROLES)
            new_cookie = self.console.sessions.cookie_value(session)
        scope.setdefault("state", {})["session"] = session
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(_SECURITY_HEADERS)
                headers.append((b"cache-control", b"public, max-age=3600" if static else b"no-store"))
                if new_cookie:
                    secure = "; Secure" if self.console.settings.secure_cookies else ""
                    headers.append((b"set-cookie", (
                        f"{COOKIE}={new_cookie}; Max-Age={MAX_SECONDS}; Path=/; HttpOnly; SameSite=Strict{secure}"
                    ).encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def build_app(settings: ConsoleSettings) -> Starlette:
    """The console as an ASGI application."""
    # Imported here: the page modules import this one for `requires` and `Console`.
    from fairpath.console import (  # noqa: PLC0415
        pages_analysis,
        pages_authoring,
        pages_decisions,
        pages_diff,
        pages_policies,
    )


    console = Console(settings)
    routes: list[BaseRoute] = [
        Route("/", home),
        Route("/sign-in", sign_in_page, methods=["GET"]),
        Route("/sign-in", sign_in, methods=["POST"]),
        Route("/sign-out", sign_out, methods=["POST"]),
        *pages_decisions.ROUTES,
        *pages_authoring.ROUTES,
        *pages_diff.ROUTES,
        *pages_policies.ROUTES,
        *pages_analysis.ROUTES,
        Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.console = console
    app.add_middleware(_ConsoleMiddleware, console=console)
    return app
