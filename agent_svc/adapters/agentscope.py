"""``query(framework="agentscope")``: agentscope ``Msg`` in and out.

In: the request's messages become agentscope ``Msg`` objects (the query
function's ``msgs``). Out: the query function may yield what agentscope's
``stream_printing_messages`` gives, ``(Msg, last)`` pairs in which one ``Msg``
id grows chunk by chunk, or bare ``Msg`` objects; each becomes the messages
AgentScope Runtime 1.1.6 streams for it:

- ``thinking`` blocks: a ``reasoning`` message;
- ``text`` (and image) blocks: an assistant ``message`` whose text streams as deltas;
- ``tool_use`` (1.x) / ``tool_call`` (2.x) blocks: a ``plugin_call`` message with data
  ``{name, arguments, call_id}``, sent when the ``Msg`` is complete;
- ``tool_result`` blocks: a ``plugin_call_output`` message (role ``tool``) with data
  ``{call_id, name, output}``.

Both agentscope lines are read by duck typing: 1.x blocks are dicts, 2.x blocks
are pydantic models, so this module imports agentscope only to build inputs.
Yields that already are ours (``str``, ``Message``, ``(Message, bool)``) pass
through unchanged.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from agent_svc.protocol import (
    Content,
    DataContent,
    ImageContent,
    Message,
    MessageType,
    Role,
    TextContent,
)

__all__ = ["adapt_stream", "agentscope_blocks", "convert_msg", "is_agentscope_msg",
           "to_agentscope"]

_CALLS = (MessageType.PLUGIN_CALL, MessageType.FUNCTION_CALL, MessageType.MCP_CALL)
_OUTPUTS = (MessageType.PLUGIN_CALL_OUTPUT, MessageType.FUNCTION_CALL_OUTPUT,
            MessageType.MCP_CALL_OUTPUT)


def is_agentscope_msg(value: object) -> bool:
    """Whether ``value`` looks like an agentscope ``Msg`` (1.x or 2.x)."""
    return (not isinstance(value, Message)
            and all(hasattr(value, a) for a in ("name", "role", "content", "id")))


def _blocks(msg: Any) -> list[dict[str, Any]]:
    content = getattr(msg, "content", None)
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for block in content or ():
        if isinstance(block, dict):
            blocks.append(block)
        elif isinstance(block, str):
            blocks.append({"type": "text", "text": block})
        elif hasattr(block, "model_dump"):
            blocks.append(block.model_dump(mode="json"))
    return blocks


def _json(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def _image(block: dict[str, Any]) -> ImageContent | None:
    source = block.get("source")
    if not isinstance(source, dict):
        return None
    media = str(source.get("media_type") or "image/png")
    if block.get("type") == "data" and not media.startswith("image/"):
        return None
    if source.get("type") == "url":
        return ImageContent(image_url=str(source.get("url")))
    if source.get("type") == "base64":
        return ImageContent(image_url=f"data:{media};base64,{source.get('data', '')}")
    return None


def convert_msg(msg: Any, last: bool) -> list[tuple[Message, bool]]:
    """The messages one state of an agentscope ``Msg`` stands for, each with ``last``
    (tool calls and results only once the ``Msg`` is complete)."""
    base = str(getattr(msg, "id", "") or id(msg))
    role = str(getattr(msg, "role", "assistant"))
    metadata = getattr(msg, "metadata", None)
    meta: dict[str, Any] = dict(metadata) if isinstance(metadata, dict) else {}
    thinking: list[Content] = []
    visible: list[Content] = []
    calls: list[Message] = []
    for block in _blocks(msg):
        kind = block.get("type")
        if kind == "thinking":
            thinking.append(TextContent(text=str(block.get("thinking") or "")))
        elif kind == "text":
            visible.append(TextContent(text=str(block.get("text") or "")))
        elif kind in ("image", "data"):
            image = _image(block)
            if image is not None:
                visible.append(image)
        elif kind in ("tool_use", "tool_call") and last:
            call_id = str(block.get("id"))
            calls.append(Message(
                id=f"msg_call_{call_id}", type=MessageType.PLUGIN_CALL, role=Role.ASSISTANT,
                metadata=meta, content=[DataContent(data={
                    "name": block.get("name"), "arguments": _json(block.get("input") or {}),
                    "call_id": call_id})]))
        elif kind == "tool_result" and last:
            call_id = str(block.get("id"))
            calls.append(Message(
                id=f"msg_result_{call_id}", type=MessageType.PLUGIN_CALL_OUTPUT,
                role=Role.TOOL, metadata=meta, content=[DataContent(data={
                    "call_id": call_id, "name": block.get("name"),
                    "output": _json(block.get("output"))})]))
    speaker = Role(role) if role in ("assistant", "user", "system") else Role.ASSISTANT
    out: list[tuple[Message, bool]] = []
    if thinking:
        out.append((Message(id=f"msg_{base}_reasoning", type=MessageType.REASONING,
                            role=speaker, content=thinking, metadata=meta), last))
    if visible:
        out.append((Message(id=f"msg_{base}", role=speaker, content=visible, metadata=meta),
                    last))
    out += [(call, True) for call in calls]
    return out


async def adapt_stream(items: AsyncIterator[object]) -> AsyncIterator[object]:
    """A query function's yields with agentscope ``Msg`` (bare or ``(Msg, last)``)
    turned into ``(Message, last)`` pairs; everything else passes through."""
    async for item in items:
        if (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bool)
                and is_agentscope_msg(item[0])):
            for pair in convert_msg(item[0], item[1]):
                yield pair
        elif is_agentscope_msg(item):
            for pair in convert_msg(item, True):
                yield pair
        else:
            yield item


# --- in: our messages -> agentscope Msg ---------------------------------------------


def _major_version() -> int:
    import agentscope

    return int(str(getattr(agentscope, "__version__", "1")).split(".")[0])


def _image_block(url: str, major: int) -> dict[str, Any]:
    if url.startswith("data:") and "," in url:
        head, data = url.split(",", 1)
        media = head.removeprefix("data:").split(";")[0] or "image/png"
        source: dict[str, Any] = {"type": "base64", "media_type": media, "data": data}
    else:
        source = {"type": "url", "url": url}
        if major >= 2:
            source["media_type"] = "image/*"
    return {"type": "data" if major >= 2 else "image", "source": source}


def _first_data(message: Message) -> dict[str, Any]:
    for content in message.content or ():
        if isinstance(content, DataContent) and content.data:
            return content.data
    return {}


def agentscope_blocks(message: Message, major: int) -> list[dict[str, Any]]:
    """The agentscope content blocks of ``message`` for agentscope ``major`` (1 or 2)."""
    if message.type in _CALLS:
        data = _first_data(message)
        arguments = data.get("arguments") or "{}"
        if major >= 2:
            tool_input: Any = _json(arguments)
        else:
            tool_input = json.loads(arguments) if isinstance(arguments, str) else arguments
        return [{"type": "tool_call" if major >= 2 else "tool_use",
                 "id": str(data.get("call_id", "")), "name": str(data.get("name", "")),
                 "input": tool_input}]
    if message.type in _OUTPUTS:
        data = _first_data(message)
        return [{"type": "tool_result", "id": str(data.get("call_id", "")),
                 "name": str(data.get("name", "")), "output": _json(data.get("output", ""))}]
    if message.type == MessageType.REASONING:
        return [{"type": "thinking", "thinking": message.text()}]
    blocks: list[dict[str, Any]] = []
    for content in message.content or ():
        if isinstance(content, TextContent) and content.text:
            blocks.append({"type": "text", "text": content.text})
        elif isinstance(content, ImageContent) and content.image_url:
            blocks.append(_image_block(content.image_url, major))
        elif isinstance(content, DataContent) and content.data is not None:
            blocks.append({"type": "text", "text": _json(content.data)})
    return blocks


def _role_for(message: Message, major: int) -> str:
    role = str(message.role or "user")
    if role == "tool":
        # agentscope has no tool role: 1.x files tool results under system, 2.x
        # allows only text in system messages, so they go to the assistant.
        return "assistant" if major >= 2 else "system"
    return role


def to_agentscope(messages: Sequence[Message]) -> list[Any]:
    """The request's messages as agentscope ``Msg`` objects (the installed line's blocks).

    Raises:
        ImportError: agentscope is not installed.
    """
    from agentscope.message import Msg

    major = _major_version()
    converted = []
    for message in messages:
        name = str(message.metadata.get("original_name") or message.role or "user")
        converted.append(Msg(name=name, content=agentscope_blocks(message, major),
                             role=_role_for(message, major)))
    return converted
