"""Assemble and run the SandboxService gRPC server."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from sandbox_svc.auth import TenantResolver
from sandbox_svc.backend import SandboxBackend
from sandbox_svc.deployment import open_deployment
from sandbox_svc.manager import Limits, SandboxManager
from sandbox_svc.metrics import ControlPlaneMetrics
from sandbox_svc.registry import Registry
from sandbox_svc.servicer import SandboxServiceServicer
from sandbox_svc.settings import SandboxServiceSettings
from sandbox_svc.templates import load_templates
from sandgate.sandbox.v1 import sandbox_service_pb2, sandbox_service_pb2_grpc

__all__ = ["RunningService", "build_server", "serve"]

logger = logging.getLogger(__name__)
SERVICE_NAME = sandbox_service_pb2.DESCRIPTOR.services_by_name["SandboxService"].full_name


@dataclass
class RunningService:
    server: grpc.aio.Server
    port: int
    address: str
    manager: SandboxManager
    health: health.aio.HealthServicer
    registry: Registry
    settings: SandboxServiceSettings
    metrics_server: WSGIServer | None = None

    async def stop(self, grace: float = 2.0) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server.server_close()
        await self.manager.stop(delete_all=self.settings.auto_cleanup)
        await self.registry.close()


async def build_server(settings: SandboxServiceSettings,
                       backend: SandboxBackend | None = None,
                       registry: Registry | None = None) -> RunningService:
    """Create, start and return the server; its manager has recovered old sandboxes.

    ``backend`` and ``registry`` default to what the settings' deployment names
    (see ``sandbox_svc.deployment``); the server closes them when it stops.
    """
    catalog = load_templates(settings.templates_file)
    if settings.pool_size is not None:
        catalog = catalog.with_pool_size(settings.pool_size)
    catalog.get(settings.default_template)
    deployment = await open_deployment(settings, backend=backend, registry=registry)
    backend, registry = deployment.backend, deployment.registry
    tenants = TenantResolver(settings.tenant_keys(), settings.service_keys())
    metrics = ControlPlaneMetrics()
    manager = SandboxManager(catalog, registry, backend, Limits(
        max_sandboxes=settings.max_sandboxes,
        id_prefix=settings.id_prefix, reap_interval_s=settings.reap_interval_s), metrics)
    await manager.start()

    host = settings.host
    if tenants.open and host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("no API key configured: binding 127.0.0.1 instead of %s "
                       "(set SANDGATE_API_KEYS or BEARER_TOKEN to listen on other addresses)",
                       host)
        host = "127.0.0.1"
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 4 * 1024 * 1024)])
    sandbox_service_pb2_grpc.add_SandboxServiceServicer_to_server(
        SandboxServiceServicer(manager, tenants, settings.default_template), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = server.add_insecure_port(f"{host}:{settings.port}")
    await server.start()
    await health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    metrics_server = None
    if settings.metrics_port:
        metrics_server, _ = start_http_server(settings.metrics_port, addr=host,
                                              registry=metrics.registry)
    return RunningService(server, port, f"{host}:{port}", manager, health_servicer, registry,
                          settings, metrics_server)


async def serve(settings: SandboxServiceSettings) -> None:
    """Run until SIGINT/SIGTERM: health NOT_SERVING first, then a graceful stop."""
    running = await build_server(settings)
    logger.info("SandboxService listening on %s (state %s)", running.address,
                settings.state_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logger.info("stopping (auto_cleanup=%s)", settings.auto_cleanup)
    await running.stop()
