"""What the gRPC benchmarks share: run ``fairpath serve``, and load it from client processes.

``serving`` starts the server on a free port, waits until SERVING and sends SIGTERM afterwards;
``load_phase`` drives it from several client processes of several threads each. Shared by
``bench_evaluate.py``, ``bench_recording.py`` and ``bench_rpc.py`` (which reads the server's CPU time
through ``server_process``); imported by path, as they are scripts, not a package.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """Return a loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(*args: str, timeout: float = 60, command: tuple[str, ...] = ()) -> Iterator[str]:
    """Run ``fairpath serve --port <free> --log-level warning ARGS...`` from the repo root; yield its target.

    ``command`` replaces ``fairpath serve`` by another program taking the same options
    (``bench_rpc.py``'s trial servers).
    """
    with server_process(*args, timeout=timeout, command=command) as (target, _):
        yield target


@contextmanager
def server_process(
    *args: str, timeout: float = 60, command: tuple[str, ...] = ()
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """As :func:`serving`, yielding the server process too (to read its CPU time).

    Yields once the standard health check says SERVING; stops the server with SIGTERM (as an
    orchestrator would) when the block ends.

    Raises:
        RuntimeError: The server was not SERVING within ``timeout`` seconds.

    """
    port = free_port()
    # Quiet: the log would compete with the load for the machine, and nothing reads it. No review
    # console: it would take port 8080 and a thread from the process being measured.
    process = subprocess.Popen(
        [*(command or (sys.executable, "-m", "fairpath", "serve")), "--port", str(port), "--log-level", "warning",
         "--console-port", "0", *args],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    target = f"127.0.0.1:{port}"
    try:
        _wait_serving(target, timeout)
    except BaseException:
        process.kill()
        process.wait()
        raise
    try:
        yield target, process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def _wait_serving(target: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest()
        while time.monotonic() < deadline:
            try:
                if stub.Check(request, timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                time.sleep(0.1)
    raise RuntimeError("server did not become SERVING")


def _caller(args: tuple[str, str, float, int, int]) -> list[float]:
    """One load-generator process: ``threads`` blocking callers for ``seconds``; returns latencies.

    ``rpc`` is ``check`` (the standard health Check), ``evaluate`` or ``evaluate-dry`` (dry_run).
    """
    from bench_evaluate import GUIDE, workload  # noqa: PLC0415 - a spawned child imports it by path
    from fairpath.v1 import evaluation_service_pb2 as pb  # noqa: PLC0415
    from fairpath.v1 import evaluation_service_pb2_grpc as pb_grpc  # noqa: PLC0415
    from google.protobuf import struct_pb2  # noqa: PLC0415

    target, rpc, seconds, threads, seed = args
    requests = []
    for facts in workload(500, seed):
        struct = struct_pb2.Struct()
        struct.update(facts)
        requests.append(pb.EvaluateRequest(policy=GUIDE, facts=struct, dry_run=rpc == "evaluate-dry"))
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def run(index: int) -> None:
        # One channel per thread: each gets its own connection, so SO_REUSEPORT spreads them over workers.
        with grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
            evaluate = pb_grpc.EvaluationServiceStub(channel).Evaluate
            check = health_pb2_grpc.HealthStub(channel).Check
            health = health_pb2.HealthCheckRequest()
            mine, i = [], index
            while time.monotonic() < stop:
                began = time.perf_counter()
                if rpc == "check":
                    check(health, timeout=30)
                else:
                    evaluate(requests[i % len(requests)], timeout=30)
                mine.append(time.perf_counter() - began)
                i += 1
            with lock:
                latencies.extend(mine)

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies


def load_phase(target: str, rpc: str, seconds: float, callers: int, threads: int) -> tuple[float, list[float]]:
    """Drive ``target`` with ``callers`` processes x ``threads`` callers; (requests per second, latencies)."""
    jobs = [(target, rpc, seconds, threads, seed) for seed in range(callers)]
    with multiprocessing.get_context("spawn").Pool(callers) as pool:
        began = time.perf_counter()
        results = pool.map(_caller, jobs)
        elapsed = time.perf_counter() - began
    latencies = [x for result in results for x in result]
    return len(latencies) / min(elapsed, seconds + 1), latencies
