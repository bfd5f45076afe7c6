"""``python -m fairpath.healthcheck``: exit 0 only if the local server reports SERVING.

For container health checks (Docker ``HEALTHCHECK``), so the image needs no
``grpc_health_probe`` binary. It asks the standard ``grpc.health.v1`` service:

* on ``127.0.0.1:$FAIRPATH_HEALTH_PORT`` when that is set (the plaintext
  health-only port, which works under TLS and is never shed under load);
* else on ``127.0.0.1:$FAIRPATH_PORT`` (default 50051) in plaintext, which
  fails by design when the service port requires TLS -- set the health port.

``--target`` overrides both. Exit codes: 0 SERVING, 1 anything else (not
serving, unknown service, no answer in time); one line on stderr says why.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

EXIT_SERVING = 0
EXIT_UNHEALTHY = 1
DEFAULT_TIMEOUT = 3.0


def default_target(environ: Mapping[str, str]) -> str:
    """Return the address to ask: the health port when configured, else the service port, on loopback."""
    health_port = environ.get("FAIRPATH_HEALTH_PORT", "").strip()
    if health_port and health_port != "0":
        return f"127.0.0.1:{health_port}"
    return f"127.0.0.1:{environ.get('FAIRPATH_PORT', '').strip() or '50051'}"


def check(target: str, service: str = "", timeout: float = DEFAULT_TIMEOUT) -> str:
    """Return the serving status name ``target`` reports for ``service``, or why there is none."""
    with grpc.insecure_channel(target) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError as error:
            if isinstance(error, grpc.Call):
                return f"{error.code().name}: {error.details()}"
            return f"ERROR: {error}"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the check and return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m fairpath.healthcheck", description="Exit 0 only if the local fairpath is SERVING."
    )
    parser.add_argument("--target", help="host:port to ask (default: the health port, else the service port)")
    parser.add_argument("--service", default="", help="service to ask about (default: the whole server)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds to wait")
    args = parser.parse_args(argv)
    target = args.target or default_target(os.environ if environ is None else environ)
    status = check(target, args.service, args.timeout)
    if status == "SERVING":
        return EXIT_SERVING
    sys.stderr.write(f"fairpath at {target}: {status}\n")
    return EXIT_UNHEALTHY


if __name__ == "__main__":
    raise SystemExit(main())
