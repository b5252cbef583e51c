"""Assemble and run the gateway: MCP over HTTP, ToolGateway over gRPC, one catalog."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from importlib import metadata

import grpc
import uvicorn
from opentelemetry.trace import TracerProvider

from gateway.audit import AuditLog
from gateway.calls import ToolCalls, release_tool_spec
from gateway.catalog import Allowlist, Catalog
from gateway.control import GrpcSandboxControl
from gateway.federation import Federation, load_upstreams
from gateway.grpc_server import SERVICE_NAME, STATUS_CODES, ToolGatewayServicer, retry_after
from gateway.mcp_server import McpHttpApp
from gateway.ratelimit import RateLimiter
from gateway.sessions import SandboxControl, SessionBinder
from gateway.settings import GatewaySettings
from gateway.telemetry import GatewayMetrics, tracer_for
from gateway.tools import SandboxToolGroup, default_groups
from gateway.workers import READY_LINE, WorkerExitedError, Workers, reuseport_sockets
from sandgate.gateway.v1 import gateway_service_pb2_grpc as pb_grpc
from sandgate.service.assembly import (
    GrpcServer,
    ListenError,
    create_grpc_server,
    serve_until_signal,
)
from sandgate.service.binding import listen_host
from sandgate.service.boundary import ErrorBoundary
from sandgate.service.keys import Authenticator

__all__ = ["RunningGateway", "build_gateway", "build_tool_calls", "serve", "serve_worker",
           "version"]

logger = logging.getLogger(__name__)
_HTTP_STOP_S = 3.0
"""How long a stop waits for uvicorn, whose own graceful shutdown takes up to 2 s."""


def version() -> str:
    try:
        return metadata.version("sandgate")
    except metadata.PackageNotFoundError:
        return "0.0.0"


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the process owner decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class RunningGateway:
    settings: GatewaySettings
    calls: ToolCalls
    binder: SessionBinder
    federation: Federation
    metrics: GatewayMetrics
    host: str
    http_port: int
    grpc_port: int
    open: bool
    """True without API keys: the gateway then listens on loopback only."""
    _http: _EmbeddedUvicorn
    _grpc: GrpcServer | None
    """None in a worker beyond the first: only worker 0 serves gRPC."""
    _close: Callable[[], Awaitable[None]]
    workers: Workers | None = None
    """The other worker processes, when worker 0 has any."""

    @property
    def mcp_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.http_port}/mcp"

    @property
    def grpc_address(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    async def stop(self, grace: float = 2.0) -> None:
        """Health NOT_SERVING, then stop the other workers and both listeners, then the
        background work."""
        if self._grpc is not None:
            await self._grpc.health.enter_graceful_shutdown()  # before any listener stops
        if self.workers is not None:
            await self.workers.stop()
        self._http.should_exit = True
        if self._grpc is not None:
            await self._grpc.stop(grace)  # drains gRPC calls, then runs self._close
        else:
            await self._close()

    async def serve_until_signal(self, stop: Callable[[], Awaitable[object]] | None = None
                                 ) -> None:
        """Serve until SIGINT/SIGTERM, then ``stop()`` (default: this gateway's).

        Raises:
            WorkerExitedError: another worker exited meanwhile (``stop()`` has run).
        """
        stop = stop or self.stop
        if self.workers is None:
            await serve_until_signal(stop)
            return
        signalled = asyncio.create_task(serve_until_signal(stop))
        lost = asyncio.create_task(self.workers.lost.wait())
        try:
            await asyncio.wait({signalled, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
        if signalled.done():
            signalled.result()
            return
        signalled.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await signalled
        await stop()
        raise WorkerExitedError(self.workers.lost_detail)


async def _join_http(task: asyncio.Task[None]) -> None:
    """Wait for uvicorn to finish its graceful exit; cancel it if it takes too long."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_HTTP_STOP_S):
            await task
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def build_tool_calls(settings: GatewaySettings, control: SandboxControl, *,
                     metrics: GatewayMetrics, federation: Federation, audit: AuditLog,
                     tracer_provider: TracerProvider | None = None,
                     groups: Sequence[SandboxToolGroup] | None = None) -> ToolCalls:
    """The tool service without listeners (the stdio server uses it directly)."""
    groups = list(groups) if groups is not None else default_groups(settings.max_result_bytes)
    catalog = Catalog([s for g in groups for s in g.specs], settings.template_routes(),
                      [release_tool_spec()], Allowlist(settings.tool_allowlist),
                      federation.tools)
    binder = SessionBinder(control, idle_s=settings.session_idle_s, metrics=metrics,
                           release_idle=settings.workers == 1)
    return ToolCalls(catalog, {g.name: g for g in groups}, binder, federation, audit, metrics,
                     tracer_for(tracer_provider), progress_interval_s=settings.progress_interval_s)


def _listen(host: str, port: int, workers: int) -> list[socket.socket]:
    """One bound MCP HTTP socket per worker (see gateway.workers for several).

    Raises:
        ListenError: the port is in use or the address is not available here.
    """
    if workers > 1:
        return reuseport_sockets(host, port, workers)
    return [_listen_one(host, port)]


def _listen_one(host: str, port: int) -> socket.socket:
    """The MCP HTTP socket, bound; a busy port is an error (SO_REUSEADDR only lets a
    port in TIME_WAIT be reused, never one another server listens on).

    Raises:
        ListenError: the port is in use or the address is not available here.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so,
    # and Nagle's algorithm would add ~40 ms to every small response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port} for MCP HTTP: "
                          f"{exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


async def build_gateway(settings: GatewaySettings, *, control: SandboxControl | None = None,
                        tracer_provider: TracerProvider | None = None,
                        audit: AuditLog | None = None,
                        worker_socket: socket.socket | None = None) -> RunningGateway:
    """Start the gateway and return it once its listeners (and workers) accept connections.

    Args:
        settings: the configuration.
        control: the control plane; default: sandbox_svc at ``settings.sandbox_target``.
        tracer_provider: where spans go; default: the global provider.
        audit: the audit log; default: ``settings.audit_log`` or the ``sandgate.audit`` logger.
        worker_socket: set in a worker beyond the first: serve MCP HTTP on this bound
            socket only (no gRPC face, no workers of its own).

    Raises:
        ListenError: a port is in use or the address is not available here.
        WorkerExitedError: a worker failed to start.
    """
    auth = settings.authenticator()
    host = listen_host(settings.host, keyed=not auth.open, server="gateway",
                       keys_hint="SANDGATE_API_KEYS or BEARER_TOKEN")
    metrics = GatewayMetrics()
    audit = audit or (AuditLog.to_file(settings.audit_log) if settings.audit_log else AuditLog())
    configs = load_upstreams(settings.upstreams_file, settings.upstream_timeout_s) \
        if settings.upstreams_file else []
    federation = Federation(configs, metrics=metrics)
    control = control or GrpcSandboxControl(settings.sandbox_target,
                                            settings.control_plane_key())
    calls = build_tool_calls(settings, control, metrics=metrics, federation=federation,
                             audit=audit, tracer_provider=tracer_provider)
    await _check_control_plane(calls, settings)
    await federation.start()
    calls.binder.start()
    try:
        return await _listen_and_serve(settings, host, auth, calls, federation, metrics, audit,
                                       worker_socket)
    except BaseException:
        await federation.close()
        await calls.binder.close()
        audit.close()
        raise


async def _listen_and_serve(settings: GatewaySettings, host: str, auth: Authenticator,
                            calls: ToolCalls, federation: Federation, metrics: GatewayMetrics,
                            audit: AuditLog, worker_socket: socket.socket | None
                            ) -> RunningGateway:
    limiter = RateLimiter(settings.rate_limit_per_s, settings.burst())
    front = McpHttpApp(calls, auth, limiter, calls.binder, metrics, version=version(),
                       host=host, max_request_bytes=settings.max_request_bytes,
                       session_idle_s=settings.session_idle_s,
                       legacy_sessions=settings.legacy_sessions,
                       health=lambda: {"upstreams": [s.__dict__ for s in federation.status()],
                                       "bound_sandboxes": len(calls.binder.bindings),
                                       "worker_pid": os.getpid()})
    if worker_socket is not None:
        sock, others = worker_socket, []
    else:
        sock, *others = _listen(host, settings.port, settings.workers)
    # log_config=None: uvicorn's records reach the process's own handler (text or JSON).
    http = _EmbeddedUvicorn(uvicorn.Config(front.app(), log_level="warning", access_log=False,
                                           log_config=None, lifespan="on",
                                           timeout_graceful_shutdown=2))
    http_task = asyncio.create_task(http.serve(sockets=[sock]), name="sandgate-gateway-http")
    try:
        async with asyncio.timeout(10):
            while not http.started:
                if http_task.done():
                    raise RuntimeError("the MCP HTTP server failed to start; see the log above")
                await asyncio.sleep(0.005)
        grpc_server = None
        workers = None
        if worker_socket is None:
            grpc_server = await _start_grpc(settings, host, calls, auth, limiter, metrics)
        if others:
            workers = Workers()
            try:
                await workers.start(settings, others)
            except BaseException:
                assert grpc_server is not None
                await grpc_server.stop(None)
                raise
    except BaseException:
        for other in others:
            other.close()
        http.should_exit = True
        with contextlib.suppress(Exception):
            await http_task
        raise

    async def close() -> None:
        """Once the listeners have stopped: HTTP, upstreams, bindings, audit."""
        try:
            await _join_http(http_task)
            await federation.close()
            await calls.binder.close()
        finally:
            audit.close()

    if grpc_server is not None:
        grpc_server.close_with(close)
    return RunningGateway(settings, calls, calls.binder, federation, metrics, host,
                          sock.getsockname()[1], grpc_server.port if grpc_server else 0,
                          auth.open, http, grpc_server, close, workers)


async def _start_grpc(settings: GatewaySettings, host: str, calls: ToolCalls,
                      auth: Authenticator, limiter: RateLimiter, metrics: GatewayMetrics
                      ) -> GrpcServer:
    servicer = ToolGatewayServicer(calls, auth, limiter, metrics)
    grpc_server = await create_grpc_server(
        f"{host}:{settings.grpc_port}",
        partial(pb_grpc.add_ToolGatewayServicer_to_server, servicer),
        boundary=ErrorBoundary(STATUS_CODES, server="gateway", trailers=retry_after),
        services=[SERVICE_NAME], max_receive_bytes=settings.max_request_bytes)
    await grpc_server.start()
    return grpc_server


async def _check_control_plane(calls: ToolCalls, settings: GatewaySettings) -> None:
    """Tell the operator now, not at the first call, when sandbox_svc is unusable."""
    try:
        async with asyncio.timeout(5):
            templates = await calls.binder.templates()
    except (grpc.aio.AioRpcError, TimeoutError) as exc:
        detail = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else "timed out"
        logger.warning("sandbox service at %s is not usable yet (%s); sandbox tools fail "
                       "until it is", settings.sandbox_target, detail)
        return
    for group, template in settings.template_routes().items():
        if template not in templates:
            logger.error("tool group %s is routed to template %r, which sandbox_svc does not "
                         "have (it has %s): its tools will fail; fix SANDGATE_TOOL_TEMPLATES",
                         group, template, ", ".join(sorted(templates)))


async def serve(settings: GatewaySettings) -> None:
    """Run until SIGINT/SIGTERM: health NOT_SERVING first, then a graceful stop.

    Raises:
        ListenError: a port is in use or the address is not available here.
        WorkerExitedError: a worker failed to start, or exited while serving.
    """
    running = await build_gateway(settings)
    workers = f", {settings.workers} workers" if running.workers is not None else ""
    logger.info("gateway: MCP %s, gRPC %s%s%s", running.mcp_url, running.grpc_address, workers,
                " (no API key: loopback only)" if running.open else "")
    await running.serve_until_signal()


async def serve_worker(settings: GatewaySettings, sock: socket.socket) -> None:
    """Run one more worker on ``sock`` (``python -m gateway --worker``) until SIGTERM.

    Raises:
        OSError: the control plane or the socket is unusable.
    """
    running = await build_gateway(settings, worker_socket=sock)
    print(READY_LINE, flush=True)
    await serve_until_signal(running.stop)
