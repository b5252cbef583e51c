"""The sandboxd gRPC server: runtime service, health, reflection, token check.

Assembled by the service kit (sandgate.service): its error boundary answers
domain errors by ``STATUS_CODES`` and refuses calls without the sandbox's
token, except health probes (a health answer reveals nothing).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from sandgate.sandbox.v1 import runtime_service_pb2 as pb
from sandgate.sandbox.v1 import runtime_service_pb2_grpc as pb_grpc
from sandgate.service.assembly import GrpcServer, create_grpc_server
from sandgate.service.boundary import ErrorBoundary
from sandgate.service.keys import Authenticator

from .exec import CommandRunner
from .lazy import Lazy
from .limits import Limits
from .oom import OomCounter
from .paths import Workspace
from .servicer import STATUS_CODES, SandboxRuntimeServicer

if TYPE_CHECKING:  # imported on first use (see .lazy)
    from .browser import BrowserSession
    from .files import WorkspaceFiles
    from .kernel import KernelSession

__all__ = ["RUNTIME_SERVICE", "build_server"]

RUNTIME_SERVICE: str = pb.DESCRIPTOR.services_by_name["SandboxRuntime"].full_name
_OPEN_METHODS = ("/grpc.health.v1.Health/",)
"""Probes need no token: a health answer reveals nothing."""

T = TypeVar("T")


async def build_server(
    *,
    workspace: Path,
    token: str,
    listen: str,
    kernel: KernelSession | Lazy[KernelSession],
    limits: Limits | None = None,
    oom_file: Path | None = None,
    browser: BrowserSession | Lazy[BrowserSession] | None = None,
) -> GrpcServer:
    """Build and start the sandboxd server.

    Args:
        workspace: The directory every path is confined to.
        token: The sandbox's own token; every call but health checks must send it
            as ``authorization: Bearer <token>``.
        listen: ``unix:/path/to.sock``, or ``HOST:PORT`` (port 0 picks one).
        kernel: The Python kernel, or a :class:`~.lazy.Lazy` one made on the first
            cell; the caller owns it and shuts it down after stopping the server
            (e.g. with ``server.close_with(kernel.shutdown)``).
        limits: Server limits (defaults: ``Limits()``).
        oom_file: The sandbox cgroup's file with an ``oom_kill N`` line, so
            that Exec reports commands killed for memory.
        browser: The sandbox's browser session; the caller owns it and shuts
            it down after stopping the server (it may be :class:`~.lazy.Lazy`, made
            on the first browser call). Without one, BrowserAction answers
            UNAVAILABLE.

    Returns:
        The started server; its ``address`` has the real port, and ``stop()``
        turns health NOT_SERVING before draining calls.

    Raises:
        ValueError: the token is empty.
        ListenError: the address cannot be bound.
    """
    if not token:
        raise ValueError("an empty token would let anyone in")
    limits = limits or Limits()
    ws = Workspace(workspace)
    servicer = SandboxRuntimeServicer(
        files=Lazy(partial(_workspace_files, ws, limits)),
        commands=CommandRunner(ws, limits, oom=OomCounter(oom_file)),
        kernel=_lazy(kernel),
        browser=None if browser is None else _lazy(browser),
    )
    tokens = Authenticator({token: "sandbox"}, credential="sandbox token")
    boundary = ErrorBoundary(
        STATUS_CODES,
        server="sandboxd",
        authenticate=tokens.authenticate_metadata,
        open_methods=_OPEN_METHODS,
    )
    server = await create_grpc_server(
        listen,
        partial(pb_grpc.add_SandboxRuntimeServicer_to_server, servicer),
        boundary=boundary,
        services=[RUNTIME_SERVICE],
        max_receive_bytes=limits.max_message_bytes,
        max_send_bytes=limits.max_message_bytes,
    )
    await server.start()
    return server


def _workspace_files(workspace: Workspace, limits: Limits) -> WorkspaceFiles:
    from .files import WorkspaceFiles

    return WorkspaceFiles(workspace, limits)


def _lazy(value: T | Lazy[T]) -> Lazy[T]:
    return value if isinstance(value, Lazy) else Lazy.of(value)
