"""The health port: ``grpc.health.v1`` alone, in plaintext, on its own server.

The service port's health answers are not enough for an orchestrator, for two reasons:

* gRPC applies ``maximum_concurrent_rpcs`` to every method, health checks included,
  so a saturated server would answer its liveness probe ``RESOURCE_EXHAUSTED`` and be
  restarted exactly when it is busiest;
* Kubernetes ``grpc:`` probes (and Docker's ``HEALTHCHECK``) cannot present a client
  certificate, or speak TLS at all, so under mutual TLS they could not ask.

So ``--health-port`` starts a second gRPC server with its own two threads and no RPC
cap that shares the main server's :class:`~grpc_health.v1.health.HealthServicer`:
both ports always report the same status. It exposes only whether the server is
serving, never a policy or a decision.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from fairpath.config import Config

_THREADS = 2


def build_health_server(config: Config, servicer: health.HealthServicer) -> tuple[grpc.Server, int] | None:
    """Bind (not start) the health-only server ``config.health_port`` asks for; ``None`` when it is 0.

    Raises:
        RuntimeError: The port cannot be bound.

    """
    if not config.health_port:
        return None
    server = grpc.server(
        ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="fairpath-probe"),
        # With several workers every process binds the health port too, like the service port.
        options=[("grpc.so_reuseport", 1 if config.workers > 1 else 0)],
    )
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    host = f"[{config.host}]" if ":" in config.host and not config.host.startswith("[") else config.host
    port = server.add_insecure_port(f"{host}:{config.health_port}")
    return server, port
