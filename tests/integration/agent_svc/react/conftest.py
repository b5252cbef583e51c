"""Fixtures: the gateway's (a real sandbox_svc and gateway), a fake model server, agents."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

import pytest

from agent_svc.protocol import AgentRequest, Message, Role, TextContent
from agent_svc.react import InMemoryConversationHistory, ReactAgent, ReactSettings
from agent_svc.react.toolbox import ToolClient
from gateway.server import RunningGateway
from sandgate.sdk import AsyncToolGateway

# The gateway tests' fixtures: a real sandbox_svc with bwrap sandboxes, a real gateway.
from tests.integration.gateway.conftest import (  # noqa: F401
    gateway,
    sandbox_service,
    watchdog,
)

Yielded = str | Message


def user(text: str) -> Message:
    return Message(role=Role.USER, content=[TextContent(text=text)])


def react_settings(base_url: str, **overrides: object) -> ReactSettings:
    """Settings for the scripted model; nothing read from the environment matters."""
    values: dict[str, object] = dict(
        model_base_url=base_url, model="scripted", model_api_key="test-key",
        model_timeout_s=10.0, model_max_retries=0, max_steps=5, approval_tools="",
        tools_ttl_s=30.0, tool_timeout_s=60.0)
    values.update(overrides)
    return ReactSettings(_env_file=None, **values)  # type: ignore[arg-type]


async def run_agent(agent: ReactAgent, msgs: Sequence[Message], session_id: str,
                    user_id: str = "u1") -> list[Yielded]:
    request = AgentRequest(input=list(msgs), session_id=session_id, user_id=user_id)
    return [item async for item in agent.run(msgs, request)]


def texts(items: Sequence[Yielded]) -> str:
    return "".join(i for i in items if isinstance(i, str))


def of_type(items: Sequence[Yielded], kind: str) -> list[Message]:
    return [i for i in items if isinstance(i, Message) and i.type == kind]


AgentFactory = Callable[..., ReactAgent]


def gateway_tools(running: RunningGateway) -> Callable[[], ToolClient]:
    """Makes the SDK's client of a running gateway."""
    return lambda: AsyncToolGateway(running.grpc_address)


@pytest.fixture
async def make_agent() -> AsyncIterator[AgentFactory]:
    """Builds agents (closed after the test)."""
    agents: list[ReactAgent] = []

    def factory(base_url: str, tools: Callable[[], ToolClient], *,
                history: InMemoryConversationHistory | None = None,
                **overrides: object) -> ReactAgent:
        agent = ReactAgent(react_settings(base_url, **overrides), tools,
                           history or InMemoryConversationHistory())
        agents.append(agent)
        return agent

    yield factory
    for agent in agents:
        await agent.close()
