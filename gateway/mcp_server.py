"""The MCP face: the catalog as an MCP server, over streamable HTTP at ``/mcp``.

One low-level ``mcp`` Server serves both protocol generations: 2026-07-28
requests (stateless, one POST each) and older clients with their initialize
handshake and ``Mcp-Session-Id``. In front of it, on every request: bearer-key
authentication (401), the tenant's rate limit (429 with ``Retry-After``) and
the request size limit (413, by the SDK).

A call's sandbox session comes, in order, from the ``X-Sandgate-Session``
header, the legacy ``Mcp-Session-Id`` (digested: it is a credential), or the
caller's principal (one session per API key, or ``local`` without keys).
``DELETE /mcp`` releases the session it names; a legacy client closing its MCP
session releases the sandbox bound to that session id. Without legacy sessions
(``SANDGATE_GATEWAY_LEGACY_SESSIONS=false``, needed by several workers: a legacy
session lives in one process's memory) older clients are served statelessly and
get no ``Mcp-Session-Id``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import grpc
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gateway.calls import Caller, ProgressSink, ToolCalls
from gateway.catalog import ToolSpec
from gateway.errors import (
    Hop,
    ProtocolError,
    SessionKeyError,
    failure_result,
)
from gateway.ratelimit import RateLimiter
from gateway.results import ImageBlock, ResourceBlock, TextBlock, ToolResult
from gateway.sessions import SessionBinder, SessionKey, check_session_id
from gateway.telemetry import GatewayMetrics, extract_context
from sandgate.service.binding import is_loopback
from sandgate.service.keys import (
    TENANT_HEADER,
    Authenticator,
    Principal,
    UnauthenticatedError,
    digest,
)

__all__ = [
    "LEGACY_SESSION_HEADER",
    "SANDBOX_META",
    "SESSION_HEADER",
    "USER_HEADER",
    "CallerResolver",
    "Context",
    "McpHttpApp",
    "build_mcp_server",
    "session_for",
    "to_mcp_result",
    "to_mcp_tool",
]

logger = logging.getLogger(__name__)

SESSION_HEADER = "x-sandgate-session"
USER_HEADER = "x-sandgate-user"
LEGACY_SESSION_HEADER = "mcp-session-id"
_ADMITTED = "sandgate_admitted"
_LABEL_META = "sandgate/label"
SANDBOX_META = "sandgate/sandbox"
"""Result ``_meta`` key naming the sandbox a call ran in."""
T = TypeVar("T")


def session_for(principal: Principal, headers: Mapping[str, str]) -> SessionKey:
    """The session key of an HTTP request (see the module docstring for the order).

    Raises:
        SessionKeyError: an ``X-Sandgate-Session`` or ``X-Sandgate-User`` header
            that is not 1-128 printable characters.
    """
    user = headers.get(USER_HEADER, "")
    if user:
        check_session_id(user, "X-Sandgate-User")
    explicit = headers.get(SESSION_HEADER)
    if explicit is not None:
        return SessionKey(principal.tenant, user, check_session_id(explicit, "X-Sandgate-Session"))
    legacy = headers.get(LEGACY_SESSION_HEADER)
    if legacy:
        return SessionKey(principal.tenant, user, f"mcp-{digest(legacy)}")
    return SessionKey(principal.tenant, user, principal.default_session)


def to_mcp_tool(spec: ToolSpec) -> types.Tool:
    annotations = types.ToolAnnotations(
        title=spec.title, read_only_hint=spec.read_only,
        destructive_hint=spec.destructive if not spec.read_only else None)
    return types.Tool(name=spec.name, title=spec.title, description=spec.description,
                      input_schema=dict(spec.input_schema), annotations=annotations)


def to_mcp_result(result: ToolResult) -> types.CallToolResult:
    content: list[types.ContentBlock] = []
    for block in result.blocks():
        meta = {_LABEL_META: block.label} if block.label else None
        if isinstance(block, TextBlock):
            content.append(types.TextContent(text=block.text, _meta=meta))
        elif isinstance(block, ImageBlock):
            content.append(types.ImageContent(data=base64.b64encode(block.data).decode(),
                                              mime_type=block.mime_type, _meta=meta))
        elif isinstance(block, ResourceBlock):
            content.append(_resource(block, meta))
    return types.CallToolResult(
        content=content, is_error=result.is_error,
        structured_content=dict(result.structured) if result.structured is not None else None,
        _meta={SANDBOX_META: result.sandbox_id} if result.sandbox_id else None)


def _resource(block: ResourceBlock, meta: dict[str, Any] | None) -> types.ContentBlock:
    if block.blob is not None and block.mime_type.startswith("audio/"):
        return types.AudioContent(data=base64.b64encode(block.blob).decode(),
                                  mime_type=block.mime_type, _meta=meta)
    resource: types.TextResourceContents | types.BlobResourceContents
    if block.blob is not None:
        resource = types.BlobResourceContents(uri=block.uri, mime_type=block.mime_type,
                                              blob=base64.b64encode(block.blob).decode())
    else:
        resource = types.TextResourceContents(uri=block.uri, mime_type=block.mime_type,
                                              text=block.text or "")
    return types.EmbeddedResource(resource=resource, _meta=meta)


Context = ServerRequestContext[Any, Any]


class CallerResolver(Protocol):
    """Who is behind an MCP request, and in which session its tools run."""

    def principal(self, ctx: Context) -> Principal: ...
    def caller(self, ctx: Context) -> Caller: ...


@dataclass(frozen=True)
class _Admitted:
    """What the HTTP front door decided about a request, once: who calls, in which session.

    It reaches the MCP handlers in the request's ASGI scope, the one channel that is
    right for stateless requests and for legacy sessions alike (a legacy session's
    handlers run in that session's task, not in the request's context).
    """

    principal: Principal
    caller: Caller | SessionKeyError
    """The caller, or why its session headers were refused (told per tool call)."""


class _HttpResolver:
    """Reads what the HTTP front door stored in the request scope."""

    @staticmethod
    def _admitted(ctx: Context) -> _Admitted:
        request: Request | None = ctx.request
        admitted = request.scope.get("state", {}).get(_ADMITTED) if request else None
        if not isinstance(admitted, _Admitted):
            raise ProtocolError(grpc.StatusCode.INTERNAL,
                                "request reached the MCP server unauthenticated")
        return admitted

    def principal(self, ctx: Context) -> Principal:
        return self._admitted(ctx).principal

    def caller(self, ctx: Context) -> Caller:
        caller = self._admitted(ctx).caller
        if isinstance(caller, SessionKeyError):
            raise caller
        return caller


def build_mcp_server(calls: ToolCalls, resolver: CallerResolver, *, version: str,
                     instructions: str | None = None) -> Server[Any]:
    """A low-level MCP server over the gateway's tool service."""

    async def list_tools(ctx: Context, params: types.PaginatedRequestParams | None
                         ) -> types.ListToolsResult:
        principal = _protocol(lambda: resolver.principal(ctx))
        return types.ListToolsResult(tools=[to_mcp_tool(s) for s in calls.list_tools(principal)])

    async def call_tool(ctx: Context, params: types.CallToolRequestParams
                        ) -> types.CallToolResult:
        try:
            caller = _protocol(lambda: resolver.caller(ctx))
        except SessionKeyError as exc:
            return to_mcp_result(failure_result(Hop.GATEWAY, exc.code, str(exc)))
        progress: ProgressSink | None = None
        if ctx.meta is not None and ctx.meta.get("progress_token") is not None:
            progress = ctx.session.report_progress
        parent = extract_context(ctx.request.headers) if ctx.request is not None else None
        result = await _protocol_async(
            calls.call(caller, params.name, params.arguments, progress, parent))
        return to_mcp_result(result)

    return Server("sandgate", version=version, instructions=instructions,
                  on_list_tools=list_tools, on_call_tool=call_tool,
                  get_tool_input_schema=calls.catalog.input_schema)


def _protocol(fn: Callable[[], T]) -> T:
    """Run ``fn``; a ProtocolError becomes the JSON-RPC error the client sees."""
    try:
        return fn()
    except ProtocolError as exc:
        raise MCPError(code=types.INTERNAL_ERROR, message=str(exc)) from None


async def _protocol_async(work: Awaitable[T]) -> T:
    try:
        return await work
    except ProtocolError as exc:
        raise MCPError(code=types.INTERNAL_ERROR, message=str(exc)) from None


def _json_error(status: int, code: int, message: str,
                headers: Mapping[str, str] | None = None) -> Response:
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
    return Response(json.dumps(body), status_code=status, media_type="application/json",
                    headers=dict(headers or {}))


class McpHttpApp:
    """The ``/mcp`` endpoint (auth, rate limit, sessions) plus ``/healthz`` and ``/metrics``."""

    def __init__(self, calls: ToolCalls, auth: Authenticator, limiter: RateLimiter,
                 binder: SessionBinder, metrics: GatewayMetrics, *, version: str, host: str,
                 max_request_bytes: int, session_idle_s: float, legacy_sessions: bool = True,
                 health: Callable[[], Mapping[str, Any]] | None = None) -> None:
        self.server = build_mcp_server(calls, _HttpResolver(), version=version,
                                       instructions=_INSTRUCTIONS)
        security = None
        if is_loopback(host):
            # A loopback server is reachable from browsers: refuse DNS-rebinding tricks.
            security = TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
                allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"])
        self.manager = StreamableHTTPSessionManager(
            # Stateless, a legacy client gets no Mcp-Session-Id: any worker can serve it.
            app=self.server, json_response=False, stateless=not legacy_sessions,
            security_settings=security,
            max_request_body_size=max_request_bytes,
            session_idle_timeout=session_idle_s or None)
        self._auth = auth
        self._limiter = limiter
        self._binder = binder
        self._metrics = metrics
        self._health = health

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        try:
            principal = self._auth.authenticate(headers.get("authorization"),
                                                headers.get(TENANT_HEADER))
        except UnauthenticatedError as exc:
            self._metrics.rejected.labels("unauthenticated").inc()
            await _json_error(401, -32001, str(exc), {"WWW-Authenticate": 'Bearer realm="sandgate"'}
                              )(scope, receive, send)
            return
        method = scope.get("method", "")
        if method == "POST" and (wait := self._limiter.acquire(principal.tenant)):
            self._metrics.rejected.labels("rate_limited").inc()
            seconds = max(1, math.ceil(wait))
            await _json_error(429, -32002, f"rate limit of tenant {principal.tenant!r} reached; "
                              f"retry in {wait:.1f} s", {"Retry-After": str(seconds)}
                              )(scope, receive, send)
            return
        caller: Caller | SessionKeyError
        try:
            caller = Caller(principal, session_for(principal, headers), "mcp-http")
        except SessionKeyError as exc:
            caller = exc
        if method == "DELETE":
            await self._delete(caller, headers, scope, receive, send)
            return
        scope.setdefault("state", {})[_ADMITTED] = _Admitted(principal, caller)
        await self.manager.handle_request(scope, receive, send)

    async def _delete(self, caller: Caller | SessionKeyError, headers: Headers, scope: Scope,
                      receive: Receive, send: Send) -> None:
        """Release the session the request names; end a legacy MCP session too."""
        if isinstance(caller, SessionKeyError):
            await _json_error(400, types.INVALID_REQUEST, str(caller))(scope, receive, send)
            return
        key = caller.session
        legacy = headers.get(LEGACY_SESSION_HEADER)
        # A client closing its transport session keeps a sandbox it named itself.
        if not (legacy and headers.get(SESSION_HEADER) is not None):
            released = await self._binder.release(key)
            if released:
                logger.info("released %s for session %s/%s", ", ".join(released), key.tenant,
                            key.session_id)
        if legacy:
            scope.setdefault("state", {})[_ADMITTED] = _Admitted(caller.principal, caller)
            await self.manager.handle_request(scope, receive, send)
        else:
            await Response(status_code=204)(scope, receive, send)

    def app(self) -> Starlette:
        async def healthz(request: Request) -> Response:
            return JSONResponse({"status": "ok", **(self._health() if self._health else {})})

        async def metrics(request: Request) -> Response:
            return Response(generate_latest(self._metrics.registry),
                            media_type=CONTENT_TYPE_LATEST)

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            async with self.manager.run():
                yield

        return Starlette(routes=[Route("/mcp", self, methods=["GET", "POST", "DELETE"]),
                                 Route("/healthz", healthz), Route("/metrics", metrics)],
                         lifespan=lifespan)


_INSTRUCTIONS = (
    "Sandgate runs these tools in a sandbox of your own: run_shell_command and "
    "run_ipython_cell execute there, the file tools read and write its /workspace. The "
    "sandbox (files, Python variables) persists across calls of the same session; "
    "sandbox_release discards it. The browser_* tools drive a real Chromium in a "
    "separate browser sandbox: take browser_snapshot and act on elements by their ref. "
    "Tools with a '__' in their name come from other MCP servers.")
