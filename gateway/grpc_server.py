"""The gRPC face: ``sandgate.gateway.v1.ToolGateway`` over the same tool service.

Handlers convert protos to the domain and back; ``STATUS_CODES`` is the one
place where errors become statuses (authentication, rate limit with a
``retry-after`` trailer, protocol errors), applied to every handler by the
server's error boundary (sandgate.service.boundary), which answers anything
unexpected as INTERNAL with a request id.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from operator import attrgetter
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct

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
from sandgate.service.boundary import StatusTable
from sandgate.service.keys import Authenticator, Principal, UnauthenticatedError

__all__ = ["SERVICE_NAME", "STATUS_CODES", "ToolGatewayServicer", "retry_after",
           "to_proto_result"]

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


STATUS_CODES: StatusTable = {
    UnauthenticatedError: grpc.StatusCode.UNAUTHENTICATED,
    # Each gateway error names its own status (gateway.errors); so does a ProtocolError.
    GatewayError: attrgetter("code"),
    ProtocolError: attrgetter("code"),
}
"""Error -> status of ToolGateway (each RPC's comment lists them)."""


def retry_after(exc: Exception) -> list[tuple[str, str]]:
    """The ``retry-after`` trailer (whole seconds) of a rate-limited call; none otherwise."""
    if isinstance(exc, RateLimitedError):
        return [("retry-after", str(max(1, math.ceil(exc.retry_after_s))))]
    return []


class ToolGatewayServicer(pb_grpc.ToolGatewayServicer):
    """``sandgate.gateway.v1.ToolGateway``."""

    def __init__(self, calls: ToolCalls, auth: Authenticator, limiter: RateLimiter,
                 metrics: GatewayMetrics) -> None:
        self._calls = calls
        self._auth = auth
        self._limiter = limiter
        self._metrics = metrics

    def _principal(self, context: _Context) -> Principal:
        principal = self._auth.authenticate_metadata(context.invocation_metadata())
        wait = self._limiter.acquire(principal.tenant)
        if wait:
            self._metrics.rejected.labels("rate_limited").inc()
            raise RateLimitedError(principal.tenant, wait)
        return principal

    async def ListTools(self, request: pb.ListToolsRequest, context: _Context
                        ) -> pb.ListToolsResponse:
        principal = self._principal(context)
        return pb.ListToolsResponse(
            tools=[to_proto_tool(s) for s in self._calls.list_tools(principal)])

    async def CallTool(self, request: pb.CallToolRequest, context: _Context
                       ) -> AsyncIterator[pb.CallToolResponse]:
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
