"""The sandboxd gRPC server: runtime service, health, reflection, token check."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from sandgate.sandbox.v1 import runtime_service_pb2 as pb
from sandgate.sandbox.v1 import runtime_service_pb2_grpc as pb_grpc

from .browser import BrowserSession
from .exec import CommandRunner
from .files import WorkspaceFiles
from .kernel import KernelSession
from .limits import Limits
from .oom import OomCounter
from .paths import Workspace
from .servicer import SandboxRuntimeServicer

__all__ = [
    "RUNTIME_SERVICE",
    "BearerTokenInterceptor",
    "HealthReporter",
    "build_server",
    "new_health_servicer",
]

RUNTIME_SERVICE: str = pb.DESCRIPTOR.services_by_name["SandboxRuntime"].full_name
_OPEN_METHOD_PREFIXES = ("/grpc.health.v1.Health/",)
"""Probes need no token: a health answer reveals nothing."""

Handler = Any
"""grpc.RpcMethodHandler (grpc ships no types)."""


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc is Any
    """Requires ``authorization: Bearer <token>`` (compared in constant time)."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("an empty token would let anyone in")
        self._token = token.encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(_OPEN_METHOD_PREFIXES):
            return handler
        if self._authorized(handler_call_details.invocation_metadata or ()):
            return handler
        return _denied(handler)

    def _authorized(self, metadata: Any) -> bool:
        for key, value in metadata:
            if key != "authorization":
                continue
            raw = value if isinstance(value, bytes) else str(value).encode()
            scheme, _, presented = raw.strip().partition(b" ")
            if scheme.lower() == b"bearer" and hmac.compare_digest(presented.strip(), self._token):
                return True
        return False


_DENIED = "missing or invalid token; send the metadata 'authorization: Bearer <sandbox token>'"


async def _deny(request: object, context: grpc.aio.ServicerContext) -> None:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, _DENIED)


def _denied(handler: Handler) -> Handler:
    """A handler of the same shape as ``handler`` that answers UNAUTHENTICATED."""
    factory = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[(handler.request_streaming, handler.response_streaming)]
    return factory(
        _deny,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class HealthReporter(Protocol):
    """What sandboxd needs of a grpc.health.v1 servicer."""

    async def set(self, service: str, status: int) -> None: ...

    async def enter_graceful_shutdown(self) -> None: ...


def new_health_servicer() -> HealthReporter:
    """A grpc.health.v1 servicer for asyncio servers."""
    servicer: HealthReporter = health_aio.HealthServicer()
    return servicer


async def build_server(
    *,
    workspace: Path,
    token: str,
    listen: str,
    kernel: KernelSession,
    limits: Limits | None = None,
    health: HealthReporter | None = None,
    oom_file: Path | None = None,
    browser: BrowserSession | None = None,
) -> tuple[grpc.aio.Server, str]:
    """Build and start the sandboxd server.

    Args:
        workspace: The directory every path is confined to.
        token: The sandbox's own token; every call but health checks must send it.
        listen: ``unix:/path/to.sock``, or ``HOST:PORT`` (port 0 picks one).
        kernel: The Python kernel; the caller owns it and shuts it down after
            stopping the server.
        limits: Server limits (defaults: ``Limits()``).
        health: A servicer from ``new_health_servicer()`` when the caller wants
            to flip it to NOT_SERVING on shutdown; one is made otherwise.
        oom_file: The sandbox cgroup's file with an ``oom_kill N`` line, so
            that Exec reports commands killed for memory.
        browser: The sandbox's browser session; the caller owns it and shuts
            it down after stopping the server. Without one, BrowserAction
            answers UNAVAILABLE.

    Returns:
        The started server and the address it is bound to (with the real port).

    Raises:
        RuntimeError: the address cannot be bound.
    """
    limits = limits or Limits()
    ws = Workspace(workspace)
    server = grpc.aio.server(
        interceptors=[BearerTokenInterceptor(token)],
        options=[
            ("grpc.max_receive_message_length", limits.max_message_bytes),
            ("grpc.max_send_message_length", limits.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ],
    )
    servicer = SandboxRuntimeServicer(
        files=WorkspaceFiles(ws, limits),
        commands=CommandRunner(ws, limits, oom=OomCounter(oom_file)),
        kernel=kernel,
        browser=browser,
    )
    pb_grpc.add_SandboxRuntimeServicer_to_server(servicer, server)
    health = health if health is not None else new_health_servicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        [
            RUNTIME_SERVICE,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    port = server.add_insecure_port(listen)
    if not port:
        raise RuntimeError(f"cannot listen on {listen}")
    await server.start()
    for service in ("", RUNTIME_SERVICE):
        await health.set(service, health_pb2.HealthCheckResponse.SERVING)
    return server, _bound_address(listen, port)


def _bound_address(listen: str, port: int) -> str:
    if listen.startswith("unix:"):
        return listen
    host, _, _ = listen.rpartition(":")
    return f"{host}:{port}"
