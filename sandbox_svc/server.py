"""Assemble and run the SandboxService gRPC server."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

from sandbox_svc.errors import IsolationUnavailableError
from sandbox_svc.local.backend import LocalBackend
from sandbox_svc.manager import Limits, SandboxBackend, SandboxManager
from sandbox_svc.metrics import ControlPlaneMetrics
from sandbox_svc.registry import SqliteRegistry
from sandbox_svc.servicer import STATUS_CODES, SandboxServiceServicer
from sandbox_svc.settings import SandboxServiceSettings
from sandbox_svc.templates import load_templates
from sandgate.sandbox.v1 import sandbox_service_pb2, sandbox_service_pb2_grpc
from sandgate.service.assembly import (
    GrpcServer,
    ListenError,
    create_grpc_server,
    serve_until_signal,
)
from sandgate.service.binding import listen_host
from sandgate.service.boundary import ErrorBoundary
from sandgate.service.metrics import serve_metrics

__all__ = ["RunningService", "build_server", "serve"]

logger = logging.getLogger(__name__)
SERVICE_NAME = sandbox_service_pb2.DESCRIPTOR.services_by_name["SandboxService"].full_name


@dataclass
class RunningService:
    """A started SandboxService: where it listens, its manager and its registry."""

    grpc: GrpcServer
    manager: SandboxManager
    registry: SqliteRegistry
    settings: SandboxServiceSettings

    @property
    def port(self) -> int:
        """The bound gRPC port."""
        return self.grpc.port

    @property
    def address(self) -> str:
        """``host:port`` of the gRPC server."""
        return self.grpc.address

    async def stop(self, grace: float = 2.0) -> None:
        """Health NOT_SERVING, drain, then stop metrics, the manager and the registry.

        The manager deletes every sandbox when ``settings.auto_cleanup`` is set.
        """
        logger.info("stopping (auto_cleanup=%s)", self.settings.auto_cleanup)
        await self.grpc.stop(grace)


async def build_server(settings: SandboxServiceSettings,
                       backend: SandboxBackend | None = None) -> RunningService:
    """Create, start and return the server; its manager has recovered old sandboxes."""
    if settings.deployment != "local":
        raise IsolationUnavailableError(
            "CONTAINER_DEPLOYMENT=k8s is not available in this build; use 'local'")
    if settings.redis_enabled:
        raise IsolationUnavailableError(
            "REDIS_ENABLED=true is not available in this build; the registry is SQLite "
            f"under {settings.state_dir}")
    catalog = load_templates(settings.templates_file)
    if settings.pool_size is not None:
        catalog = catalog.with_pool_size(settings.pool_size)
    catalog.get(settings.default_template)
    backend = backend or LocalBackend.for_host(settings.state_dir)
    registry = SqliteRegistry(settings.state_dir / "registry.db")
    auth = settings.authenticator()
    metrics = ControlPlaneMetrics()
    manager = SandboxManager(catalog, registry, backend, Limits(
        max_sandboxes=settings.max_sandboxes, uid_base=settings.uid_base,
        id_prefix=settings.id_prefix, reap_interval_s=settings.reap_interval_s), metrics)

    host = listen_host(settings.host, keyed=not auth.open, server="sandbox_svc",
                       keys_hint="SANDGATE_API_KEYS or BEARER_TOKEN")
    servicer = SandboxServiceServicer(manager, auth, settings.default_template)
    try:
        # Bound before the manager starts: a busy port fails before any sandbox starts.
        server = await create_grpc_server(
            f"{host}:{settings.port}",
            partial(sandbox_service_pb2_grpc.add_SandboxServiceServicer_to_server, servicer),
            boundary=ErrorBoundary(STATUS_CODES, server="sandbox_svc"), services=[SERVICE_NAME])
    except ListenError:
        registry.close()
        raise
    server.close_with(registry.close)
    try:
        await manager.start()
        server.close_with(partial(manager.stop, delete_all=settings.auto_cleanup))
        if settings.metrics_port:
            server.close_with(serve_metrics(metrics.registry, host, settings.metrics_port).close)
        await server.start()
    except BaseException:
        await server.stop(0)
        raise
    return RunningService(server, manager, registry, settings)


async def serve(settings: SandboxServiceSettings) -> None:
    """Run until SIGINT/SIGTERM: health NOT_SERVING first, then a graceful stop."""
    running = await build_server(settings)
    logger.info("SandboxService listening on %s (state %s)", running.address,
                settings.state_dir)
    await serve_until_signal(running.stop)
