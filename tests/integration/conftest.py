"""A real fairpath server on 127.0.0.1 (OS-chosen port) for the whole session, and channels to it."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from fairpath.api.server import Running
from fairpath.app import build_server
from fairpath.config import Config
from fairpath.serving.evaluator import Evaluator


@pytest.fixture(scope="session")
def server(evaluator: Evaluator, session_store_url: str) -> Iterator[Running]:
    """Serve the real policies/ directory for the session: started, SERVING, stopped at the end."""
    running = build_server(Config(host="127.0.0.1", port=0, store=session_store_url), evaluator)
    running.start()
    yield running
    running.stop(None).wait(5)
    if running.store is not None:
        running.store.close()


@pytest.fixture(scope="session")
def target(server: Running) -> str:
    """Return ``host:port`` of the session server."""
    return f"127.0.0.1:{server.port}"


@pytest.fixture
def channel(target: str) -> Iterator[grpc.Channel]:
    """Open a connected channel to the session server; closed after the test."""
    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=5)
        yield channel
