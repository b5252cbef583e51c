"""Server assembly: a grpc.aio server with health, reflection and an error boundary,
started, and stopped in the graceful order.

    server = await create_grpc_server("127.0.0.1:0", register, boundary=boundary,
                                      services=[SERVICE_NAME])
    server.close_with(manager.stop)          # after the server has stopped
    await server.start()                     # health SERVING
    await serve_until_signal(server.stop)    # SIGINT/SIGTERM: NOT_SERVING, drain, close

Every server binds with ``grpc.so_reuseport = 0``: gRPC Python sets
SO_REUSEPORT by default, so a second server on a busy port would start without
error and the kernel would split connections between the two. Here a busy port
fails at start with :class:`ListenError`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any, Protocol

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import SERVICE_NAME as HEALTH_SERVICE
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from sandgate.service.boundary import ErrorBoundary

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "GrpcServer",
    "HealthReporter",
    "ListenError",
    "bound_address",
    "create_grpc_server",
    "serve_until_signal",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""gRPC's own default for received messages, stated so that it is a choice."""
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ListenError(OSError):
    """The server cannot bind its address: it is in use, or not an address of this host."""


class HealthReporter(Protocol):
    """What a server needs of a grpc.health.v1 servicer."""

    async def set(self, service: str, status: int) -> None: ...

    async def enter_graceful_shutdown(self) -> None: ...


class GrpcServer:
    """A bound grpc.aio server with its health servicer; :meth:`stop` is the graceful order."""

    def __init__(self, server: grpc.aio.Server, port: int, address: str,
                 health: HealthReporter, services: Sequence[str], name: str) -> None:
        self.server = server
        """The grpc.aio server (servicers are registered by ``create_grpc_server``)."""
        self.port = port
        """The bound port (1 for a Unix socket)."""
        self.address = address
        """Where clients connect: ``host:port`` with the real port, or ``unix:/path``."""
        self.health = health
        self.services = tuple(services)
        self.name = name
        self._closing = AsyncExitStack()

    def close_with(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` (sync, or returning an awaitable) once the server has stopped.

        Callbacks run in reverse order of registration, like an exit stack: register
        a resource's close right after creating it.
        """
        async def close() -> None:
            result = callback()
            if inspect.isawaitable(result):
                await result

        self._closing.push_async_callback(close)

    async def start(self) -> None:
        """Start serving; health answers SERVING for the server and each service."""
        await self.server.start()
        for service in ("", *self.services):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float | None = 2.0) -> None:
        """Health NOT_SERVING for all services, drain calls for up to ``grace`` seconds
        (None: wait for all), cancel the rest, then run the close callbacks.

        Raises:
            Exception: what a close callback raised (the other callbacks still run).
        """
        logger.info("%s: stopping: health NOT_SERVING, draining calls for up to %s s",
                    self.name, "unlimited" if grace is None else f"{grace:g}")
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self._closing.aclose()


def bound_address(listen: str, port: int) -> str:
    """The address clients use: ``listen`` with its port replaced by the bound one."""
    if listen.startswith("unix:"):
        return listen
    host, _, _ = listen.rpartition(":")
    return f"{host}:{port}"


async def create_grpc_server(
    address: str, register: Callable[[grpc.aio.Server], object], *, boundary: ErrorBoundary,
    services: Sequence[str], max_receive_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    max_send_bytes: int | None = None,
) -> GrpcServer:
    """A grpc.aio server bound to ``address``, with health, reflection and ``boundary``;
    not yet started.

    Args:
        address: ``host:port`` (port 0 picks a free one) or ``unix:/path``.
        register: adds the servicers, e.g. ``lambda s: add_XServicer_to_server(x, s)``.
        boundary: the server's error boundary (and authentication, if it has any).
        services: the full names of the services ``register`` adds, for health and
            reflection.
        max_receive_bytes: the largest message accepted (RESOURCE_EXHAUSTED beyond).
        max_send_bytes: the largest message sent; None leaves gRPC's default (no limit).

    Returns:
        The server, bound; ``start()`` it.

    Raises:
        ListenError: the address is in use (the server does not share ports) or cannot
            be bound.
    """
    options: list[tuple[str, Any]] = [("grpc.so_reuseport", 0),
                                      ("grpc.max_receive_message_length", max_receive_bytes)]
    if max_send_bytes is not None:
        options.append(("grpc.max_send_message_length", max_send_bytes))
    server = grpc.aio.server(interceptors=[boundary], options=options)
    register(server)
    health: HealthReporter = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (*services, HEALTH_SERVICE, reflection.SERVICE_NAME), server)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError:  # grpc's way of saying the bind failed
        port = 0
    if not port:
        await server.stop(None)  # an unstarted server left to the GC warns
        raise ListenError(f"cannot listen on {address}: the address is in use or not "
                          "available on this host")
    return GrpcServer(server, port, bound_address(address, port), health, services,
                      boundary.server_name)


async def serve_until_signal(stop: Callable[[], Awaitable[object]]) -> None:
    """Wait for SIGINT or SIGTERM, then await ``stop()`` (e.g. :meth:`GrpcServer.stop`).

    A second signal while stopping is ignored: the graceful stop runs to its end.
    """
    received = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, received.set)
    try:
        await received.wait()
        logger.info("stop signal received")
        await stop()
    finally:
        for signum in _STOP_SIGNALS:
            loop.remove_signal_handler(signum)
