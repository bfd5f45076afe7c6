"""The application: building the service from its parts, running and stopping its processes.

:func:`build_server` opens what the services need (the store, the recorder, the checkpoint
signer) around an evaluator and hands them to :func:`fairpath.api.server.build_grpc_server`;
tests and :func:`serve` both use it. :func:`serve` is ``fairpath serve``: it runs one server process, or with
``workers > 1`` a supervisor (:mod:`fairpath.workers`) running that many
server processes sharing one port through ``SO_REUSEPORT`` (grpc's
``examples/python/multiprocessing``), replacing any that dies.

Lifecycle of a server process: the start-up reload (:mod:`fairpath.serving.reload`:
every policy file that loads, matches ``policies.lock``, compiles and passes its
own tests serves; each refused file is one log line; exit code 2 only when
nothing at all serves) → bind → start → health SERVING → log ``serving`` →
reload on ``Reload``, SIGHUP and directory changes (:mod:`fairpath.serving.watch`) →
wait for SIGTERM/SIGINT → health NOT_SERVING → stop accepting calls, let
in-flight ones finish within the grace period → exit 0. With several workers
the supervisor passes SIGTERM, SIGINT and SIGHUP on to each of them.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import structlog

from fairpath import logs
from fairpath.api.server import Running, Services, build_grpc_server
from fairpath.audit import DecisionStore, open_store
from fairpath.audit.checkpoint import CheckpointSigner
from fairpath.audit.checkpoint_writer import CheckpointWriter, writer_for
from fairpath.config import Config
from fairpath.console.runner import start_console
from fairpath.errors import CredentialsError, StoreError
from fairpath.recording import DecisionRecorder
from fairpath.serving.evaluator import Evaluator
from fairpath.serving.reload import Reloader
from fairpath.serving.watch import ReloadDaemon, reload_on_sighup
from fairpath.workers import WorkerSupervisor

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_POLICY = 2

_log = structlog.get_logger(__name__)


def build_server(
    config: Config,
    evaluator: Evaluator,
    reloader: Reloader | None = None,
    *,
    store: DecisionStore | None = None,
) -> Running:
    """Build the service described by ``config`` around ``evaluator``, bound but not started.

    ``reloader`` backs ``PolicyService.Reload`` and ``GetStatus``'s last reload;
    without one, ``Reload`` answers FAILED_PRECONDITION. Decisions are recorded in
    ``store``, or in the store ``config.store`` names when none is given.

    Raises:
        RuntimeError: The address cannot be bound.
        CredentialsError: A TLS file, the auth config or the checkpoint key cannot be used.
        StoreError: The decision store cannot be opened (StoreUnavailableError when unreachable).

    """
    signer = CheckpointSigner.load(config.checkpoint_key) if config.checkpoint_key else None
    store = store if store is not None else open_store(config.store)
    services = Services(
        evaluator=evaluator,
        recorder=DecisionRecorder(evaluator, store),
        store=store,
        reloader=reloader,
        signer=signer,
    )
    return build_grpc_server(config, services)


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
