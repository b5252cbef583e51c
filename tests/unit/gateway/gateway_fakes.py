"""Fakes of the gateway's injected Protocols, for unit tests (no sandboxes, no network)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import grpc

from gateway.audit import AuditLog
from gateway.calls import Caller, ToolCalls, release_tool_spec
from gateway.catalog import Allowlist, Catalog, ToolSpec
from gateway.federation import Federation
from gateway.results import TextBlock, ToolResult
from gateway.sessions import ControlPlaneInfo, Lease, SandboxHandle, SessionBinder, SessionKey
from gateway.telemetry import GatewayMetrics, tracer_for
from gateway.tools import ToolHandler
from sandgate.service.keys import Principal

NOWHERE = "unix:///nonexistent/sandgate-test.sock"
"""A sandboxd address nothing listens on: channels open lazily, health checks fail."""


class FakeControl:
    """An in-memory control plane that hands out numbered sandboxes."""

    def __init__(self, templates: Sequence[str] = ("filesystem",)) -> None:
        self.templates = frozenset(templates)
        self.acquired: list[tuple[SessionKey, str]] = []
        self.released: list[tuple[SessionKey, str]] = []
        self.deleted: list[str] = []
        self.renewed: list[str] = []
        self.acquire_delay = 0.0

    async def describe(self) -> ControlPlaneInfo:
        return ControlPlaneInfo(self.templates)

    async def acquire(self, key: SessionKey, template: str) -> Lease:
        await asyncio.sleep(self.acquire_delay)
        self.acquired.append((key, template))
        return Lease(f"sbx-{len(self.acquired)}", NOWHERE, "token")

    async def renew(self, key: SessionKey, sandbox_id: str) -> None:
        self.renewed.append(sandbox_id)

    async def release(self, key: SessionKey, template: str = "") -> list[str]:
        self.released.append((key, template))
        return [f"released-{key.session_id}"]

    async def delete(self, key: SessionKey, sandbox_id: str) -> None:
        self.deleted.append(sandbox_id)

    async def close(self) -> None:
        return None


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class FakeTools:
    """A sandbox tool group whose tools say what they saw instead of calling sandboxd."""

    name = "base"
    specs = (
        ToolSpec("echo", "Say the arguments back.",
                 {"type": "object", "properties": {"text": {"type": "string"}},
                  "required": ["text"]}, "base"),
        ToolSpec("sleep", "Wait.", {"type": "object",
                                    "properties": {"seconds": {"type": "number"}}}, "base"),
        ToolSpec("fail", "Fail with a status.", {"type": "object", "properties": {
            "code": {"type": "string"}}}, "base"),
    )

    def __init__(self) -> None:
        self.metadata: list[list[tuple[str, str]]] = []

    def handler(self, name: str) -> ToolHandler:
        if name not in {s.name for s in self.specs}:
            raise KeyError(name)
        return partial(self._call, name)

    async def _call(self, name: str, arguments: Mapping[str, Any],
                    sandbox: SandboxHandle | None) -> ToolResult:
        assert sandbox is not None
        self.metadata.append(list(sandbox.metadata()))
        if name == "sleep":
            await asyncio.sleep(float(arguments.get("seconds", 0)))
        if name == "fail":
            raise rpc_error(grpc.StatusCode[str(arguments["code"])], "sandboxd said no")
        return ToolResult((TextBlock(f"{arguments.get('text', '')} in {sandbox.sandbox_id}"),),
                          sandbox_id=sandbox.sandbox_id)


def build_calls(control: FakeControl | None = None, tools: FakeTools | None = None, *,
                allowlist: Mapping[str, Sequence[str]] | None = None,
                progress_interval_s: float = 0.0, audit: AuditLog | None = None,
                tracer_provider: Any = None) -> tuple[ToolCalls, FakeControl, FakeTools]:
    control = control or FakeControl()
    tools = tools or FakeTools()
    metrics = GatewayMetrics()
    catalog = Catalog(tools.specs, {"base": "filesystem"}, [release_tool_spec()],
                      Allowlist(allowlist))
    binder = SessionBinder(control, idle_s=60.0, metrics=metrics)
    calls = ToolCalls(catalog, {"base": tools}, binder, Federation([]), audit or AuditLog(),
                      metrics, tracer_for(tracer_provider), progress_interval_s=progress_interval_s)
    return calls, control, tools


def caller(session: str = "s1", tenant: str = "default") -> Caller:
    return Caller(Principal(tenant), SessionKey(tenant, "", session), "test")
