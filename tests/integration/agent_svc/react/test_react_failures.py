"""How a run ends when the model endpoint or the gateway fails: errors with stable codes.

The model is the scripted model server (a real HTTP server); the gateway is a
fake ToolClient with no tools (or an SDK client of a closed port), since these
runs fail before any tool would run.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping

import anyio
import pytest

from agent_svc.protocol import AgentRequest
from agent_svc.react import (
    InMemoryConversationHistory,
    ModelNotConfiguredError,
    ReactAgent,
    ReactAgentError,
    ReactSettings,
)
from agent_svc.react.toolbox import ToolClient
from sandgate.sdk import AsyncToolGateway, ToolCallResult, ToolInfo
from sandgate.sdk.tools import ProgressCallback
from tests.fixtures.scripted_model import ScriptedModel, Turn, text_turn

from .conftest import AgentFactory, run_agent, user


class NoTools:
    """A fake gateway (implements ToolClient) whose catalog is empty."""

    async def list_tools(self, *, timeout: float = 30.0) -> list[ToolInfo]:
        return []

    async def call_tool(self, name: str, arguments: Mapping[str, object] | None = None, *,
                        session: str | None = None, user: str | None = None,
                        on_progress: ProgressCallback | None = None,
                        timeout: float = 600.0) -> ToolCallResult:
        raise AssertionError("no tool should be called")

    async def close(self) -> None:
        return None


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize(("turn", "code"), [
    (Turn(text="overloaded", status=503), "model_unavailable"),
    (Turn(text="no such model", status=404), "model_rejected"),
    (Turn(text="bad key", status=401), "model_rejected"),
    (Turn(delay_s=30), "model_timeout"),
    (Turn(text="slow " * 10, chunk_delay_s=30), "model_timeout"),
    (Turn(raw="data: {this is not json\n\n"), "model_bad_response"),
    (Turn(raw="<html>a login page</html>", raw_content_type="text/html"),
     "model_bad_response"),
    (Turn(raw='data: {"object": "chat.completion.chunk"}\n\n'), "model_bad_response"),
    (Turn(raw='data: {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, '
              '"function": {"arguments": "{}"}}]}}]}\n\ndata: [DONE]\n\n'),
     "model_bad_response"),
], ids=["5xx", "404", "401", "silent", "stalls", "not-json", "html", "no-choices",
        "nameless-call"])
async def test_a_failing_model_ends_the_run_with_a_stable_code(
        make_agent: AgentFactory, turn: Turn, code: str) -> None:
    async with ScriptedModel([turn]) as model:
        agent = make_agent(model.base_url, NoTools, model_timeout_s=0.5)
        with anyio.fail_after(30), pytest.raises(ReactAgentError) as info:
            await run_agent(agent, [user("hi")], "fails")
    assert info.value.code == code
    assert "test-key" not in str(info.value)


async def test_an_unreachable_model_is_model_unavailable(make_agent: AgentFactory) -> None:
    agent = make_agent(f"http://127.0.0.1:{_closed_port()}/v1", NoTools)
    with anyio.fail_after(30), pytest.raises(ReactAgentError) as info:
        await run_agent(agent, [user("hi")], "down")
    assert info.value.code == "model_unavailable"


async def test_an_unreachable_gateway_is_tools_unavailable(make_agent: AgentFactory) -> None:
    port = _closed_port()
    tools: Callable[[], ToolClient] = lambda: AsyncToolGateway(f"127.0.0.1:{port}")  # noqa: E731
    async with ScriptedModel([text_turn("never asked")]) as model:
        agent = make_agent(model.base_url, tools)
        with anyio.fail_after(60), pytest.raises(ReactAgentError) as info:
            await run_agent(agent, [user("hi")], "no-gateway")
    assert info.value.code == "tools_unavailable"
    assert model.requests == []


async def test_without_model_settings_a_run_fails_naming_the_keys_to_set() -> None:
    agent = ReactAgent(ReactSettings(_env_file=None, model_base_url="", model="",
                                     model_api_key=""), NoTools,
                       InMemoryConversationHistory())
    with pytest.raises(ModelNotConfiguredError) as info:
        await run_agent(agent, [user("hi")], "unconfigured")
    assert info.value.code == "model_not_configured"
    for key in ("SANDGATE_MODEL_BASE_URL", "SANDGATE_MODEL", "SANDGATE_MODEL_API_KEY",
                "DASHSCOPE_API_KEY"):
        assert key in info.value.message


async def test_the_requests_model_parameters_reach_the_model(make_agent: AgentFactory) -> None:
    async with ScriptedModel([text_turn("ok")]) as model:
        agent = make_agent(model.base_url, NoTools)
        request = AgentRequest(input=[user("hi")], session_id="params", model="other-model",
                               temperature=0.2, max_tokens=64, seed=7)
        with anyio.fail_after(30):
            items = [i async for i in agent.run(request.input, request)]
    sent = model.requests[0]
    assert (sent["model"], sent["temperature"], sent["max_tokens"], sent["seed"]) == (
        "other-model", 0.2, 64, 7)
    assert "tools" not in sent and "top_p" not in sent
    assert items == ["ok"]
