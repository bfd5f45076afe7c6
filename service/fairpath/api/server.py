"""The gRPC server: services, health, reflection and interceptors around ready objects.

:func:`build_grpc_server` binds one server around the evaluator, recorder, store and reloader that
:mod:`fairpath.app` built; it opens nothing and starts nothing. :class:`Running` starts it
(health SERVING) and stops it gracefully (health NOT_SERVING first, then in-flight calls get the
grace period).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from fairpath.api import evaluation_service
from fairpath.api.auth import AuthPolicy
from fairpath.api.decision_service import DecisionService
from fairpath.api.evaluation_service import EvaluationService
from fairpath.api.interceptors import CallInterceptor
from fairpath.api.policy_service import PolicyService
from fairpath.api.probes import build_health_server
from fairpath.api.tls import server_credentials
from fairpath.audit import DecisionStore
from fairpath.audit.checkpoint import CheckpointSigner
from fairpath.config import Config
from fairpath.recording import DecisionRecorder
from fairpath.serving.evaluator import Evaluator
from fairpath.serving.reload import Reloader
from fairpath.v1 import (
    decision_service_pb2,
    decision_service_pb2_grpc,
    evaluation_service_pb2,
    policy_service_pb2,
    policy_service_pb2_grpc,
)

SERVICE_NAMES = (
    evaluation_service_pb2.DESCRIPTOR.services_by_name["EvaluationService"].full_name,
    policy_service_pb2.DESCRIPTOR.services_by_name["PolicyService"].full_name,
    decision_service_pb2.DESCRIPTOR.services_by_name["DecisionService"].full_name,
)


@dataclass(frozen=True)
class Services:
    """What the gRPC services answer from, built by :mod:`fairpath.app`.

    Attributes:
        evaluator: The served policy versions and the evaluate use case.
        recorder: Evaluates and records before ``Evaluate`` replies.
        store: The decision trail ``DecisionService`` reads.
        reloader: Backs ``Reload`` and ``GetStatus``'s last reload; without one ``Reload``
            answers FAILED_PRECONDITION.
        signer: Signs ``CreateCheckpoint``'s answer; without one it answers UNIMPLEMENTED.

    """

    evaluator: Evaluator
    recorder: DecisionRecorder
    store: DecisionStore
    reloader: Reloader | None = None
    signer: CheckpointSigner | None = None


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


def build_grpc_server(config: Config, services: Services) -> Running:
    """Assemble the server described by ``config`` around ``services`` and bind it.

    Raises:
        RuntimeError: The address cannot be bound.
        CredentialsError: A TLS file or the auth config cannot be used.

    """
    credentials = server_credentials(config)
    auth = AuthPolicy.load(config.auth_config) if config.auth_config else None
    server = grpc.server(
        ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="fairpath-rpc"),
        interceptors=interceptors(auth),
        options=[
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_message_bytes),
            # grpc turns SO_REUSEPORT on by default, which would let a second server silently share the port.
            ("grpc.so_reuseport", 1 if config.workers > 1 else 0),
            *_connection_age_options(config),
        ],
        maximum_concurrent_rpcs=config.max_concurrent_rpcs,
    )
    health_servicer = add_services(server, services)

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
        store=services.store,
    )


def interceptors(auth: AuthPolicy | None) -> list[grpc.ServerInterceptor]:
    """Return the server's interceptors (``auth`` None: the service is open).

    One: request ids, roles, limits, statuses and the access log in one pass (:mod:`fairpath.api.interceptors`).
    """
    return [CallInterceptor(auth)]


def add_services(server: grpc.Server, services: Services) -> health.HealthServicer:
    """Add the three fairpath services and health checking to ``server``; return the health servicer.

    Every service starts NOT_SERVING; :meth:`Running.start` turns them to SERVING.
    """
    evaluation_service.add_to_server(EvaluationService(services.recorder), server)
    decision_service_pb2_grpc.add_DecisionServiceServicer_to_server(
        DecisionService(services.store, services.evaluator, services.signer), server
    )
    policy_service_pb2_grpc.add_PolicyServiceServicer_to_server(
        PolicyService(services.evaluator, services.reloader), server
    )
    # Watch streams run on their own small pool so they cannot starve the RPC threads.
    health_servicer = health.HealthServicer(
        experimental_non_blocking=True,
        experimental_thread_pool=ThreadPoolExecutor(max_workers=2, thread_name_prefix="fairpath-health"),
    )
    for name in (health.OVERALL_HEALTH, *SERVICE_NAMES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    return health_servicer


def _connection_age_options(config: Config) -> list[tuple[str, int]]:
    if not config.max_connection_age:
        return []
    # GOAWAY after the age: clients reconnect and re-resolve, so long-lived channels reach new replicas.
    # In-flight calls get the grace period to finish on the old connection.
    return [
        ("grpc.max_connection_age_ms", int(config.max_connection_age * 1000)),
        ("grpc.max_connection_age_grace_ms", int(config.grace_seconds * 1000)),
    ]
