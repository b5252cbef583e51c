"""The built-in app: what ``sandgate up`` and ``sandgate agent-server`` serve when no
app is named.

It is an :class:`AgentApp` whose query function is the built-in ReAct agent
(:mod:`agent_svc.react`): any OpenAI-compatible chat model, with the tool
gateway's sandbox tools bound to each request's session. So a fresh
``sandgate up`` answers ``POST /process`` with no user code::

    SANDGATE_MODEL_BASE_URL=https://dashscope.aliyuncs.com/compatible-mode/v1
    SANDGATE_MODEL=qwen-turbo DASHSCOPE_API_KEY=sk-... sandgate up

- ``/readiness`` is true once the gateway answers a tool listing (with the key
  the agent presents to it);
- without model settings every run ends ``failed`` with the code
  ``model_not_configured`` and a message naming the keys to set;
- shutdown closes the model's HTTP client and the gateway channel.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from opentelemetry.trace import TracerProvider

from agent_svc.app import AgentApp
from agent_svc.react import ReactAgent, ReactSettings, gateway_factory, react_query
from agent_svc.react.toolbox import ToolClient
from agent_svc.settings import AgentSettings
from sandgate.sdk.errors import SandgateError

__all__ = ["BUILTIN_APP_NAME", "READINESS_TIMEOUT_S", "build_builtin_app", "builtin_settings"]

BUILTIN_APP_NAME = "Sandgate agent"
READINESS_TIMEOUT_S = 2.0
"""Deadline of the readiness probe's tool listing: a probe must answer quickly."""


class _SharedClient:
    """One gateway client for the agent and the readiness check, made on first use
    (inside the running event loop, which its gRPC channel belongs to)."""

    def __init__(self, factory: Callable[[], ToolClient]) -> None:
        self._factory = factory
        self._client: ToolClient | None = None

    def get(self) -> ToolClient:
        if self._client is None:
            self._client = self._factory()
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()


def builtin_settings(agent: AgentSettings, env_file: Path | None = None) -> ReactSettings:
    """The built-in agent's settings from the environment (``env_file`` beneath it).

    The key presented to the gateway is ``SANDGATE_GATEWAY_KEY``, else the agent
    service's own service key (``BEARER_TOKEN``), as the gateway presents its
    service key to SandboxService.

    Raises:
        FileNotFoundError: ``env_file`` does not exist.
        pydantic.ValidationError: a setting is out of range.
    """
    if env_file is not None and not env_file.is_file():
        raise FileNotFoundError(f"config file {env_file} does not exist")
    settings = ReactSettings(_env_file=env_file)
    if not settings.gateway_api_key and agent.bearer_token:
        settings = settings.model_copy(update={"gateway_api_key": agent.bearer_token})
    return settings


def build_builtin_app(settings: ReactSettings, *,
                      tools: Callable[[], ToolClient] | None = None,
                      tracer_provider: TracerProvider | None = None) -> AgentApp:
    """The built-in ReAct agent served as an :class:`AgentApp`.

    Args:
        settings: the model endpoint, the gateway's address and key, limits.
        tools: makes the gateway client (default: the SDK's ``AsyncToolGateway``
            for ``settings.gateway_target``).
        tracer_provider: where run, model call and tool call spans go (default:
            the global provider).

    Returns:
        An app to serve (``start_agent_server``, ``serve_forever``); its runs
        raise the agent's errors (:mod:`agent_svc.react.errors`), which end them
        ``failed`` with the error's ``code``.
    """
    client = _SharedClient(tools or gateway_factory(settings))
    agent = ReactAgent(settings, client.get, tracer_provider=tracer_provider)
    app = AgentApp(
        app_name=BUILTIN_APP_NAME,
        app_description="A ReAct agent on an OpenAI-compatible model, with Sandgate's "
                        "sandbox tools (Python, shell, files, browser) through the gateway.",
        tracer_provider=tracer_provider)
    app.query(framework="sandgate")(react_query(agent))

    @app.readiness_check
    async def tool_gateway() -> bool:
        try:
            await client.get().list_tools(timeout=READINESS_TIMEOUT_S)
        except SandgateError:
            return False
        return True

    @app.shutdown
    async def close_clients(_: AgentApp) -> None:
        try:
            await agent.close()
        finally:
            # The agent closes the client only if a run made it; a probe may have.
            await client.close()

    return app
