"""agentscope Msg <-> /process messages, with stand-ins shaped like agentscope 1.x and 2.x.

The real agentscope 1.x runs in tests/integration/agent_svc/test_agentscope_adapter.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from agent_svc.adapters.agentscope import adapt_stream, agentscope_blocks, is_agentscope_msg
from agent_svc.protocol import (
    AgentRequest,
    DataContent,
    ImageContent,
    Message,
    MessageType,
    TextContent,
)
from agent_svc.stream import StreamBuilder


@dataclass
class Msg1:
    """Shaped like agentscope 1.x's Msg: blocks are dicts."""

    name: str
    content: str | list[dict[str, Any]]
    role: str
    id: str = "m1"
    metadata: dict[str, Any] | None = None


class ToolCallBlock(BaseModel):
    type: Literal["tool_call"] = "tool_call"
    id: str
    name: str
    input: str


class TextBlock(BaseModel):
    type: Literal["text"] = "text"
    text: str


class Msg2(BaseModel):
    """Shaped like agentscope 2.x's Msg: blocks are pydantic models."""

    name: str
    content: list[TextBlock | ToolCallBlock]
    role: str
    id: str = "m2"
    metadata: dict[str, Any] = Field(default_factory=dict)


async def _events(*items: object) -> list[dict[str, Any]]:
    async def source() -> AsyncIterator[object]:
        for item in items:
            yield item

    request = AgentRequest(input=[], session_id="s")
    builder = StreamBuilder(request, "s")
    events = builder.start()
    async for item in adapt_stream(source()):
        events += builder.feed(item)
    events += builder.complete()
    return [json.loads(e.model_dump_json()) for e in events]


async def test_a_streamed_1x_reply_with_a_tool_call_becomes_plugin_call_messages() -> None:
    tool_use = {"type": "tool_use", "id": "call-1", "name": "add", "input": {"a": 2, "b": 2}}
    result = {"type": "tool_result", "id": "call-1", "name": "add",
              "output": [{"type": "text", "text": "4"}]}
    events = await _events(
        (Msg1("Friday", [{"type": "text", "text": "Let me"}], "assistant"), False),
        (Msg1("Friday", [{"type": "text", "text": "Let me add."}], "assistant"), False),
        (Msg1("Friday", [{"type": "text", "text": "Let me add."}, tool_use], "assistant"),
         True),
        (Msg1("system", [result], "system", id="m-result"), True),
        (Msg1("Friday", "2 + 2 = 4", "assistant", id="m-final"), True))
    deltas = [e["text"] for e in events if e["object"] == "content" and e["type"] == "text"]
    assert deltas == ["Let me", " add.", "2 + 2 = 4"]
    output = events[-1]["output"]
    assert [(m["type"], m["role"]) for m in output] == [
        ("message", "assistant"), ("plugin_call", "assistant"), ("plugin_call_output", "tool"),
        ("message", "assistant")]
    assert output[1]["content"][0]["data"] == {
        "name": "add", "arguments": '{"a": 2, "b": 2}', "call_id": "call-1"}
    assert output[2]["content"][0]["data"] == {
        "call_id": "call-1", "name": "add", "output": '[{"type": "text", "text": "4"}]'}


async def test_a_2x_msg_with_pydantic_blocks_converts_the_same_way() -> None:
    msg = Msg2(name="Friday", role="assistant", content=[
        TextBlock(text="Calling"), ToolCallBlock(id="c9", name="run", input='{"x": 1}')])
    events = await _events(msg)
    output = events[-1]["output"]
    assert [m["type"] for m in output] == ["message", "plugin_call"]
    assert output[1]["content"][0]["data"]["arguments"] == '{"x": 1}'


async def test_thinking_becomes_a_reasoning_message_and_our_yields_pass_through() -> None:
    events = await _events(
        Msg1("Friday", [{"type": "thinking", "thinking": "hmm"},
                        {"type": "text", "text": "ok"}], "assistant"),
        "plain text")
    assert [m["type"] for m in events[-1]["output"]] == ["reasoning", "message", "message"]
    assert events[-1]["output"][2]["content"][0]["text"] == "plain text"


async def test_tool_blocks_in_a_chunk_that_is_not_last_wait_for_the_last() -> None:
    tool_use = {"type": "tool_use", "id": "c", "name": "f", "input": {}}
    events = await _events((Msg1("A", [tool_use], "assistant"), False),
                           (Msg1("A", [tool_use], "assistant"), True))
    assert [m["type"] for m in events[-1]["output"]] == ["plugin_call"]


def test_only_msg_like_objects_are_taken_for_agentscope() -> None:
    assert is_agentscope_msg(Msg1("a", "x", "user"))
    assert not is_agentscope_msg(Message())
    assert not is_agentscope_msg("text")


def test_our_messages_become_the_blocks_of_each_agentscope_line() -> None:
    call = Message(type=MessageType.PLUGIN_CALL, role="assistant", content=[DataContent(
        data={"name": "add", "arguments": '{"a": 1}', "call_id": "c1"})])
    output = Message(type=MessageType.PLUGIN_CALL_OUTPUT, role="tool", content=[DataContent(
        data={"name": "add", "output": "2", "call_id": "c1"})])
    picture = Message(role="user", content=[
        TextContent(text="look"), ImageContent(image_url="data:image/png;base64,AAAA")])
    assert agentscope_blocks(call, 1) == [
        {"type": "tool_use", "id": "c1", "name": "add", "input": {"a": 1}}]
    assert agentscope_blocks(call, 2) == [
        {"type": "tool_call", "id": "c1", "name": "add", "input": '{"a": 1}'}]
    assert agentscope_blocks(output, 1) == [
        {"type": "tool_result", "id": "c1", "name": "add", "output": "2"}]
    assert agentscope_blocks(picture, 1) == [
        {"type": "text", "text": "look"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": "AAAA"}}]
    assert agentscope_blocks(picture, 2)[1]["type"] == "data"
