"""Listing and calling tools: the one path both faces (MCP, gRPC) take.

A call resolves the tool in the caller's view of the catalog, checks its
arguments, runs it (in the session's sandbox, in the gateway, or on an
upstream), and turns every failure into a result through
:func:`gateway.errors.failure_result`. Each call gets a span, metrics and one
audit line; a call that runs longer than the progress interval reports
progress until it ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.context import Context

from gateway.audit import AuditEvent, AuditLog, arguments_digest
from gateway.catalog import Catalog, ToolSource, ToolSpec
from gateway.errors import GatewayError, Hop, ProtocolError, failure_result
from gateway.federation import Federation
from gateway.results import ToolResult, text_result
from gateway.sessions import SessionBinder, SessionKey
from gateway.telemetry import GatewayMetrics
from gateway.tools import SandboxToolGroup, ToolHandler
from sandgate.service.keys import Principal

__all__ = ["Caller", "ProgressSink", "ToolCalls", "release_tool_spec"]

logger = logging.getLogger(__name__)

ProgressSink = Callable[[float, float | None, str | None], Awaitable[None]]
"""``(progress, total, message)``: reports that a call is still running."""

_FRESH_SANDBOX_NOTE = (
    "Note: this session's previous sandbox had stopped, so this call ran in a new one; "
    "files and Python state from before are gone.")
_LOST_SANDBOX = (
    "the sandbox of this session stopped during the call ({detail}); the call did not "
    "finish. The next call starts a fresh sandbox: files and Python state from before are "
    "gone.")


def release_tool_spec() -> ToolSpec:
    return ToolSpec(
        name="sandbox_release",
        title="Release this session's sandbox",
        description=(
            "Release the sandboxes of this session: their processes stop and their files are "
            "deleted. The next sandbox tool call starts a fresh sandbox. Use it when a task "
            "is done, or to start over from a clean state."),
        input_schema={"type": "object", "properties": {
            "template": {"type": "string",
                         "description": "Release only the sandbox of this template "
                                        "(default: all of this session's sandboxes)."}}},
        group="gateway", source=ToolSource.GATEWAY, destructive=True, needs_sandbox=False)


@dataclass(frozen=True)
class Caller:
    """Who calls, and which session their sandbox tools run in."""

    principal: Principal
    session: SessionKey
    transport: str
    """mcp-http, mcp-stdio or grpc (for the audit log)."""


class ToolCalls:
    """The gateway's tool service."""

    def __init__(self, catalog: Catalog, groups: Mapping[str, SandboxToolGroup],
                 binder: SessionBinder, federation: Federation | None, audit: AuditLog,
                 metrics: GatewayMetrics, tracer: trace.Tracer, *,
                 progress_interval_s: float = 2.0) -> None:
        self.catalog = catalog
        # Each built-in tool's handler, looked up once: a call dispatches on its name only
        # when the catalog resolves it.
        self._handlers: dict[str, ToolHandler] = {
            spec.name: group.handler(spec.name) for group in groups.values()
            for spec in group.specs}
        self.binder = binder
        self._federation = federation
        self._audit = audit
        self.metrics = metrics
        self._tracer = tracer
        self._progress_interval = progress_interval_s

    def list_tools(self, principal: Principal) -> list[ToolSpec]:
        return self.catalog.list_for(principal.tenant)

    async def call(self, caller: Caller, name: str, arguments: Mapping[str, Any] | None,
                   progress: ProgressSink | None = None, parent: Context | None = None
                   ) -> ToolResult:
        """Run one tool and return its result (``is_error`` for every tool-level failure).

        Raises:
            ProtocolError: the gateway is misconfigured or hit an internal fault.
        """
        started = time.perf_counter()
        arguments = arguments or {}
        outcome = "INTERNAL"
        result: ToolResult | None = None
        with self._tracer.start_as_current_span(
                "tool.call", context=parent, kind=trace.SpanKind.INTERNAL) as span:
            span.set_attribute("sandgate.tool", name)
            span.set_attribute("sandgate.tenant", caller.principal.tenant)
            try:
                result = await self._with_progress(self._run(caller, name, arguments),
                                                   progress, started)
                outcome = "tool_error" if result.is_error else "ok"
                return result
            except ProtocolError as exc:
                outcome = exc.code.name
                span.set_status(trace.StatusCode.ERROR, exc.code.name)
                raise
            except asyncio.CancelledError:
                outcome = "CANCELLED"
                raise
            finally:
                elapsed = time.perf_counter() - started
                sandbox_id = result.sandbox_id if result is not None else ""
                span.set_attribute("sandgate.outcome", outcome)
                if sandbox_id:
                    span.set_attribute("sandgate.sandbox_id", sandbox_id)
                self._observe(caller, name, arguments, outcome, elapsed, sandbox_id, span)

    async def _run(self, caller: Caller, name: str, arguments: Mapping[str, Any]
                   ) -> ToolResult:
        try:
            spec = self.catalog.resolve(caller.principal.tenant, name)
            self.catalog.check_arguments(spec, arguments)
            if spec.source is ToolSource.UPSTREAM:
                assert self._federation is not None
                try:
                    return await self._federation.call(spec, arguments)
                except GatewayError as exc:
                    return failure_result(Hop.UPSTREAM, exc.code, str(exc))
            if spec.source is ToolSource.GATEWAY:
                return await self._release(caller, arguments)
            handler = self._handlers[spec.name]
            if not spec.needs_sandbox:
                return await handler(arguments, None)
            return await self._in_sandbox(caller, spec, handler, arguments)
        except GatewayError as exc:
            return failure_result(Hop.GATEWAY, exc.code, str(exc))
        except grpc.aio.AioRpcError as exc:
            # Only the control plane is left: sandbox failures are handled below.
            return failure_result(Hop.CONTROL_PLANE, exc.code(), exc.details() or "")

    async def _in_sandbox(self, caller: Caller, spec: ToolSpec, handler: ToolHandler,
                          arguments: Mapping[str, Any]) -> ToolResult:
        template = self.catalog.template_for(spec)
        async with self.binder.use(caller.session, template) as sandbox:
            try:
                result = await handler(arguments, sandbox)
            except grpc.aio.AioRpcError as exc:
                code, detail = exc.code(), exc.details() or exc.code().name
                if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED,
                            grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL) and \
                        await self.binder.check_lost(sandbox):
                    return failure_result(Hop.GATEWAY, grpc.StatusCode.UNAVAILABLE,
                                          _LOST_SANDBOX.format(detail=detail),
                                          sandbox_id=sandbox.sandbox_id)
                result = failure_result(Hop.SANDBOX, code, detail,
                                        sandbox_id=sandbox.sandbox_id)
            if sandbox.replaced:
                sandbox.replaced = False
                result = result.with_note(_FRESH_SANDBOX_NOTE)
            return result

    async def _release(self, caller: Caller, arguments: Mapping[str, Any]) -> ToolResult:
        template = str(arguments.get("template") or "")
        released = await self.binder.release(caller.session, template)
        if not released:
            return text_result("This session had no sandbox to release.")
        return text_result(f"Released {', '.join(released)}; the next sandbox tool call starts "
                           "a fresh sandbox.")

    async def _with_progress(self, work: Awaitable[ToolResult], progress: ProgressSink | None,
                             started: float) -> ToolResult:
        if progress is None or not self._progress_interval:
            return await work
        task = asyncio.ensure_future(work)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self._progress_interval)
                if done:
                    return task.result()
                elapsed = time.perf_counter() - started
                try:
                    await progress(round(elapsed, 1), None, f"still running ({elapsed:.0f} s)")
                except Exception:  # a client that went away must not fail the call
                    logger.debug("could not send progress", exc_info=True)
        finally:
            if not task.done():
                task.cancel()

    def _observe(self, caller: Caller, tool: str, arguments: Mapping[str, Any], outcome: str,
                 elapsed: float, sandbox_id: str, span: trace.Span) -> None:
        metric_tool = tool if self._known(tool) else "(unknown)"
        self.metrics.calls.labels(metric_tool, "ok" if outcome == "ok" else "error").inc()
        if outcome != "ok":
            self.metrics.errors.labels(metric_tool, outcome).inc()
        self.metrics.latency.labels(metric_tool).observe(elapsed)
        context = span.get_span_context()
        self._audit.record(AuditEvent(
            tenant=caller.principal.tenant, user=caller.session.user_id,
            session=caller.session.session_id, tool=tool, transport=caller.transport,
            outcome=outcome, duration_ms=elapsed * 1000, sandbox=sandbox_id,
            args=arguments_digest(arguments),
            trace_id=format(context.trace_id, "032x") if context.is_valid else ""))

    def _known(self, tool: str) -> bool:
        # Unknown names stay out of metric labels, so callers cannot blow up cardinality.
        return self.catalog.knows(tool)
