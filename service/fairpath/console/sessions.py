"""Console sessions: who is signed in, their token and roles, held server-side behind a signed cookie.

The cookie carries only a random session id and its HMAC under a key made at
start-up, never the token: the token stays in this process and travels only on
the gRPC calls made for that user. Sessions end when signed out, after
:data:`IDLE_SECONDS` without a request, or :data:`MAX_SECONDS` after sign-in,
whichever comes first (OWASP ASVS V3). Because the console runs once per
``fairpath serve`` (not once per worker), one in-memory table is enough; a
restart signs everyone out, which is the safe direction.

Every session, signed in or (without an auth config) anonymous, has its own
CSRF token, which every form posts back; sign-in itself is protected by a
token bound to a short-lived pre-session cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: Seconds a session may stay unused before it ends.
IDLE_SECONDS = 30 * 60
#: Seconds after sign-in at which a session ends however busy it is.
MAX_SECONDS = 8 * 60 * 60
#: Most sessions held at once; beyond it the least recently used ends (an open console makes one
#: per cookie-less visitor, so without a bound a crawler could fill the memory).
MAX_SESSIONS = 10_000
#: Name of the session cookie.
COOKIE = "fairpath_console"
#: Name of the cookie that binds the sign-in form's CSRF token to one browser.
PRESESSION_COOKIE = "fairpath_console_signin"

#: Every role (what an open console, without an auth config, lets everyone do).
ALL_ROLES = frozenset({"evaluator", "author", "auditor"})


@dataclass
class Session:
    """One browser's session.

    Attributes:
        id: Random id, the cookie's payload.
        token: The bearer token the user signed in with (None when the console is open).
        caller: Who the API records the user's calls as, e.g. ``token:reviewer``; ``""`` when open.
        roles: The roles the user holds (role names of :mod:`fairpath.api.auth`).
        csrf: The token every form of this session must post back.
        started: When the session began (monotonic seconds).
        last_seen: When it was last used (monotonic seconds).

    """

    id: str
    token: str | None
    caller: str
    roles: frozenset[str]
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    started: float = field(default_factory=time.monotonic)
    last_seen: float = field(default_factory=time.monotonic)

    def may(self, role: str) -> bool:
        """Whether the user holds ``role``."""
        return role in self.roles

    def csrf_ok(self, posted: object) -> bool:
        """Whether ``posted`` is this session's CSRF token (compared in constant time)."""
        return isinstance(posted, str) and hmac.compare_digest(posted.encode(), self.csrf.encode())


class SessionStore:
    """Sessions by id, with the cookie signing key; thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._key = secrets.token_bytes(32)
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def create(self, token: str | None, caller: str, roles: frozenset[str]) -> Session:
        """Start a session and return it; its cookie value is :meth:`cookie_value`."""
        now = self._clock()
        session = Session(secrets.token_urlsafe(32), token, caller, roles, started=now, last_seen=now)
        with self._lock:
            self._expire(now)
            while len(self._sessions) >= MAX_SESSIONS:
                oldest = min(self._sessions.values(), key=lambda held: held.last_seen)
                del self._sessions[oldest.id]
            self._sessions[session.id] = session
        return session

    def find(self, cookie: str | None) -> Session | None:
        """The live session a cookie names, touched; None for a missing, forged or expired one."""
        if not cookie or "." not in cookie:
            return None
        session_id, signature = cookie.rsplit(".", 1)
        if not hmac.compare_digest(signature, self._sign(session_id)):
            return None
        now = self._clock()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now - session.last_seen > IDLE_SECONDS or now - session.started > MAX_SECONDS:
                del self._sessions[session_id]
                return None
            session.last_seen = now
            return session

    def end(self, session: Session) -> None:
        """Forget ``session``: its cookie no longer signs anyone in."""
        with self._lock:
            self._sessions.pop(session.id, None)

    def cookie_value(self, session: Session) -> str:
        """``<id>.<signature>``: what the session cookie holds."""
        return f"{session.id}.{self._sign(session.id)}"

    def signin_token(self, nonce: str) -> str:
        """The sign-in form's CSRF token for the pre-session cookie value ``nonce``."""
        return self._sign("sign-in:" + nonce)

    def signin_token_ok(self, nonce: str | None, posted: object) -> bool:
        """Whether ``posted`` is the sign-in token of ``nonce``."""
        return bool(nonce) and isinstance(posted, str) and hmac.compare_digest(
            posted, self.signin_token(nonce or "")
        )

    def _sign(self, text: str) -> str:
        digest = hmac.new(self._key, text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def _expire(self, now: float) -> None:
        stale = [
            key for key, session in self._sessions.items()
            if now - session.last_seen > IDLE_SECONDS or now - session.started > MAX_SECONDS
        ]
        for key in stale:
            del self._sessions[key]
