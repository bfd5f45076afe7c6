"""--max-connection-age: long-lived client channels reconnect, so they can spread onto new replicas."""

from __future__ import annotations

import time

import grpc
from fairpath.serving.evaluator import Evaluator

from tests.support.servers import serving

PEER = "/fairpath.test.Peer/Who"


def _peer_handler() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        "fairpath.test.Peer",
        {"Who": grpc.unary_unary_rpc_method_handler(lambda _, context: context.peer().encode())},
    )


def _peers_seen(evaluator: Evaluator, max_connection_age: float, seconds: float) -> set[bytes]:
    with serving(evaluator, max_connection_age=max_connection_age, grace_seconds=1) as running:
        running.server.add_generic_rpc_handlers((_peer_handler(),))
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            call = channel.unary_unary(PEER)
            peers = set()
            ends = time.monotonic() + seconds
            while time.monotonic() < ends:
                peers.add(call(b"", timeout=5, wait_for_ready=True))  # every call succeeds across reconnects
                time.sleep(0.05)
    return peers


def test_connections_are_recycled_after_the_max_age(evaluator: Evaluator) -> None:
    """With a 0.3 s age one channel is served over several connections, and no call fails meanwhile."""
    assert len(_peers_seen(evaluator, 0.3, 1.5)) >= 2


def test_connections_live_on_without_a_max_age(evaluator: Evaluator) -> None:
    """By default (0) the server never asks a client to reconnect."""
    assert len(_peers_seen(evaluator, 0, 0.6)) == 1
