"""The built-in agent end to end: a scripted model, a real gateway, real sandboxes."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from agent_svc.protocol import (
    AgentRequest,
    DataContent,
    Message,
    MessageType,
    Role,
    TextContent,
)
from agent_svc.react import (
    ApprovalNotFoundError,
    InMemoryConversationHistory,
    ReactAgent,
    StepLimitError,
    react_query,
)
from agent_svc.react.chat_format import INTERRUPTED_OUTPUT
from agent_svc.react.messages import data_of
from gateway.server import RunningGateway
from sandgate.sdk import AsyncToolGateway, TextBlock
from tests.fixtures.scripted_model import (
    ScriptedCall,
    ScriptedModel,
    Turn,
    bubble_sort,
    text_turn,
    tool_turn,
)

from .conftest import (
    AgentFactory,
    gateway_tools,
    of_type,
    react_settings,
    run_agent,
    texts,
    user,
)

SEED_REQUEST = "请帮我使用python生成一段冒泡排序算法,并执行"
SORTED = "[11, 12, 22, 25, 34, 64, 90]"


def _tool_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in request["messages"] if m["role"] == "tool"]


async def test_the_seeds_request_runs_bubble_sort_in_a_sandbox_and_the_model_reads_the_output(
        gateway: RunningGateway, make_agent: AgentFactory) -> None:
    async with ScriptedModel(bubble_sort) as model:
        agent = make_agent(model.base_url, gateway_tools(gateway))
        with anyio.fail_after(60):
            items = await run_agent(agent, [user(SEED_REQUEST)], "seed-1")
    call, = of_type(items, MessageType.PLUGIN_CALL)
    output, = of_type(items, MessageType.PLUGIN_CALL_OUTPUT)
    assert call.role == Role.ASSISTANT and output.role == Role.TOOL
    call_data, output_data = data_of(call) or {}, data_of(output) or {}
    assert call_data["name"] == "run_ipython_cell"
    assert "def bubble_sort" in json.loads(call_data["arguments"])["code"]
    assert output_data["call_id"] == call_data["call_id"] and not output_data["is_error"]
    assert SORTED in output_data["output"]
    first, second = model.requests
    assert first["messages"][0]["role"] == "system"
    assert first["messages"][-1] == {"role": "user", "content": SEED_REQUEST}
    assert "run_ipython_cell" in {t["function"]["name"] for t in first["tools"]}
    assert first["stream"] is True and first["model"] == "scripted"
    tool_message, = _tool_messages(second)
    assert tool_message["tool_call_id"] == call_data["call_id"]
    assert SORTED in str(tool_message["content"])
    assert SORTED in texts(items)
    assert model.authorizations == ["Bearer test-key"] * 2


async def test_a_second_request_in_the_session_sees_the_first_turn_and_the_same_kernel(
        gateway: RunningGateway, make_agent: AgentFactory) -> None:
    script = [tool_turn("run_ipython_cell", {"code": "x = 6 * 7"}), text_turn("x is set."),
              tool_turn("run_ipython_cell", {"code": "print(x)"}), text_turn("x is 42.")]
    async with ScriptedModel(script) as model:
        agent = make_agent(model.base_url, gateway_tools(gateway))
        with anyio.fail_after(60):
            await run_agent(agent, [user("set x")], "continuity")
            items = await run_agent(agent, [user("what is x?")], "continuity")
    output, = of_type(items, MessageType.PLUGIN_CALL_OUTPUT)
    assert (data_of(output) or {})["output"] == "stdout: 42"
    third = model.requests[2]["messages"]
    assert [m["role"] for m in third] == ["system", "user", "assistant", "tool", "assistant",
                                          "user"]
    assert third[1]["content"] == "set x" and third[4]["content"] == "x is set."
    assert third[2]["tool_calls"][0]["function"]["name"] == "run_ipython_cell"
    assert texts(items) == "x is 42."


async def test_a_model_that_keeps_calling_tools_stops_at_max_steps_with_history_consistent(
        gateway: RunningGateway, make_agent: AgentFactory) -> None:
    history = InMemoryConversationHistory()
    async with ScriptedModel(lambda _: tool_turn("run_shell_command",
                                                 {"command": "echo again"})) as model:
        agent = make_agent(model.base_url, gateway_tools(gateway), history=history,
                           max_steps=3)
        with anyio.fail_after(60), pytest.raises(StepLimitError) as info:
            await run_agent(agent, [user("loop")], "steps")
    assert info.value.code == "max_steps_exceeded"
    assert len(model.requests) == 3
    kept = await history.get_messages("u1", "steps")
    calls = {(data_of(m) or {})["call_id"] for m in kept if m.type == MessageType.PLUGIN_CALL}
    outputs = {(data_of(m) or {})["call_id"] for m in kept
               if m.type == MessageType.PLUGIN_CALL_OUTPUT}
    assert len(calls) == 3 and calls == outputs


async def test_failed_tools_and_bad_arguments_go_back_to_the_model_as_results(
        gateway: RunningGateway, make_agent: AgentFactory) -> None:
    script = [Turn(calls=(ScriptedCall("run_shell_command", json.dumps({"command": "exit 3"})),
                          ScriptedCall("run_shell_command", "{not json"),
                          ScriptedCall("no_such_tool", "{}"))),
              text_turn("All three failed.")]
    async with ScriptedModel(script) as model:
        agent = make_agent(model.base_url, gateway_tools(gateway))
        with anyio.fail_after(60):
            items = await run_agent(agent, [user("try")], "tool-errors")
    outputs = [data_of(m) or {} for m in of_type(items, MessageType.PLUGIN_CALL_OUTPUT)]
    assert [o["is_error"] for o in outputs] == [True, True, True]
    exit3, bad_json, unknown = (str(m["content"]) for m in _tool_messages(model.requests[1]))
    assert exit3.startswith("Error:") and "returncode: 3" in exit3
    assert "not valid JSON" in bad_json
    assert "no_such_tool" in unknown
    assert texts(items) == "All three failed."


async def test_an_approval_tool_waits_and_runs_once_approved(
        gateway: RunningGateway, make_agent: AgentFactory) -> None:
    script = [tool_turn("run_shell_command", {"command": "echo ok > a.txt; cat a.txt"}),
              text_turn("Done.")]
    async with ScriptedModel(script) as model:
        agent = make_agent(model.base_url, gateway_tools(gateway), approval_tools="run_*")
        with anyio.fail_after(60):
            first = await run_agent(agent, [user("write a file")], "approve")
            request, = of_type(first, MessageType.MCP_APPROVAL_REQUEST)
            asked = data_of(request) or {}
            assert not of_type(first, MessageType.PLUGIN_CALL_OUTPUT)
            assert len(model.requests) == 1
            second = await run_agent(agent, [_answer(asked["approval_id"], True)], "approve")
    assert asked["name"] == "run_shell_command" and "a.txt" in asked["arguments"]
    assert first[-1] is request
    output, = of_type(second, MessageType.PLUGIN_CALL_OUTPUT)
    assert (data_of(output) or {})["call_id"] == asked["call_id"]
    tool_message, = _tool_messages(model.requests[1])
    assert "stdout: ok" in str(tool_message["content"])
    assert texts(second) == "Done."


async def test_a_rejected_call_is_not_run_and_the_model_is_told_why(
        gateway: RunningGateway, make_agent: AgentFactory) -> None:
    script = [tool_turn("run_shell_command", {"command": "echo no > r.txt"}),
              text_turn("Understood.")]
    async with ScriptedModel(script) as model, \
            AsyncToolGateway(gateway.grpc_address, session="reject", user="u1") as tools:
        agent = make_agent(model.base_url, gateway_tools(gateway),
                           approval_tools="run_shell_command")
        with anyio.fail_after(60):
            first = await run_agent(agent, [user("write a file")], "reject")
            asked = data_of(of_type(first, MessageType.MCP_APPROVAL_REQUEST)[0]) or {}
            with pytest.raises(ApprovalNotFoundError) as unknown:
                await run_agent(agent, [_answer("apr_nope", True)], "reject")
            second = await run_agent(
                agent, [_answer(asked["approval_id"], False, "not now")], "reject")
            exists = await tools.call_tool("list_directory", {"path": "."})
    assert unknown.value.code == "approval_not_found"
    tool_message, = _tool_messages(model.requests[1])
    assert "rejected" in str(tool_message["content"])
    assert "not now" in str(tool_message["content"])
    assert texts(second) == "Understood."
    assert "r.txt" not in exists.text


@dataclass
class _Session:
    id: str
    user_id: str
    messages: list[Message] = field(default_factory=list)


class _SessionService:
    """A fake of an AgentApp's session history service (AgentScope Runtime's API)."""

    def __init__(self, session: _Session) -> None:
        self.session = session
        self.appended: list[Message] = []

    async def get_session(self, user_id: str, session_id: str) -> _Session | None:
        matches = (user_id, session_id) == (self.session.user_id, self.session.id)
        return _Session(self.session.id, self.session.user_id, list(self.session.messages)) \
            if matches else None

    async def create_session(self, user_id: str, session_id: str | None = None) -> _Session:
        raise AssertionError("the app records its runs, not the agent")

    async def append_message(self, session: _Session, message: list[Message]) -> None:
        self.appended.extend(message)


async def test_the_query_function_continues_the_apps_session_history_and_leaves_recording_to_it(
        gateway: RunningGateway) -> None:
    earlier = [user("My name is Ada."),
               Message(role=Role.ASSISTANT, content=[TextContent(text="Hello Ada!")])]
    service = _SessionService(_Session("app-session", "u1", earlier))
    app = SimpleNamespace(session_history=service)
    async with ScriptedModel([text_turn("Your name is Ada.")]) as model:
        agent = ReactAgent(react_settings(model.base_url), gateway_tools(gateway))
        query = react_query(agent)
        request = AgentRequest(input=[user("What is my name?")], session_id="app-session",
                               user_id="u1")
        try:
            with anyio.fail_after(30):
                items = [i async for i in query(app, list(request.input), request=request)]
        finally:
            await agent.close()
    assert [(m["role"], m["content"]) for m in model.requests[0]["messages"][1:]] == [
        ("user", "My name is Ada."), ("assistant", "Hello Ada!"), ("user", "What is my name?")]
    assert texts(items) == "Your name is Ada."
    assert service.appended == []


def _answer(approval_id: str, approve: bool, reason: str = "") -> Message:
    return Message(type=MessageType.MCP_APPROVAL_RESPONSE, role=Role.USER, content=[
        DataContent(data={"approval_id": approval_id, "approve": approve, "reason": reason})])


async def test_cancelling_a_run_mid_tool_call_propagates_and_stops_the_tool(
        gateway: RunningGateway, make_agent: AgentFactory) -> None:
    history = InMemoryConversationHistory()
    script = [tool_turn("run_shell_command", {"command": "sleep 37"}),
              text_turn("Fresh start.")]
    seen: list[object] = []
    async with ScriptedModel(script) as model, \
            AsyncToolGateway(gateway.grpc_address, session="cancel", user="u1") as tools:
        agent = make_agent(model.base_url, gateway_tools(gateway), history=history)

        async def consume() -> None:
            async for item in agent.run([user("sleep")], _request("cancel")):
                seen.append(item)

        with anyio.fail_after(60):
            task = asyncio.ensure_future(consume())
            while not any(isinstance(i, Message) for i in seen):
                await asyncio.sleep(0.02)
            await _until_running(tools, "^sleep 37")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            while await _count(tools, "^sleep 37"):  # the tool stopped with the run
                await asyncio.sleep(0.1)
            items = await run_agent(agent, [user("again")], "cancel")
    tool_message, = _tool_messages(model.requests[1])
    assert tool_message["content"] == INTERRUPTED_OUTPUT
    assert texts(items) == "Fresh start."


async def test_cancelling_a_run_mid_stream_propagates(
        gateway: RunningGateway, make_agent: AgentFactory) -> None:
    script = [text_turn("a slow answer " * 20, chunk_size=2, chunk_delay_s=0.05)]
    deltas: list[str] = []
    async with ScriptedModel(script) as model:
        agent = make_agent(model.base_url, gateway_tools(gateway))

        async def consume() -> None:
            async for item in agent.run([user("talk")], _request("cancel-stream")):
                deltas.append(str(item))

        with anyio.fail_after(30):
            task = asyncio.ensure_future(consume())
            while not deltas:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert 0 < len(deltas) < 100


def _request(session_id: str) -> AgentRequest:
    return AgentRequest(input=[], session_id=session_id, user_id="u1")


async def _count(tools: AsyncToolGateway, pattern: str) -> int:
    ps = await tools.call_tool("run_shell_command",
                               {"command": f"ps -eo args | grep -c '{pattern}' || true"})
    block = ps.content[0]
    assert isinstance(block, TextBlock)
    return int(block.text)


async def _until_running(tools: AsyncToolGateway, pattern: str) -> None:
    while not await _count(tools, pattern):
        await asyncio.sleep(0.05)
