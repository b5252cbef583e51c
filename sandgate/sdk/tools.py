"""AsyncToolGateway: the client of ``sandgate.gateway.v1.ToolGateway``.

::

    async with AsyncToolGateway(session="chat-42") as tools:
        for tool in await tools.list_tools():
            print(tool.name, tool.input_schema)
        result = await tools.call_tool("run_ipython_cell", {"code": "print(6 * 7)"})
        print(result.text, result.is_error)

Sandbox tools run in the sandbox the gateway binds to the call's session (one
per session and template, acquired on first use), so calls with the same
session share files and Python state. A tool that ran and failed is a result
with ``is_error`` set, not an exception; exceptions (:mod:`sandgate.sdk.errors`)
mean the call itself could not be made: no gateway, a wrong key, a rate limit,
a deadline.

Each call carries the caller's current trace context (W3C ``traceparent`` in
the gRPC metadata), so the gateway's span of the call joins the caller's trace.
"""

from __future__ import annotations

import inspect
import os
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType

import grpc
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct
from opentelemetry import propagate

from sandgate.gateway.v1 import gateway_service_pb2 as pb
from sandgate.gateway.v1 import gateway_service_pb2_grpc as pb_grpc
from sandgate.sdk.errors import (
    InvalidArgumentError,
    UnavailableError,
    from_rpc_error,
    translated,
)

__all__ = [
    "DEFAULT_CALL_TIMEOUT_S",
    "DEFAULT_GATEWAY_TARGET",
    "DEFAULT_LIST_TIMEOUT_S",
    "AsyncToolGateway",
    "ContentBlock",
    "ImageBlock",
    "ProgressCallback",
    "ResourceBlock",
    "TextBlock",
    "ToolCallResult",
    "ToolInfo",
    "ToolProgress",
]

DEFAULT_GATEWAY_TARGET = "127.0.0.1:8001"
DEFAULT_LIST_TIMEOUT_S = 30.0
DEFAULT_CALL_TIMEOUT_S = 600.0
"""Generous: a cell may run for minutes (sandbox tools stop at their own ``timeout``)."""
_TENANT_HEADER = "x-sandgate-tenant"
_SOURCES = {pb.TOOL_SOURCE_SANDBOX: "sandbox", pb.TOOL_SOURCE_GATEWAY: "gateway",
            pb.TOOL_SOURCE_UPSTREAM: "upstream"}


@dataclass(frozen=True)
class ToolInfo:
    """One tool of the gateway's catalog, as MCP's ``tools/list`` describes it."""

    name: str
    description: str
    input_schema: dict[str, object]
    """JSON Schema of the arguments object."""
    group: str
    """Tool group (base, filesystem, browser, gateway) or the upstream's name."""
    read_only: bool
    source: str = "sandbox"
    """Where it runs: ``sandbox``, ``gateway`` or ``upstream``."""


@dataclass(frozen=True)
class TextBlock:
    """Text for the model (MCP ``text`` content)."""

    text: str
    label: str = ""
    """What the block holds when the tool labels its parts (``stdout``, ``returncode``...)."""


@dataclass(frozen=True)
class ImageBlock:
    """An image, e.g. a plot of ``run_ipython_cell`` (MCP ``image`` content)."""

    data: bytes
    """Raw image bytes."""
    mime_type: str
    label: str = ""


@dataclass(frozen=True)
class ResourceBlock:
    """An embedded resource, e.g. a binary file (MCP ``resource`` content)."""

    uri: str
    mime_type: str
    text: str | None = None
    blob: bytes | None = None
    label: str = ""


ContentBlock = TextBlock | ImageBlock | ResourceBlock


@dataclass(frozen=True)
class ToolCallResult:
    """What a tool returned: MCP-style content blocks, with ``is_error`` when it failed."""

    content: tuple[ContentBlock, ...]
    is_error: bool = False
    sandbox_id: str = ""
    """The sandbox the call ran in; empty for gateway and upstream tools."""
    structured_content: dict[str, object] | None = field(default=None)

    @property
    def text(self) -> str:
        """Every text block joined by newlines."""
        return "\n".join(b.text for b in self.content if isinstance(b, TextBlock))


@dataclass(frozen=True)
class ToolProgress:
    """A long call is still running."""

    progress: float
    """Increases with every event (seconds elapsed for sandbox tools)."""
    total: float | None
    message: str


ProgressCallback = Callable[[ToolProgress], Awaitable[None] | None]


def _tool(message: pb.Tool) -> ToolInfo:
    return ToolInfo(name=message.name, description=message.description,
                    input_schema=json_format.MessageToDict(message.input_schema),
                    group=message.group, read_only=message.read_only,
                    source=_SOURCES.get(message.source, "sandbox"))


def _block(message: pb.ContentBlock) -> ContentBlock | None:
    kind = message.WhichOneof("block")
    if kind == "text":
        return TextBlock(message.text.text, message.label)
    if kind == "image":
        return ImageBlock(message.image.data, message.image.mime_type, message.label)
    if kind == "resource":
        resource = message.resource
        blob = resource.blob if resource.WhichOneof("contents") == "blob" else None
        text = resource.text if resource.WhichOneof("contents") == "text" else None
        return ResourceBlock(resource.uri, resource.mime_type, text, blob, message.label)
    return None  # a block kind newer than this client


def _result(message: pb.ToolResult) -> ToolCallResult:
    blocks = tuple(b for b in map(_block, message.content) if b is not None)
    structured = (json_format.MessageToDict(message.structured_content)
                  if message.HasField("structured_content") else None)
    return ToolCallResult(blocks, message.is_error, message.sandbox_id, structured)


def _arguments(arguments: Mapping[str, object] | None) -> Struct:
    message = Struct()
    try:
        json_format.ParseDict(dict(arguments or {}), message)
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"tool arguments must be a JSON object of JSON values: "
                                   f"{exc}", grpc.StatusCode.INVALID_ARGUMENT) from None
    return message


class AsyncToolGateway:
    """Lists and calls the gateway's tools; one gRPC channel for every call.

    Args:
        target: ``host:port`` of the gateway's gRPC face (default
            ``$SANDGATE_GATEWAY_TARGET``, else ``127.0.0.1:8001``).
        api_key: sent as ``Authorization: Bearer``; default ``$SANDGATE_API_KEY``.
            Not needed when the gateway runs without keys (loopback only).
        session: the session whose sandbox runs the calls (a random one per
            client when omitted); :meth:`call_tool` may name another per call.
        user: the end user inside the tenant (part of the session key).
        tenant: the tenant a service key acts for (``x-sandgate-tenant``).

    The channel opens on first use, in the running event loop, so a client may
    be constructed outside one.
    """

    def __init__(self, target: str | None = None, api_key: str | None = None, *,
                 session: str | None = None, user: str = "", tenant: str | None = None
                 ) -> None:
        self.target = target or os.environ.get("SANDGATE_GATEWAY_TARGET",
                                               DEFAULT_GATEWAY_TARGET)
        key = api_key if api_key is not None else os.environ.get("SANDGATE_API_KEY", "")
        metadata = [("authorization", f"Bearer {key}")] if key else []
        if tenant:
            metadata.append((_TENANT_HEADER, tenant))
        self._metadata = tuple(metadata)
        self.session = session or f"sdk-{secrets.token_hex(8)}"
        self.user = user
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb_grpc.ToolGatewayStub | None = None

    def _call_metadata(self) -> tuple[tuple[str, str], ...]:
        """The client's metadata plus the current trace context (none when not tracing)."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return self._metadata + tuple(carrier.items()) if carrier else self._metadata

    def _connected(self) -> pb_grpc.ToolGatewayStub:
        if self._stub is None:
            self._channel = grpc.aio.insecure_channel(self.target)
            self._stub = pb_grpc.ToolGatewayStub(self._channel)
        return self._stub

    async def list_tools(self, *, timeout: float = DEFAULT_LIST_TIMEOUT_S) -> list[ToolInfo]:
        """The tools this caller's tenant may call, sorted by name.

        Raises:
            AuthenticationError: a missing or unknown key.
            LimitExceededError: the tenant's rate limit.
            TimeoutException: no answer within ``timeout`` seconds.
            UnavailableError: the gateway is not reachable.
        """
        stub = self._connected()
        reply = await translated(lambda: stub.ListTools(
            pb.ListToolsRequest(), metadata=self._call_metadata(), timeout=timeout))
        return [_tool(t) for t in reply.tools]

    async def call_tool(self, name: str, arguments: Mapping[str, object] | None = None, *,
                        session: str | None = None, user: str | None = None,
                        on_progress: ProgressCallback | None = None,
                        timeout: float = DEFAULT_CALL_TIMEOUT_S) -> ToolCallResult:
        """Run one tool and return its result; progress events go to ``on_progress``.

        Args:
            name: the tool, as listed by :meth:`list_tools`.
            arguments: its arguments (a JSON object).
            session: run in this session's sandbox instead of the client's.
            user: the end user for this call instead of the client's.
            on_progress: called (or awaited) for every progress event.
            timeout: deadline of the whole call in seconds.

        Returns:
            The result; a tool that failed (bad arguments, unknown tool, non-zero
            exit code) has ``is_error`` set and a text saying why.

        Raises:
            InvalidArgumentError: an empty name, a bad session id, or arguments that
                are not JSON values.
            AuthenticationError: a missing or unknown key.
            LimitExceededError: the tenant's rate limit.
            StateError: the gateway is misconfigured.
            TimeoutException: the call outlived ``timeout``.
            UnavailableError: the gateway is not reachable, or ended the call
                without a result.
            SandgateError: an internal error of the gateway.
        """
        request = pb.CallToolRequest(
            session=pb.SessionKey(session_id=session or self.session,
                                  user_id=self.user if user is None else user),
            name=name, arguments=_arguments(arguments))
        call = self._connected().CallTool(request, metadata=self._call_metadata(),
                                          timeout=timeout)
        try:
            async for event in call:
                if event.HasField("result"):
                    return _result(event.result)
                if on_progress is not None and event.HasField("progress"):
                    progress = event.progress
                    done = on_progress(ToolProgress(progress.progress, progress.total or None,
                                                    progress.message))
                    if inspect.isawaitable(done):
                        await done
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        finally:
            # A caller that stops waiting (cancelled, or a callback that raised)
            # must not leave the tool running in the gateway.
            if not call.done():
                call.cancel()
        raise UnavailableError(f"the gateway ended the call of {name!r} without a result",
                               grpc.StatusCode.UNAVAILABLE)

    async def close(self) -> None:
        """Close the channel; a later call opens a new one."""
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            await channel.close()

    async def __aenter__(self) -> AsyncToolGateway:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()
