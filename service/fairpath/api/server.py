"""Building, running and stopping the gRPC server.

:func:`build_server` assembles one server (services, health, reflection,
interceptors) and binds it; tests and :func:`serve` both use it.
:func:`serve` is ``fairpath serve``: it runs one server process, or with
``workers > 1`` a supervisor (:mod:`fairpath.api.supervisor`) running that many
server processes sharing one port through ``SO_REUSEPORT`` (grpc's
``examples/python/multiprocessing``), replacing any that dies.

Lifecycle of a server process: the start-up reload (:mod:`fairpath.reload`:
every policy file that loads, matches ``policies.lock``, compiles and passes its
own tests serves; each refused file is one log line; exit code 2 only when
nothing at all serves) → bind → start → health SERVING → log ``serving`` →
reload on ``Reload``, SIGHUP and directory changes (:mod:`fairpath.watch`) →
wait for SIGTERM/SIGINT → health NOT_SERVING → stop accepting calls, let
in-flight ones finish within the grace period → exit 0. With several workers
the supervisor passes SIGTERM, SIGINT and SIGHUP on to each of them.
"""

from __future__ import annotations

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
from fairpath.api.decisions_api import DecisionService
from fairpath.api.interceptors import AccessLogInterceptor
from fairpath.api.limits import LimitsInterceptor
from fairpath.api.probes import build_health_server
from fairpath.api.servicers import EvaluationService, PolicyService
from fairpath.api.status import StatusInterceptor
from fairpath.api.supervisor import WorkerSupervisor
from fairpath.api.tls import server_credentials
from fairpath.audit import DecisionRecorder, DecisionStore, open_store
from fairpath.audit.checkpoint import CheckpointSigner
from fairpath.audit.checkpoint_writer import CheckpointWriter, writer_for
from fairpath.config import Config
from fairpath.console.runner import start_console
from fairpath.errors import CredentialsError, StoreError
from fairpath.evaluation import Evaluator
from fairpath.reload import Reloader
from fairpath.v1 import (
    decision_service_pb2,
    decision_service_pb2_grpc,
    evaluation_service_pb2,
    evaluation_service_pb2_grpc,
    policy_service_pb2,
    policy_service_pb2_grpc,
)
from fairpath.watch import ReloadDaemon, reload_on_sighup

SERVICE_NAMES = (
    evaluation_service_pb2.DESCRIPTOR.services_by_name["EvaluationService"].full_name,
    policy_service_pb2.DESCRIPTOR.services_by_name["PolicyService"].full_name,
    decision_service_pb2.DESCRIPTOR.services_by_name["DecisionService"].full_name,
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
        store: Where decisions are recorded; whoever opened it closes it after :meth:`stop`.

    """

    server: grpc.Server
    port: int
    health: health.HealthServicer
    health_server: grpc.Server | None = None
    health_port: int = 0
    store: DecisionStore | None = None

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


def build_server(
    config: Config,
    evaluator: Evaluator,
    reloader: Reloader | None = None,
    *,
    store: DecisionStore | None = None,
) -> Running:
    """Assemble the server described by ``config`` around ``evaluator`` and bind it.

    ``reloader`` backs ``PolicyService.Reload`` and ``GetStatus``'s last reload;
    without one, ``Reload`` answers FAILED_PRECONDITION. Decisions are recorded in
    ``store``, or in the store ``config.store`` names when none is given.

    Raises:
        RuntimeError: The address cannot be bound.
        CredentialsError: A TLS file or the auth config cannot be used.
        StoreError: The decision store cannot be opened (StoreUnavailableError when unreachable).

    """
    credentials = server_credentials(config)
    auth = AuthPolicy.load(config.auth_config) if config.auth_config else None
    signer = CheckpointSigner.load(config.checkpoint_key) if config.checkpoint_key else None
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
            *_connection_age_options(config),
        ],
        maximum_concurrent_rpcs=config.max_concurrent_rpcs,
    )
    store = store if store is not None else open_store(config.store)
    recorder = DecisionRecorder(evaluator, store)
    evaluation_service_pb2_grpc.add_EvaluationServiceServicer_to_server(EvaluationService(recorder), server)
    decision_service_pb2_grpc.add_DecisionServiceServicer_to_server(DecisionService(store, evaluator, signer), server)
    policy_service_pb2_grpc.add_PolicyServiceServicer_to_server(PolicyService(evaluator, reloader), server)

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
        store=store,
    )


def _connection_age_options(config: Config) -> list[tuple[str, int]]:
    if not config.max_connection_age:
        return []
    # GOAWAY after the age: clients reconnect and re-resolve, so long-lived channels reach new replicas.
    # In-flight calls get the grace period to finish on the old connection.
    return [
        ("grpc.max_connection_age_ms", int(config.max_connection_age * 1000)),
        ("grpc.max_connection_age_grace_ms", int(config.grace_seconds * 1000)),
    ]


def serve(config: Config) -> int:
    """Run ``fairpath serve`` until SIGTERM or SIGINT; must be called from the main thread.

    Returns:
        The process exit code: 0 after a graceful stop, 2 when no policy version
        at all could be served, 1 for any other failure to start.

    """
    logs.configure(config.log_level, config.log_format)
    if config.unprotected:
        # Config refuses this without --insecure; with it, say so once (not once per worker) at start.
        _log.warning(
            "serving_insecure",
            host=config.host,
            without=list(config.unprotected),
            hint="set --tls-cert, --tls-key and --auth-config unless a proxy in front provides them",
        )
    if config.workers > 1:
        return _supervise(config)
    return _serve_one(config)


def _serve_one(config: Config, on_serving: Callable[[], None] | None = None) -> int:
    stop_requested = threading.Event()
    evaluator = Evaluator()
    reloader = Reloader(evaluator, config.policies_dir, allow_unlocked=config.allow_unlocked)
    reloads = ReloadDaemon(reloader, config.watch_seconds)
    # SIGHUP is handled from the start: its default action would kill the process.
    with _signals(stop_requested.set), reload_on_sighup(reloads.request):
        # A broken file is logged and refused; the rest serve. Nothing serving is fatal.
        startup = reloader.reload("startup")
        if not evaluator.registry.all():
            _log.error("no_policy_served", policies_dir=config.policies_dir, problems=len(startup.problems))
            return EXIT_BAD_POLICY
        try:
            store = open_store(config.store)
        except StoreError as error:
            # The URL may hold a password: log the error (which never repeats it), not the URL.
            _log.error("store_unavailable", error=str(error))
            return EXIT_FAILED
        try:
            running = build_server(config, evaluator, reloader, store=store)
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
            watch_seconds=config.watch_seconds,
            store=store.description,
        )
        if on_serving is not None:
            on_serving()
        reloads.start()
        # With several workers the supervisor writes the periodic checkpoints, once for all of them.
        checkpoints = writer_for(config, store) if config.workers == 1 else None
        if checkpoints is not None:
            checkpoints.start()
        # The review console runs once per service: here when this process is the whole service.
        console = start_console(config, running.port) if config.workers == 1 else None
        stop_requested.wait()
        _log.info("stopping", grace_seconds=config.grace_seconds)
        if console is not None:
            console.stop()
        reloads.stop()
        running.stop(config.grace_seconds).wait()
        if checkpoints is not None:
            checkpoints.stop()  # after the last in-flight call: the final checkpoint covers its record
        store.close()
        evaluator.close()
        _log.info("stopped")
        return EXIT_OK


def _supervise(config: Config) -> int:
    _prepare_store(config)
    supervisor = WorkerSupervisor(config, _worker_main)
    supervisor.start()
    # Workers come from a fork server started before these threads exist, so none inherits
    # the writer's thread or database connection.
    checkpoints = _supervisor_checkpoints(config)
    # Likewise the review console: one for the service, a client of the workers' shared port.
    console = start_console(config, config.port)
    exit_code = supervisor.run()
    if checkpoints is not None:
        checkpoints.stop()
    if console is not None:
        console.stop()
    _log.info("workers_stopped", exit_code=exit_code)
    return exit_code


def _prepare_store(config: Config) -> None:
    """Open (and so migrate) the store once, before any worker exists.

    N workers creating one new SQLite file at the same moment lock each other out of its
    migration ("database is locked"), and a worker failing before any served stops the start.
    The connection is closed before the workers are forked.
    """
    try:
        open_store(config.store).close()
    except StoreError as error:
        # The workers meet the same error, and the supervisor stops the start with their exit code.
        _log.error("store_unavailable", error=str(error))


def _supervisor_checkpoints(config: Config) -> CheckpointWriter | None:
    try:
        writer = writer_for(config)
    except (CredentialsError, StoreError) as error:
        # The workers meet the same key or store and fail on it, which stops the service.
        _log.error("checkpoints_unavailable", error=str(error))
        return None
    if writer is not None:
        writer.start()
    return writer


def _worker_main(config: Config, on_serving: Callable[[], None]) -> int:
    """One worker of :class:`WorkerSupervisor`: a fresh process from the fork server, so logging is set up again."""
    logs.configure(config.log_level, config.log_format)
    return _serve_one(config, on_serving)


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
