"""The gateway's tools for the model: listing (cached), schemas, calls, result text.

Tools are listed through a :class:`ToolClient` (the SDK's AsyncToolGateway),
converted to chat-completions function schemas, and called in the request's
session, so one conversation keeps one sandbox. A call that fails in any way
(bad JSON from the model, an unknown tool, a failed command, an unreachable
gateway) becomes a tool result the model reads; only listing failures end a run.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from openai.types.chat import ChatCompletionFunctionToolParam

from agent_svc.react.errors import ToolsUnavailableError
from agent_svc.react.messages import ToolCall
from sandgate.sdk.errors import SandgateError
from sandgate.sdk.tools import (
    ImageBlock,
    ProgressCallback,
    ResourceBlock,
    TextBlock,
    ToolCallResult,
    ToolInfo,
)

__all__ = [
    "MAX_OUTPUT_CHARS",
    "GatewayTools",
    "ToolClient",
    "ToolOutcome",
    "Toolset",
    "result_text",
    "tool_schemas",
]

MAX_OUTPUT_CHARS = 32_000
"""Most characters of one tool result the model is given (the rest is cut, visibly)."""
_FUNCTION_NAME = re.compile(r"[^A-Za-z0-9_-]")


class ToolClient(Protocol):
    """What the agent needs of the gateway; :class:`sandgate.sdk.AsyncToolGateway` is one."""

    async def list_tools(self, *, timeout: float = ...) -> list[ToolInfo]: ...

    async def call_tool(self, name: str, arguments: Mapping[str, object] | None = None, *,
                        session: str | None = None, user: str | None = None,
                        on_progress: ProgressCallback | None = None,
                        timeout: float = ...) -> ToolCallResult: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Toolset:
    """Tools as the model sees them: schemas, and function name -> gateway tool name."""

    schemas: tuple[ChatCompletionFunctionToolParam, ...]
    names: Mapping[str, str]

    def tool_name(self, function_name: str) -> str:
        """The gateway's name for a function the model called (unknown names pass through)."""
        return self.names.get(function_name, function_name)


def _function_name(name: str, taken: set[str]) -> str:
    """A name chat endpoints accept (``[A-Za-z0-9_-]{1,64}``), unique in ``taken``."""
    base = _FUNCTION_NAME.sub("_", name)[:64] or "tool"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base[:60]}_{n}"
    taken.add(candidate)
    return candidate


def _parameters(schema: Mapping[str, object]) -> dict[str, object]:
    # Some endpoints reject an object schema without "properties" (tools without arguments).
    parameters = dict(schema) or {"type": "object"}
    parameters.setdefault("type", "object")
    if parameters["type"] == "object":
        parameters.setdefault("properties", {})
    return parameters


def tool_schemas(tools: Sequence[ToolInfo]) -> Toolset:
    """Chat-completions function tools for ``tools``, in their order."""
    taken: set[str] = set()
    schemas: list[ChatCompletionFunctionToolParam] = []
    names: dict[str, str] = {}
    for tool in tools:
        function = _function_name(tool.name, taken)
        names[function] = tool.name
        schemas.append({"type": "function", "function": {
            "name": function, "description": tool.description,
            "parameters": _parameters(tool.input_schema)}})
    return Toolset(tuple(schemas), names)


def _block_text(block: TextBlock | ImageBlock | ResourceBlock) -> str:
    if isinstance(block, TextBlock):
        text = block.text
    elif isinstance(block, ImageBlock):
        text = f"[image {block.mime_type}, {len(block.data)} bytes: shown to the user, not here]"
    elif block.text is not None:
        text = block.text
    else:
        text = f"[resource {block.uri} ({block.mime_type}), {len(block.blob or b'')} bytes]"
    if not block.label or not text:
        return text
    return f"{block.label}: {text}" if "\n" not in text.rstrip("\n") else f"{block.label}:\n{text}"


def result_text(result: ToolCallResult) -> str:
    """The text the model reads for a tool's result: labelled blocks, errors marked."""
    parts = [t for t in map(_block_text, result.content) if t]
    text = "\n".join(p.rstrip("\n") for p in parts) or "(no output)"
    if len(text) > MAX_OUTPUT_CHARS:
        cut = len(text) - MAX_OUTPUT_CHARS
        text = f"{text[:MAX_OUTPUT_CHARS]}\n[... {cut} more characters not shown]"
    return f"Error:\n{text}" if result.is_error else text


@dataclass(frozen=True)
class ToolOutcome:
    """A finished call, as the model and the client see it."""

    output: str
    is_error: bool


def _arguments(call: ToolCall) -> dict[str, object] | str:
    """The call's arguments as an object, or why they are not one."""
    if not call.arguments.strip():
        return {}
    try:
        value = json.loads(call.arguments)
    except ValueError as exc:
        return f"the arguments are not valid JSON ({exc}); send one JSON object"
    if not isinstance(value, dict):
        return f"the arguments must be a JSON object, not {type(value).__name__}"
    return value


class GatewayTools:
    """The gateway's tools for one agent: one client, listings reused for ``ttl_s``.

    Args:
        client_factory: makes the gateway client on first use (inside the
            running event loop, which gRPC channels belong to).
        ttl_s: how long a listing is reused.
        call_timeout_s: deadline of one tool call.
        clock: monotonic seconds (injected by tests).
    """

    def __init__(self, client_factory: Callable[[], ToolClient], *, ttl_s: float,
                 call_timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._factory = client_factory
        self._client: ToolClient | None = None
        self._ttl_s = ttl_s
        self._call_timeout_s = call_timeout_s
        self._clock = clock
        self._listed: tuple[float, Toolset] | None = None

    @property
    def client(self) -> ToolClient:
        """The gateway client, made on first use."""
        if self._client is None:
            self._client = self._factory()
        return self._client

    async def toolset(self) -> Toolset:
        """The tools, listed again when the last listing is older than ``ttl_s``.

        Raises:
            ToolsUnavailableError: the gateway could not be asked.
        """
        now = self._clock()
        if self._listed is not None and now - self._listed[0] < self._ttl_s:
            return self._listed[1]
        try:
            tools = await self.client.list_tools()
        except SandgateError as exc:
            raise ToolsUnavailableError(f"the tool gateway could not list tools: {exc}") \
                from None
        toolset = tool_schemas(tools)
        self._listed = (now, toolset)
        return toolset

    async def call(self, call: ToolCall, toolset: Toolset, *, session: str, user: str
                   ) -> ToolOutcome:
        """Run ``call`` in ``session``'s sandbox; every failure is an error outcome."""
        arguments = _arguments(call)
        if isinstance(arguments, str):
            return ToolOutcome(f"Error: {arguments}", True)
        try:
            result = await self.client.call_tool(
                toolset.tool_name(call.name), arguments, session=session, user=user,
                timeout=self._call_timeout_s)
        except SandgateError as exc:
            return ToolOutcome(f"Error: the tool call could not be made: {exc}", True)
        return ToolOutcome(result_text(result), result.is_error)

    async def close(self) -> None:
        """Close the gateway client (a later call makes a new one)."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()
