"""Assemble and run the SandboxService gRPC server."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

from sandbox_svc.backend import SandboxBackend
from sandbox_svc.deployment import open_deployment
from sandbox_svc.manager import Limits, SandboxManager
from sandbox_svc.metrics import ControlPlaneMetrics
from sandbox_svc.registry import Registry
from sandbox_svc.servicer import STATUS_CODES, SandboxServiceServicer
from sandbox_svc.settings import SandboxServiceSettings
from sandbox_svc.templates import load_templates
from sandgate.sandbox.v1 import sandbox_service_pb2, sandbox_service_pb2_grpc
from sandgate.service.assembly import GrpcServer, create_grpc_server, serve_until_signal
from sandgate.service.binding import listen_host
from sandgate.service.boundary import ErrorBoundary
from sandgate.service.metrics import serve_metrics

__all__ = ["RunningService", "build_server", "serve"]

logger = logging.getLogger(__name__)
SERVICE_NAME = sandbox_service_pb2.DESCRIPTOR.services_by_name["SandboxService"].full_name


class _StopPlan:
    """What stopping the manager deletes, by how far the start got.

    A start that fails deletes nothing it adopted (that is the previous run's work,
    handed on to the next start); a running service deletes all of its sandboxes
    when ``auto_cleanup`` is set.
    """

    def __init__(self, manager: SandboxManager, auto_cleanup: bool) -> None:
        self._manager = manager
        self._auto_cleanup = auto_cleanup
        self.delete = False
        self.keep_adopted = True

    async def stop(self) -> None:
        await self._manager.stop(delete_all=self.delete and self._auto_cleanup,
                                 keep_adopted=self.keep_adopted)


@dataclass
class RunningService:
    """A started SandboxService: where it listens, its manager and its registry."""

    grpc: GrpcServer
    manager: SandboxManager
    registry: Registry
    settings: SandboxServiceSettings
    _plan: _StopPlan

    @property
    def port(self) -> int:
        """The bound gRPC port."""
        return self.grpc.port

    @property
    def address(self) -> str:
        """``host:port`` of the gRPC server."""
        return self.grpc.address

    async def stop(self, grace: float = 2.0) -> None:
        """Health NOT_SERVING, drain, then stop metrics, the manager and the registry,
        and release the state dir.

        The manager deletes this instance's sandboxes when ``settings.auto_cleanup``
        is set.
        """
        logger.info("stopping (auto_cleanup=%s)", self.settings.auto_cleanup)
        self._plan.delete, self._plan.keep_adopted = True, False
        await self.grpc.stop(grace)

    async def abort(self, grace: float = 0.5) -> None:
        """Stop after a start that failed around this service (e.g. ``sandgate up``'s
        gateway could not listen): sandboxes adopted from a previous run are kept for
        the next start; only those this instance started go (with ``auto_cleanup``)."""
        logger.info("stopping after a failed start; adopted sandboxes are kept")
        self._plan.delete, self._plan.keep_adopted = True, True
        await self.grpc.stop(grace)


async def build_server(settings: SandboxServiceSettings,
                       backend: SandboxBackend | None = None,
                       registry: Registry | None = None) -> RunningService:
    """Create, start and return the server; its manager has recovered old sandboxes.

    ``backend`` and ``registry`` default to what the settings' deployment names
    (see ``sandbox_svc.deployment``, which first takes the state dir's lock); the
    server closes them, and releases the lock, when it stops. Every port is bound
    before the manager looks at any sandbox, and a start that fails deletes none
    of the sandboxes it adopted.

    Raises:
        StateDirInUseError: another running Sandgate holds the state dir.
        ListenError: the gRPC or metrics port is in use.
        IsolationUnavailableError: this host cannot run the deployment or a template.
        RegistryUnavailableError: the registry cannot be opened.
        TemplateNotFoundError: the default template is not in the catalog.
    """
    catalog = load_templates(settings.templates_file)
    if settings.pool_size is not None:
        catalog = catalog.with_pool_size(settings.pool_size)
    catalog.get(settings.default_template)
    deployment = await open_deployment(settings, backend=backend, registry=registry)
    backend, registry = deployment.backend, deployment.registry
    auth = settings.authenticator()
    metrics = ControlPlaneMetrics()
    manager = SandboxManager(catalog, registry, backend, Limits(
        max_sandboxes=settings.max_sandboxes,
        id_prefix=settings.id_prefix, reap_interval_s=settings.reap_interval_s,
        sole_user=deployment.sole_user), metrics)
    plan = _StopPlan(manager, settings.auto_cleanup)

    host = listen_host(settings.host, keyed=not auth.open, server="sandbox_svc",
                       keys_hint="SANDGATE_API_KEYS or BEARER_TOKEN")
    servicer = SandboxServiceServicer(manager, auth, settings.default_template)
    try:
        server = await create_grpc_server(
            f"{host}:{settings.port}",
            partial(sandbox_service_pb2_grpc.add_SandboxServiceServicer_to_server, servicer),
            boundary=ErrorBoundary(STATUS_CODES, server="sandbox_svc"), services=[SERVICE_NAME])
    except BaseException:
        await plan.stop()  # closes the backend; deletes nothing
        await registry.close()
        deployment.release()
        raise
    # Run in reverse order once the server stopped: manager, registry, then the lock.
    server.close_with(deployment.release)
    server.close_with(registry.close)
    server.close_with(plan.stop)
    try:
        # Every port is bound before the manager looks at a sandbox.
        if settings.metrics_port:
            server.close_with(serve_metrics(metrics.registry, host, settings.metrics_port).close)
        await manager.start()
        plan.delete = True  # from here on, what this instance started is its to delete
        await server.start()
    except BaseException:
        await server.stop(0)
        raise
    return RunningService(server, manager, registry, settings, plan)


async def serve(settings: SandboxServiceSettings) -> None:
    """Run until SIGINT/SIGTERM: health NOT_SERVING first, then a graceful stop."""
    running = await build_server(settings)
    logger.info("SandboxService listening on %s (state %s)", running.address,
                settings.state_dir)
    await serve_until_signal(running.stop)
