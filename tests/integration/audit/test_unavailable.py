"""No decision without its record: an unreachable or locked store makes Evaluate fail with UNAVAILABLE."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import structlog
from fairpath.api.server import Running
from fairpath.app import build_server
from fairpath.audit import DecisionFilter, DecisionStore, open_store
from fairpath.audit.sqlite import SqliteStore
from fairpath.config import Config
from fairpath.errors import StoreUnavailableError
from fairpath.serving.evaluator import Evaluator
from fairpath_client import DeadlineExceededError, FairpathClient, ServiceUnavailableError
from structlog.testing import capture_logs

from tests.integration.audit.conftest import GUIDE, POSTGRES, SUBSTANCE
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_until


@pytest.fixture(name="serve_store")
def _serve_store(evaluator: Evaluator) -> Iterator[Callable[[DecisionStore], FairpathClient]]:
    """Serve a given store on a real server; return a client for it."""
    started: list[tuple[Running, FairpathClient]] = []

    def serve(store: DecisionStore) -> FairpathClient:
        running = build_server(Config(host="127.0.0.1", port=0), evaluator, store=store)
        running.start()
        client = FairpathClient(f"127.0.0.1:{running.port}", timeout=30)
        started.append((running, client))
        return client

    yield serve
    for running, client in started:
        client.close()
        running.stop(None).wait(5)
        if running.store is not None:
            running.store.close()


def test_a_locked_sqlite_store_gives_unavailable_and_records_nothing(
    tmp_path: Path, serve_store: Callable[[DecisionStore], FairpathClient]
) -> None:
    """While another process holds the write lock past the busy timeout, Evaluate answers UNAVAILABLE."""
    url = f"sqlite:///{tmp_path / 'decisions.sqlite3'}"
    client = serve_store(SqliteStore(url, busy_timeout=0.2))
    client.evaluate(GUIDE, SUBSTANCE)
    holder = sqlite3.connect(tmp_path / "decisions.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")

    with pytest.raises(ServiceUnavailableError) as refused:
        client.evaluate(GUIDE, SUBSTANCE, request_id="while-locked")
    holder.execute("ROLLBACK")
    holder.close()
    after = client.evaluate(GUIDE, SUBSTANCE)

    assert refused.value.reason == "STORE_UNAVAILABLE"
    assert "nothing was recorded" in refused.value.message
    records = client.list_decisions().records
    assert [r.decision.decision_id for r in records][-1] == after.decision_id
    assert len(records) == 2
    assert "while-locked" not in {r.decision.request_id for r in records}


@pytest.mark.postgres
def test_an_unreachable_postgres_store_gives_unavailable_then_recovers(
    pg_schema: Callable[[], str], serve_store: Callable[[DecisionStore], FairpathClient]
) -> None:
    """When the database drops away Evaluate answers UNAVAILABLE; once it is back, recording resumes."""
    url = urlsplit(pg_schema())
    proxy = TcpProxy((url.hostname or "127.0.0.1", url.port or 5432))
    proxied = urlunsplit(url._replace(netloc=f"{url.username}@127.0.0.1:{proxy.port}"))
    client = serve_store(open_store(proxied))
    answered = [client.evaluate(GUIDE, SUBSTANCE).decision_id]

    proxy.cut()
    with pytest.raises(ServiceUnavailableError) as refused:
        client.evaluate(GUIDE, SUBSTANCE)
    with pytest.raises(ServiceUnavailableError):
        client.evaluate(GUIDE, SUBSTANCE)
    proxy.restore()
    answered.append(client.evaluate(GUIDE, SUBSTANCE).decision_id)
    proxy.cut()

    assert refused.value.reason == "STORE_UNAVAILABLE"
    store = open_store(urlunsplit(url))
    try:
        assert [s.decision.decision_id for s in store.iter_decisions(DecisionFilter())] == answered
        assert store.verify_chain().intact
    finally:
        store.close()


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(
            "postgresql://postgres@127.0.0.1:1/test", marks=pytest.mark.postgres, id="postgres-closed-port"
        ),
        pytest.param("sqlite:////nonexistent-directory/decisions.sqlite3", id="sqlite-missing-directory"),
    ],
)
def test_a_store_that_cannot_be_opened_is_unavailable(url: str) -> None:
    """Opening a store that is not there fails at once with StoreUnavailableError (serve then exits 1)."""
    with pytest.raises(StoreUnavailableError):
        open_store(url)


@pytest.mark.postgres
def test_terminated_postgres_connections_are_replaced_without_an_error(
    pg_schema: Callable[[], str], serve_store: Callable[[DecisionStore], FairpathClient]
) -> None:
    """After the database ends the store's connections, the next reads and the next append just work.

    Every pooled connection is dead but does not know it; reads are retried once on a new one,
    and an append whose kept connection is found dead before it wrote anything takes a new one.
    """
    name = f"fairpath_test_{uuid.uuid4().hex[:8]}"
    url = f"{pg_schema()}&application_name={name}"
    client = serve_store(open_store(url))
    first = client.evaluate(GUIDE, SUBSTANCE)
    client.get_decision(first.decision_id)
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        ended = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (name,)
        ).fetchall()

        assert len(ended) >= 2  # the writer and at least one pooled reader
        assert client.get_decision(first.decision_id).decision.decision_id == first.decision_id
        assert len(client.list_decisions().records) == 1
        assert client.verify_chain().intact
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (name,)
        )
        second = client.evaluate(GUIDE, SUBSTANCE)

    assert [r.decision.decision_id for r in client.list_decisions().records] == [
        first.decision_id, second.decision_id,
    ]


def test_a_decision_whose_caller_gave_up_is_still_recorded_and_logged_findably(
    tmp_path: Path, evaluator: Evaluator
) -> None:
    """A caller whose deadline passes while its record waits for the lock: recorded, and a warning names it.

    The record is the truth, so it stands; the warning makes such decisions findable. (That an
    answer was delivered is not knowable, so nothing claims it.)
    """
    url = f"sqlite:///{tmp_path / 'decisions.sqlite3'}"
    store = SqliteStore(url, busy_timeout=30)
    running = build_server(Config(host="127.0.0.1", port=0), evaluator, store=store)
    running.start()
    holder = sqlite3.connect(tmp_path / "decisions.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with (
            capture_logs(processors=[structlog.contextvars.merge_contextvars]) as events,
            FairpathClient(f"127.0.0.1:{running.port}", timeout=0.5) as impatient,
        ):
            with pytest.raises(DeadlineExceededError):
                impatient.evaluate(GUIDE, SUBSTANCE, request_id="gave-up")
            holder.execute("ROLLBACK")
            wait_until(lambda: store.find_by_request_id("gave-up") is not None, 30, "the record is written")
            wait_until(
                lambda: any(e["event"] == "decision_recorded_caller_gone" for e in events), 30, "the warning"
            )
    finally:
        holder.close()
        running.stop(None).wait(5)
        store.close()

    recorded = store.find_by_request_id("gave-up")
    (gone,) = [e for e in events if e["event"] == "decision_recorded_caller_gone"]
    assert recorded is not None
    assert (gone["decision_id"], gone["request_id"], gone["ended"]) == (
        recorded.decision.decision_id, "gave-up", "DEADLINE_EXCEEDED",
    )
    assert gone["log_level"] == "warning"
