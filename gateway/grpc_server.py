"""The gRPC face: ``sandgate.gateway.v1.ToolGateway`` over the same tool service.

Handlers convert protos to the domain and back; ``_Boundary`` is the one place
where errors become statuses (authentication, rate limit, protocol errors, and
INTERNAL with a request id for anything unexpected).
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gateway.auth import TENANT_HEADER, Authenticator, Principal
from gateway.calls import Caller, ToolCalls
from gateway.catalog import ToolSource, ToolSpec
from gateway.errors import (
    GatewayError,
    ProtocolError,
    RateLimitedError,
    SessionKeyError,
    ToolArgumentsError,
)
from gateway.ratelimit import RateLimiter
from gateway.results import ImageBlock, ResourceBlock, TextBlock, ToolResult
from gateway.sessions import SessionKey, check_session_id
from gateway.telemetry import GatewayMetrics, extract_context
from sandgate.gateway.v1 import gateway_service_pb2 as pb
from sandgate.gateway.v1 import gateway_service_pb2_grpc as pb_grpc

__all__ = ["SERVICE_NAME", "ToolGatewayServicer", "create_server", "to_proto_result"]

logger = logging.getLogger(__name__)
_Context = Any  # grpc.aio.ServicerContext (grpc is untyped)
SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["ToolGateway"].full_name

_SOURCE = {ToolSource.SANDBOX: pb.TOOL_SOURCE_SANDBOX, ToolSource.GATEWAY: pb.TOOL_SOURCE_GATEWAY,
           ToolSource.UPSTREAM: pb.TOOL_SOURCE_UPSTREAM}


def _struct(value: Any) -> Struct:
    message = Struct()
    json_format.ParseDict(dict(value), message)
    return message


def to_proto_tool(spec: ToolSpec) -> pb.Tool:
    return pb.Tool(name=spec.name, description=spec.description,
                   input_schema=_struct(spec.input_schema), source=_SOURCE[spec.source],
                   group=spec.group, read_only=spec.read_only)


def to_proto_result(result: ToolResult) -> pb.ToolResult:
    message = pb.ToolResult(is_error=result.is_error, sandbox_id=result.sandbox_id)
    for block in result.blocks():
        item = message.content.add(label=block.label)
        if isinstance(block, TextBlock):
            item.text.text = block.text
        elif isinstance(block, ImageBlock):
            item.image.data, item.image.mime_type = block.data, block.mime_type
        elif isinstance(block, ResourceBlock):
            item.resource.uri, item.resource.mime_type = block.uri, block.mime_type
            if block.blob is not None:
                item.resource.blob = block.blob
            else:
                item.resource.text = block.text or ""
    if result.structured is not None:
        message.structured_content.CopyFrom(_struct(result.structured))
    return message


class _Boundary:
    """Turns an exception escaping a handler into the call's status."""

    def __init__(self, context: _Context) -> None:
        self._context = context

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, grpc.aio.AbortError):
            return
        if isinstance(exc, RateLimitedError):
            self._context.set_trailing_metadata(
                (("retry-after", str(max(1, math.ceil(exc.retry_after_s)))),))
            await self._context.abort(exc.code, str(exc))
        if isinstance(exc, GatewayError | ProtocolError):
            await self._context.abort(exc.code, str(exc))
        request_id = secrets.token_hex(4)
        logger.error("ToolGateway call failed (request %s)", request_id, exc_info=exc)
        await self._context.abort(grpc.StatusCode.INTERNAL,
                                  f"internal error (request {request_id})")


class ToolGatewayServicer(pb_grpc.ToolGatewayServicer):
    """``sandgate.gateway.v1.ToolGateway``."""

    def __init__(self, calls: ToolCalls, auth: Authenticator, limiter: RateLimiter,
                 metrics: GatewayMetrics) -> None:
        self._calls = calls
        self._auth = auth
        self._limiter = limiter
        self._metrics = metrics

    def _principal(self, context: _Context) -> Principal:
        metadata: Sequence[tuple[str, str | bytes]] = context.invocation_metadata() or ()
        headers = {k: v if isinstance(v, str) else v.decode(errors="replace")
                   for k, v in metadata}
        principal = self._auth.authenticate(headers.get("authorization"),
                                            headers.get(TENANT_HEADER))
        wait = self._limiter.acquire(principal.tenant)
        if wait:
            self._metrics.rejected.labels("rate_limited").inc()
            raise RateLimitedError(principal.tenant, wait)
        return principal

    async def ListTools(self, request: pb.ListToolsRequest, context: _Context
                        ) -> pb.ListToolsResponse:
        async with _Boundary(context):
            principal = self._principal(context)
            return pb.ListToolsResponse(
                tools=[to_proto_tool(s) for s in self._calls.list_tools(principal)])
        raise AssertionError("unreachable")

    async def CallTool(self, request: pb.CallToolRequest, context: _Context
                       ) -> AsyncIterator[pb.CallToolResponse]:
        async with _Boundary(context):
            principal = self._principal(context)
            if not request.name:
                raise ToolArgumentsError("name is required: the tool to call, as listed by "
                                         "ListTools")
            if not request.session.session_id:
                raise SessionKeyError("session.session_id is required: the session whose "
                                      "sandbox runs the tool")
            session = SessionKey(principal.tenant, request.session.user_id,
                                 check_session_id(request.session.session_id,
                                                  "session.session_id"))
            caller = Caller(principal, session, "grpc")
            arguments = json_format.MessageToDict(request.arguments)
            parent = extract_context(context.invocation_metadata() or ())
            events: asyncio.Queue[pb.Progress] = asyncio.Queue()

            async def progress(done: float, total: float | None, message: str | None) -> None:
                events.put_nowait(pb.Progress(progress=done, total=total or 0.0,
                                              message=message or ""))

            call = asyncio.ensure_future(
                self._calls.call(caller, request.name, arguments, progress, parent))
            try:
                while not call.done():
                    waiter = asyncio.ensure_future(events.get())
                    await asyncio.wait({call, waiter}, return_when=asyncio.FIRST_COMPLETED)
                    if waiter.done():
                        yield pb.CallToolResponse(progress=waiter.result())
                    else:
                        waiter.cancel()
                result = call.result()
            finally:
                call.cancel()
            yield pb.CallToolResponse(result=to_proto_result(result))


def create_server(address: str, servicer: ToolGatewayServicer,
                  health_servicer: health.aio.HealthServicer, *,
                  max_message_bytes: int = 4 * 1024 * 1024) -> tuple[grpc.aio.Server, int]:
    """A ToolGateway server (with health and reflection) bound to ``address``, not started.

    Returns:
        The server and the port it bound (``address`` may end in ``:0``).
    """
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", max_message_bytes)])
    pb_grpc.add_ToolGatewayServicer_to_server(servicer, server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME,
                                         reflection.SERVICE_NAME), server)
    port = server.add_insecure_port(address)
    return server, port
