"""Console sessions: signed cookies, idle and absolute expiry, CSRF tokens, sign-in tokens."""

from __future__ import annotations

import pytest
from fairpath.console import sessions
from fairpath.console.sessions import IDLE_SECONDS, MAX_SECONDS, SessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_cookie_finds_its_session_and_a_forged_one_finds_nothing() -> None:
    """The cookie is id.signature: the right one finds the session; another id or signature does not."""
    store = SessionStore()
    session = store.create("tok", "token:a", frozenset({"auditor"}))
    cookie = store.cookie_value(session)
    assert store.find(cookie) is session
    session_id, signature = cookie.rsplit(".", 1)
    assert store.find(f"{session_id}.{signature[:-1]}x") is None
    assert store.find(f"{session_id[:-1]}x.{signature}") is None
    assert store.find(session_id) is None
    assert store.find(None) is None
    assert SessionStore().find(cookie) is None  # another process's key: a restart signs everyone out


def test_sessions_end_when_idle_too_long_or_too_old_or_signed_out() -> None:
    """Idle past IDLE_SECONDS, or past MAX_SECONDS however busy, or ended: the cookie no longer works."""
    clock = Clock()
    store = SessionStore(clock)
    idle = store.create("t", "token:a", frozenset())
    busy = store.create("t", "token:b", frozenset())
    ended = store.create("t", "token:c", frozenset())
    store.end(ended)
    assert store.find(store.cookie_value(ended)) is None
    while clock.now + IDLE_SECONDS / 2 <= 1000.0 + MAX_SECONDS:
        clock.now += IDLE_SECONDS / 2  # used every half idle period: never idle too long
        assert store.find(store.cookie_value(busy)) is busy
    clock.now = 1000.0 + MAX_SECONDS + 1
    assert store.find(store.cookie_value(busy)) is None
    assert store.find(store.cookie_value(idle)) is None


def test_csrf_and_sign_in_tokens_must_match_exactly() -> None:
    """Only the session's own CSRF token passes; the sign-in token is bound to its pre-session nonce."""
    store = SessionStore()
    one, two = store.create(None, "", frozenset()), store.create(None, "", frozenset())
    assert one.csrf_ok(one.csrf)
    assert not one.csrf_ok(two.csrf)
    assert not one.csrf_ok(None)
    assert not one.csrf_ok("")
    token = store.signin_token("nonce-1")
    assert store.signin_token_ok("nonce-1", token)
    assert not store.signin_token_ok("nonce-2", token)
    assert not store.signin_token_ok(None, token)
    assert not store.signin_token_ok("nonce-1", None)


def test_the_store_is_bounded_and_drops_the_least_recently_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """At MAX_SESSIONS a new session ends the one unused the longest, not a busy one."""
    monkeypatch.setattr(sessions, "MAX_SESSIONS", 3)
    clock = Clock()
    store = SessionStore(clock)
    made = []
    for _ in range(3):
        clock.now += 1
        made.append(store.create(None, "", frozenset()))
    clock.now += 1
    assert store.find(store.cookie_value(made[0])) is made[0]  # used again: now the freshest
    clock.now += 1
    store.create(None, "", frozenset())
    assert store.find(store.cookie_value(made[1])) is None
    assert store.find(store.cookie_value(made[0])) is made[0]
    assert store.find(store.cookie_value(made[2])) is made[2]
