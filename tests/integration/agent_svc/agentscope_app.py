"""An AgentApp around a real agentscope 1.x ReActAgent with a scripted model.

Runs only in the agentscope venv the adapter test builds (agentscope 1.x needs
``mcp<2``, which our main venv cannot have). The model is a stand-in that
answers without a network: first a tool call, then the answer.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from agentscope.agent import ReActAgent
from agentscope.formatter import OpenAIChatFormatter
from agentscope.memory import InMemoryMemory
from agentscope.message import TextBlock, ToolUseBlock
from agentscope.model import ChatModelBase, ChatResponse
from agentscope.pipeline import stream_printing_messages
from agentscope.tool import Toolkit, ToolResponse

from sandgate.agent import AgentApp, AgentRequest


def add(a: int, b: int) -> ToolResponse:
    """Add two integers.

    Args:
        a (int): the first number.
        b (int): the second number.
    """
    return ToolResponse(content=[TextBlock(type="text", text=str(a + b))])


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return " ".join(part.get("text", "") for part in content or ()
                            if isinstance(part, dict))
    return ""


class ScriptedModel(ChatModelBase):
    """A streaming chat model that first calls ``add(2, 2)`` and then answers."""

    def __init__(self) -> None:
        super().__init__("scripted", stream=True)
        self.calls = 0

    async def __call__(self, messages: list[dict[str, Any]], *args: Any, **kwargs: Any
                       ) -> AsyncGenerator[ChatResponse, None]:
        self.calls += 1
        first = self.calls == 1
        question = _last_user_text(messages)

        async def stream() -> AsyncGenerator[ChatResponse, None]:
            if first:
                yield ChatResponse(content=[TextBlock(type="text", text="Let me")])
                yield ChatResponse(content=[
                    TextBlock(type="text", text="Let me add."),
                    ToolUseBlock(type="tool_use", id="call-1", name="add",
                                 input={"a": 2, "b": 2})])
            else:
                answer = f"You asked: {question}. 2 + 2 = 4"
                yield ChatResponse(content=[TextBlock(type="text", text=answer[:10])])
                yield ChatResponse(content=[TextBlock(type="text", text=answer)])

        return stream()


app = AgentApp(app_name="Friday", app_description="agentscope adapter test")


@app.query(framework="agentscope")
async def query_func(self: AgentApp, msgs: list[Any], request: AgentRequest | None = None,
                     **kwargs: Any) -> AsyncIterator[Any]:
    toolkit = Toolkit()
    toolkit.register_tool_function(add)
    agent = ReActAgent(name="Friday", sys_prompt="You are Friday.", model=ScriptedModel(),
                       formatter=OpenAIChatFormatter(), toolkit=toolkit,
                       memory=InMemoryMemory())
    agent.set_console_output_enabled(enabled=False)
    async for msg, last in stream_printing_messages(agents=[agent], coroutine_task=agent(msgs)):
        yield msg, last
