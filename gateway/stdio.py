"""``sandgate mcp``: the MCP face over stdio, for IDEs that launch a command.

A stdio server has one client, so it has one principal and one session key,
fixed when it starts; everything else is the same catalog and tool service as
the HTTP face.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from pathlib import Path

import grpc
from mcp.server.stdio import stdio_server

from gateway.audit import AuditLog
from gateway.calls import Caller, ToolCalls
from gateway.control import GrpcSandboxControl
from gateway.federation import Federation, load_upstreams
from gateway.mcp_server import Context, build_mcp_server
from gateway.server import build_tool_calls, version
from gateway.sessions import SessionKey, check_session_id
from gateway.settings import GatewaySettings
from gateway.telemetry import GatewayMetrics
from sandbox_svc.server import build_server
from sandbox_svc.settings import SandboxServiceSettings
from sandgate.sandbox.v1 import sandbox_service_pb2 as spb
from sandgate.sandbox.v1 import sandbox_service_pb2_grpc as spb_grpc
from sandgate.service.keys import DEFAULT_TENANT, Principal

__all__ = ["run_stdio", "serve_stdio"]

logger = logging.getLogger(__name__)


class _FixedResolver:
    def __init__(self, caller: Caller) -> None:
        self._caller = caller

    def principal(self, ctx: Context) -> Principal:
        return self._caller.principal

    def caller(self, ctx: Context) -> Caller:
        return self._caller


async def serve_stdio(calls: ToolCalls, principal: Principal, session: SessionKey, *,
                      version: str) -> None:
    """Serve MCP on this process's stdin/stdout until the client closes them."""
    server = build_mcp_server(calls, _FixedResolver(Caller(principal, session, "mcp-stdio")),
                              version=version)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


async def _reachable(target: str, key: str) -> bool:
    """Whether a sandbox_svc answers at ``target`` (an auth error counts as an answer)."""
    async with grpc.aio.insecure_channel(target) as channel:
        metadata = (("authorization", f"Bearer {key}"),) if key else ()
        try:
            await spb_grpc.SandboxServiceStub(channel).ListTemplates(
                spb.ListTemplatesRequest(), metadata=metadata, timeout=1.0)
        except grpc.aio.AioRpcError as exc:
            return bool(exc.code() != grpc.StatusCode.UNAVAILABLE
                        and exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED)
    return True


async def run_stdio(settings: GatewaySettings, *, config: Path | None, session: str,
                    user: str = "", embedded: bool | None = None) -> None:
    """``sandgate mcp``: serve MCP on stdio with the sandbox_svc at the configured target,
    or (when none answers there, or ``embedded``) with a private one of its own.

    The private sandbox_svc keeps its state in ``<state dir>/stdio-<pid>`` and deletes
    its sandboxes when the client goes away. Logs go to stderr; stdout is the protocol.
    """
    check_session_id(session, "--session")
    key = settings.control_plane_key()
    running = None
    if embedded or (embedded is None and not await _reachable(settings.sandbox_target, key)):
        base = SandboxServiceSettings.load(config)
        state = base.state_dir / f"stdio-{os.getpid()}"
        # Private and loopback-only: it needs no keys, and this process is its only client.
        running = await build_server(base.model_copy(update={
            "host": "127.0.0.1", "port": 0, "state_dir": state, "auto_cleanup": True,
            "api_keys": "", "bearer_token": "", "metrics_port": None}))
        settings = settings.model_copy(update={"sandbox_target": running.address})
        key = ""
        logger.info("sandgate mcp: private sandbox service on %s (state %s)", running.address,
                    state)
    metrics = GatewayMetrics()
    federation = Federation(load_upstreams(settings.upstreams_file, settings.upstream_timeout_s)
                            if settings.upstreams_file else [], metrics=metrics)
    audit = AuditLog.to_file(settings.audit_log) if settings.audit_log else AuditLog()
    calls = build_tool_calls(settings, GrpcSandboxControl(settings.sandbox_target, key),
                             metrics=metrics, federation=federation, audit=audit)
    await federation.start()
    calls.binder.start()
    principal = Principal(DEFAULT_TENANT)
    # A client that stops us with SIGTERM still gets the cleanup below.
    current = asyncio.current_task()
    assert current is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, current.cancel)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await serve_stdio(calls, principal, SessionKey(principal.tenant, user, session),
                              version=version())
    finally:
        await federation.close()
        await calls.binder.close()
        audit.close()
        if running is not None:
            await running.stop(grace=0.5)
            shutil.rmtree(running.settings.state_dir, ignore_errors=True)
