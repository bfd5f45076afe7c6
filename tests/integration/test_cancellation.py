"""A client that leaves mid-call is not a server error: `fairpath serve`'s log stays free of errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.conftest import GUIDE
from tests.support.policy_dirs import copy_policies
from tests.support.servers import ServerProcess

REFLECTION_METHOD = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
STREAMS = 5


def _open_reflection_stream(
    channel: grpc.Channel, release: threading.Event, timeout: float
) -> Iterator[reflection_pb2.ServerReflectionResponse]:
    """Ask reflection for the service list on a stream whose requests stay open until ``release`` is set.

    The open request stream keeps the server's handler waiting for the next request, where a
    vanished client used to surface as an exception from grpc's request iterator; and no
    half-close can end the stream normally before the client leaves.
    """

    def requests() -> Iterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")
        release.wait(30)

    stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(requests(), timeout=timeout)
    assert next(stream).list_services_response.service
    return stream


def _open_then_close_channel(target: str, release: threading.Event) -> None:
    """Open a reflection stream, then close the channel while the stream is still open."""
    channel = grpc.insecure_channel(target)
    try:
        _open_reflection_stream(channel, release, timeout=30)
        # Give the server time to finish sending and block reading the next request.
        release.wait(0.2)
    finally:
        channel.close()


def _outlive_the_deadline(target: str, release: threading.Event) -> None:
    """Open a reflection stream with a short deadline and leave it waiting for a request until it expires."""
    with grpc.insecure_channel(target) as channel:
        stream = _open_reflection_stream(channel, release, timeout=3)
        with pytest.raises(grpc.RpcError) as ended:
            next(stream)
        assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_closing_the_channel_mid_reflection_stream_logs_no_error(tmp_path: Path) -> None:
    """Channel closed, or deadline passed, mid-stream: the access log says CANCELLED (DEADLINE_EXCEEDED) at info.

    No error line and no traceback: the client left, the server did nothing wrong.
    """
    root = copy_policies(tmp_path / "policies", GUIDE)
    with ServerProcess(root, "--watch-seconds", "0", cwd=tmp_path) as server:
        server.wait_serving()
        release = threading.Event()
        try:
            for _ in range(STREAMS):
                _open_then_close_channel(server.target, release)
            _outlive_the_deadline(server.target, release)
            server.wait_until(
                lambda: len([e for e in server.events("rpc") if e["method"] == REFLECTION_METHOD]) == STREAMS + 1,
                "an access log line for every stream",
            )
        finally:
            release.set()
        assert server.stop() == 0

    log = [json.loads(line) for line in server.lines if line.startswith("{")]
    reflection_calls = [e for e in log if e.get("event") == "rpc" and e["method"] == REFLECTION_METHOD]
    assert {e["level"] for e in reflection_calls} == {"info"}
    *closed, expired = reflection_calls
    # Closing a channel can half-close a stream before cancelling it: the server then ends it OK.
    assert {e["code"] for e in closed} <= {"CANCELLED", "OK"}
    assert any(e["code"] == "CANCELLED" for e in closed)
    assert expired["code"] == "DEADLINE_EXCEEDED"
    assert [e for e in log if e["level"] in {"error", "critical"}] == []
    assert not any("exception" in e for e in log)
    assert "Traceback" not in "".join(server.lines)
