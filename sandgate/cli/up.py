"""``sandgate up``: every Sandgate service, in the foreground.

SandboxService (the control plane), the tool gateway (MCP over HTTP and
ToolGateway over gRPC) and the agent service (``/process`` and AgentService
gRPC, serving the built-in ReAct agent, or the app ``SANDGATE_AGENT_APP``
names) start in that order and stop in the reverse order on SIGINT or SIGTERM.
The output ends with ready-to-paste configuration for MCP clients and a curl
line for ``/process`` (:mod:`sandgate.cli.up_text`).

With keys, each service accepts the same tenant keys; the gateway reaches
SandboxService, and the agent reaches the gateway, with the service key
(``BEARER_TOKEN``, or one made up for this run when only tenant keys are set).
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from agent_svc.app import AgentApp
from agent_svc.builtin import build_builtin_app, builtin_settings
from agent_svc.react import ReactSettings
from agent_svc.react.errors import ModelNotConfiguredError
from agent_svc.server import load_app, start_agent_server
from agent_svc.settings import AgentSettings
from gateway.server import build_gateway
from gateway.settings import GatewaySettings
from sandbox_svc.server import build_server
from sandbox_svc.settings import SandboxServiceSettings
from sandgate.cli.up_text import agent_lines, client_config_lines

__all__ = ["client_config_lines", "run_up"]

logger = logging.getLogger("sandgate.up")


def _say(line: str) -> None:
    print(line, flush=True)


def _first_key(keys: dict[str, str], service_keys: frozenset[str]) -> str | None:
    """The key to print: a tenant's key if there is one, else the service key."""
    ordered = sorted(keys, key=lambda k: k in service_keys)
    return ordered[0] if ordered else None


def _reachable(host: str, port: int) -> str:
    """An address to dial for a listener on ``host`` (a wildcard is dialled on loopback)."""
    if host in ("", "0.0.0.0", "::"):
        return f"127.0.0.1:{port}"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _agent_app(settings: AgentSettings, config: Path | None, gateway_target: str,
               gateway_key: str) -> tuple[AgentApp, ReactSettings | None]:
    """The app to serve and, for the built-in agent, its settings."""
    if settings.app:
        return load_app(settings.app), None
    react = builtin_settings(settings, config)
    react = react.model_copy(update={"gateway_target": gateway_target,
                                     "gateway_api_key": react.gateway_api_key or gateway_key})
    return build_builtin_app(react), react


def _model_configured(react: ReactSettings) -> bool:
    try:
        react.check_model()
    except ModelNotConfiguredError:
        return False
    return True


async def run_up(config: Path | None) -> int:
    """Start the three services, print how to use them, serve until a signal.

    Raises:
        FileNotFoundError: ``config`` does not exist.
        ValueError: a malformed setting or key list.
        OSError: a port is busy (ListenError) or the state dir is unusable.
        RuntimeError: the agent server failed to start, or a gateway worker exited
            (WorkerExitedError).
    """
    settings = SandboxServiceSettings.load(config)
    gateway_settings = GatewaySettings.load(config)
    agent_settings = AgentSettings.load(config)
    if "state_dir" not in agent_settings.model_fields_set:
        # One state dir for everything up starts (the sandbox one may come from a seed key).
        agent_settings = agent_settings.model_copy(update={"state_dir": settings.state_dir})
    gateway_keyed = bool(gateway_settings.tenant_keys())
    keyed = bool(gateway_keyed or settings.tenant_keys())
    service_key = gateway_settings.control_plane_key() or settings.bearer_token
    if keyed and not service_key:
        # The gateway acts for each tenant on SandboxService; that needs a service key.
        service_key = secrets.token_urlsafe(24)
        settings = settings.model_copy(update={"bearer_token": service_key})
    if gateway_keyed and not gateway_settings.bearer_token:
        # The agent calls the gateway as a service, with the same key.
        gateway_settings = gateway_settings.model_copy(update={"bearer_token": service_key})
    _say(f"sandgate: starting SandboxService (state {settings.state_dir}, "
         f"warm pools filling in the background)")
    running = await build_server(settings)
    try:
        gateway = await build_gateway(gateway_settings.model_copy(update={
            "sandbox_target": running.address, "sandbox_key": service_key}))
    except BaseException:
        await running.abort()  # a failed start hands adopted sandboxes on untouched
        raise
    try:
        app, react = _agent_app(agent_settings, config,
                                _reachable(gateway.host, gateway.grpc_port),
                                gateway_settings.bearer_token if gateway_keyed else "")
        agent = await start_agent_server(app, agent_settings)
    except BaseException:
        await gateway.stop()
        await running.stop()
        raise
    pools = await running.manager.pool_status()
    key = _first_key(gateway_settings.tenant_keys(), gateway_settings.service_keys())
    agent_key = _first_key(agent_settings.tenant_keys(), agent_settings.service_keys())
    _say("")
    _say(f"  SandboxService (gRPC)  {running.address}"
         f"   [{'auth: bearer keys' if settings.tenant_keys() else 'no API key: loopback only'}]")
    _say(f"  MCP (streamable HTTP)  {gateway.mcp_url}"
         f"   [{'auth: bearer keys' if not gateway.open else 'no key: loopback only'}]")
    _say(f"  ToolGateway (gRPC)     {gateway.grpc_address}")
    _say(f"  Agent (/process, SSE)  {agent.http_url}{app.endpoint_path}"
         f"   [{'auth: bearer keys' if agent.keyed else 'no key: loopback only'}]")
    if agent.grpc_address:
        _say(f"  AgentService (gRPC)    {agent.grpc_address}")
    _say("  templates              " + ", ".join(
        f"{p.template} (pool {p.target_size})" for p in pools))
    _say(f"  key                    {key or 'no key: loopback only'}")
    _say("")
    _say("  connect an MCP client:")
    for line in client_config_lines(gateway.mcp_url, key):
        _say(line)
    _say("")
    for line in agent_lines(f"{agent.http_url}{app.endpoint_path}", agent_key,
                            app_name=app.app_name,
                            model=(react.model, react.model_base_url)
                            if react is not None and _model_configured(react) else None,
                            builtin=react is not None):
        _say(line)
    _say("")
    _say("  or use the SDK:")
    target = f" --target {running.address}" if running.port != 8002 else ""
    _say(f"    .venv/bin/sandgate sandbox create --template base{target}")
    _say(f"    .venv/bin/sandgate sandbox exec <id>{target} -- uname -a")
    _say("    .venv/bin/python -c \"from sandgate import Sandbox; "
         "s = Sandbox.create(); print(s.commands.run('echo hi').stdout); s.kill()\"")
    _say("")
    _say("  Ctrl-C stops Sandgate" + (" and deletes its sandboxes" if settings.auto_cleanup
                                      else " (sandboxes kept: AUTO_CLEANUP=false)"))

    async def stop() -> None:
        _say("sandgate: stopping")
        try:
            await agent.stop()
        finally:
            try:
                await gateway.stop()
            finally:
                await running.stop()

    await gateway.serve_until_signal(stop)  # raises WorkerExitedError if a worker exits
    return 0
