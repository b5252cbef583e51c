"""Friday: the seed's assistant (AgentScope Runtime's example app), on Sandgate.

The seed built Friday from an agentscope ReActAgent with DashScope's qwen-turbo
and an ``execute_python_code`` tool. Here the same app runs Sandgate's built-in
ReAct agent: any OpenAI-compatible model (DashScope's compatible mode is the
example), with the gateway's sandbox tools (``run_ipython_cell``,
``run_shell_command``, files) running in one sandbox per conversation.

Configuration (environment):
    SANDGATE_MODEL_BASE_URL  e.g. https://dashscope.aliyuncs.com/compatible-mode/v1
    SANDGATE_MODEL           e.g. qwen-turbo
    DASHSCOPE_API_KEY        (or SANDGATE_MODEL_API_KEY / OPENAI_API_KEY)
    SANDGATE_GATEWAY_TARGET  the tool gateway's gRPC address (default 127.0.0.1:8001)
    SANDGATE_AGENT_APPROVAL_TOOLS  tools that wait for a human's approval, e.g. run_shell_command

Run: ``SANDGATE_AGENT_APP=examples.friday.app:agent_app make run``, or alone
``python examples/friday/app.py`` (see README.md beside this file).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from agent_svc.react import ReactAgent, ReactSettings, gateway_factory, react_query
from sandgate.agent import AgentApp, AgentRequest, Message

agent_app = AgentApp(
    app_name="Friday",
    app_description="A helpful assistant",
)

settings = ReactSettings(
    system_prompt="You're a helpful assistant named Friday. You can run Python and shell "
                  "commands in your own sandbox with your tools: when a request needs code, "
                  "run it and report what it printed. Answer in the user's language.")


@agent_app.init
async def init_func(self: AgentApp) -> None:
    # Built here, inside the server's event loop, which its gRPC channel belongs to.
    self.state.agent = ReactAgent(settings, gateway_factory(settings))


@agent_app.shutdown
async def shutdown_func(self: AgentApp) -> None:
    await self.state.agent.close()


@agent_app.query(framework="sandgate")
async def query_func(self: AgentApp, msgs: Sequence[Message],
                     request: AgentRequest | None = None, **kwargs: object
                     ) -> AsyncIterator[str | Message]:
    # The conversation continues the app's session history for request.session_id,
    # and its tools run in that session's sandbox.
    async for item in react_query(self.state.agent)(self, msgs, request=request):
        yield item


if __name__ == "__main__":
    agent_app.run(host="127.0.0.1", port=8090)
