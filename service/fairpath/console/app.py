"""The review console's web application: sign-in, sign-out, the middleware and the routes of every page.

The console is a client of the gRPC API. Each request runs the RPCs its page
needs through :class:`~fairpath_client.FairpathClient` with the signed-in
user's bearer token, so the service applies exactly the roles it applies to
any caller and records the user as the ``caller`` of what they do. What every page
builds on (settings, rendering, role checks) is :mod:`fairpath.console.web`; the pages
live in the ``pages_*`` modules (decisions, policies, authoring, diff, analysis).
"""

from __future__ import annotations

import secrets

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fairpath.console import pages_analysis, pages_authoring, pages_decisions, pages_diff, pages_policies
from fairpath.console.sessions import ALL_ROLES, COOKIE, MAX_SECONDS, PRESESSION_COOKIE, Session
from fairpath.console.web import CONSOLE_DIR, SECURITY_HEADERS, Console, ConsoleSettings, local_path, requires
from fairpath.errors import UnauthenticatedError as ServiceUnauthenticated

_log = structlog.get_logger(__name__)


async def sign_in_page(request: Request) -> Response:
    """GET /sign-in: the token form (or, on an open console, straight on)."""
    console: Console = request.app.state.console
    if console.open or request.state.session is not None:
        return RedirectResponse(local_path(request.query_params.get("next", "/")), 303)
    return _sign_in_form(console, request, error="", status=200)


def _sign_in_form(console: Console, request: Request, *, error: str, status: int) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = console.render(request, "sign_in.html", {
        "title": "Sign in", "error": error, "csrf_token": console.sessions.signin_token(nonce),
        "next": local_path(request.query_params.get("next", "/")),
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
    target = local_path(str(form.get("next", "/")))
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
                headers.extend(SECURITY_HEADERS)
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
        Mount("/static", StaticFiles(directory=CONSOLE_DIR / "static"), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.console = console
    app.add_middleware(_ConsoleMiddleware, console=console)
    return app
