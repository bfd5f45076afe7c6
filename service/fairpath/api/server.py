"""Building, running and stopping the gRPC server.

:func:`build_server` assembles one server (services, health, reflection,
interceptors) and binds it; tests and :func:`serve` both use it.
:func:`serve` is ``fairpath serve``: it runs one server process, or with
``workers > 1`` a small supervisor that forks that many server processes sharing
one port through ``SO_REUSEPORT`` (grpc's ``examples/python/multiprocessing``).

Lifecycle of a server process: load and compile every policy (a broken file is
one log line and exit code 2) → bind → start → health SERVING → log ``serving``
→ wait for SIGTERM/SIGINT → health NOT_SERVING → stop accepting calls, let
in-flight ones finish within the grace period → exit 0.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from fairpath import logs
from fairpath.api.auth import AuthInterceptor, AuthPolicy
from fairpath.api.interceptors import AccessLogInterceptor
from fairpath.api.limits import LimitsInterceptor
from fairpath.api.probes import build_health_server
from fairpath.api.servicers import EvaluationService, PolicyService
from fairpath.api.status import StatusInterceptor
from fairpath.api.tls import server_credentials
from fairpath.config import Config
from fairpath.errors import CredentialsError, PolicyFileError
from fairpath.evaluation import Evaluator
from fairpath.v1 import (
    evaluation_service_pb2,
    evaluation_service_pb2_grpc,
    policy_service_pb2,
    policy_service_pb2_grpc,
)

SERVICE_NAMES = (
    evaluation_service_pb2.DESCRIPTOR.services_by_name["EvaluationService"].full_name,
    policy_service_pb2.DESCRIPTOR.services_by_name["PolicyService"].full_name,
)
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_POLICY = 2

_log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Running:
    """A bound server and its health servicer; :meth:`start` it, later :meth:`stop` it.

    Attributes:
        server: The gRPC server, bound but not started by :func:`build_server`.
        port: The port actually bound (the OS's choice when the config said 0).
        health: Reports NOT_SERVING until :meth:`start`, and again from :meth:`stop` on.
        health_server: The plaintext health-only server of ``--health-port``, if any.
        health_port: The port it bound (0 without one).

    """

    server: grpc.Server
    port: int
    health: health.HealthServicer
    health_server: grpc.Server | None = None
    health_port: int = 0

    def start(self) -> None:
        """Start serving, then report SERVING for the server and both fairpath services."""
        self.server.start()
        if self.health_server is not None:
            self.health_server.start()
        for name in (health.OVERALL_HEALTH, *SERVICE_NAMES):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace: float | None) -> threading.Event:
        """Report NOT_SERVING for good, refuse new calls and give in-flight ones ``grace`` seconds.

        Returns:
            An event set once the server has stopped.

        """
        self.health.enter_graceful_shutdown()
        stopped = self.server.stop(grace)
        if self.health_server is None:
            return stopped
        # Probes keep hearing NOT_SERVING while the service drains; the health server goes last.
        both = threading.Event()
        health_server = self.health_server

        def stop_health_after_service() -> None:
            stopped.wait()
            health_server.stop(None).wait()
            both.set()

        threading.Thread(target=stop_health_after_service, name="fairpath-probe-stop", daemon=True).start()
        return both


def build_server(config: Config, evaluator: Evaluator) -> Running:
    """Assemble the server described by ``config`` around ``evaluator`` and bind it.

    Raises:
        RuntimeError: The address cannot be bound.
        CredentialsError: A TLS file or the auth config cannot be used.

    """
    credentials = server_credentials(config)
    auth = AuthPolicy.load(config.auth_config) if config.auth_config else None
    server = grpc.server(
        ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="fairpath-rpc"),
        # Outermost first: the access log must see the status the status interceptor chose.
        # Auth and limits run inside the status interceptor, which reports their refusals.
        interceptors=[
            AccessLogInterceptor(),
            StatusInterceptor(),
            *([AuthInterceptor(auth)] if auth is not None else []),
            LimitsInterceptor(),
        ],
        options=[
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_message_bytes),
            # grpc turns SO_REUSEPORT on by default, which would let a second server silently share the port.
            ("grpc.so_reuseport", 1 if config.workers > 1 else 0),
        ],
        maximum_concurrent_rpcs=config.max_concurrent_rpcs,
    )
    evaluation_service_pb2_grpc.add_EvaluationServiceServicer_to_server(EvaluationService(evaluator), server)
    policy_service_pb2_grpc.add_PolicyServiceServicer_to_server(PolicyService(evaluator), server)

    # Watch streams run on their own small pool so they cannot starve the RPC threads.
    health_servicer = health.HealthServicer(
        experimental_non_blocking=True,
        experimental_thread_pool=ThreadPoolExecutor(max_workers=2, thread_name_prefix="fairpath-health"),
    )
    for name in (health.OVERALL_HEALTH, *SERVICE_NAMES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)

    if config.reflection:
        names = (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server)

    # With TLS on, the port speaks TLS only: a plaintext client fails its handshake.
    if credentials is None:
        port = server.add_insecure_port(config.address)
    else:
        port = server.add_secure_port(config.address, credentials)
    probe = build_health_server(config, health_servicer)
    return Running(
        server=server,
        port=port,
        health=health_servicer,
        health_server=probe[0] if probe else None,
        health_port=probe[1] if probe else 0,
    )


def serve(config: Config) -> int:
    """Run ``fairpath serve`` until SIGTERM or SIGINT; must be called from the main thread.

    Returns:
        The process exit code: 0 after a graceful stop, 2 when a policy file is
        broken, 1 for any other failure to start.

    """
    logs.configure(config.log_level, config.log_format)
    if config.workers > 1:
        return _supervise(config)
    return _serve_one(config)


def _serve_one(config: Config) -> int:
    stop_requested = threading.Event()
    with _signals(stop_requested.set):
        try:
            evaluator = Evaluator.from_directory(config.policies_dir)
        except PolicyFileError as error:
            _log.error("policy_load_failed", error=str(error), policies_dir=config.policies_dir)
            return EXIT_BAD_POLICY
        except Exception:
            _log.exception("startup_failed", policies_dir=config.policies_dir)
            return EXIT_FAILED
        try:
            running = build_server(config, evaluator)
        except RuntimeError as error:
            _log.error("bind_failed", address=config.address, error=str(error))
            return EXIT_FAILED
        except CredentialsError as error:
            _log.error("credentials_invalid", error=str(error))
            return EXIT_FAILED

        running.start()
        _log.info(
            "serving",
            host=config.host,
            port=running.port,
            policies=[policy.key for policy in evaluator.registry.all()],
            threads=config.threads,
            reflection=config.reflection,
            tls="mutual" if config.tls_client_ca else ("on" if config.tls_cert else "off"),
            auth=bool(config.auth_config),
            health_port=running.health_port or None,
        )
        stop_requested.wait()
        _log.info("stopping", grace_seconds=config.grace_seconds)
        running.stop(config.grace_seconds).wait()
        evaluator.close()
        _log.info("stopped")
        return EXIT_OK


def _supervise(config: Config) -> int:
    # Fork before any gRPC object exists in this process: gRPC's core is not fork-safe once started.
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_worker_main, args=(config,), name=f"fairpath-worker-{index}")
        for index in range(config.workers)
    ]
    for worker in workers:
        worker.start()
    _log.info("workers_started", pids=[worker.pid for worker in workers], port=config.port)

    stopping = False

    def stop_all() -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)

    exit_code = EXIT_OK
    with _signals(stop_all):
        alive = list(workers)
        while alive:
            multiprocessing.connection.wait([worker.sentinel for worker in alive])
            for worker in [w for w in alive if not w.is_alive()]:
                alive.remove(worker)
                worker.join()
                code = worker.exitcode or 0
                if code != 0 and not stopping:
                    # One worker down means the port is half served: stop the rest and report why.
                    _log.error("worker_failed", pid=worker.pid, exit_code=code)
                    exit_code = code if code > 0 else EXIT_FAILED
                    stop_all()
    _log.info("workers_stopped", exit_code=exit_code)
    return exit_code


def _worker_main(config: Config) -> None:
    raise SystemExit(_serve_one(config))


@contextmanager
def _signals(on_signal: Callable[[], None]) -> Iterator[None]:
    """Call ``on_signal`` on SIGTERM and SIGINT while the block runs, then restore the old handlers."""

    def handler(signum: int, _: FrameType | None) -> None:
        _log.info("signal_received", signal=signal.Signals(signum).name)
        on_signal()

    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
