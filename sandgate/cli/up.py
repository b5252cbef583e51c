"""``sandgate up``: every service that exists so far, in the foreground.

SandboxService (the control plane) and the tool gateway (MCP over HTTP and
ToolGateway over gRPC) start together; the output ends with ready-to-paste
configuration for MCP clients.
"""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path

from gateway.server import build_gateway
from gateway.settings import GatewaySettings
from sandbox_svc.server import build_server
from sandbox_svc.settings import SandboxServiceSettings
from sandgate.service.assembly import serve_until_signal

__all__ = ["client_config_lines", "run_up"]

logger = logging.getLogger("sandgate.up")


def _say(line: str) -> None:
    print(line, flush=True)


def client_config_lines(url: str, key: str | None) -> list[str]:
    """How to point Claude Code, Cursor and VS Code at the gateway."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    header_flag = f' --header "Authorization: Bearer {key}"' if key else ""
    cursor: dict[str, object] = {"url": url, **({"headers": headers} if headers else {})}
    vscode: dict[str, object] = {"type": "http", **cursor}
    lines = ["  Claude Code:", f"    claude mcp add --transport http sandgate {url}{header_flag}",
             "", "  Cursor (~/.cursor/mcp.json):"]
    lines += ["    " + line for line in
              json.dumps({"mcpServers": {"sandgate": cursor}}, indent=2).splitlines()]
    lines += ["", "  VS Code (.vscode/mcp.json):"]
    lines += ["    " + line for line in
              json.dumps({"servers": {"sandgate": vscode}}, indent=2).splitlines()]
    lines += ["", "  Clients that name no session share one sandbox per API key (one in all "
              "without keys);", "  give a client its own with the header "
              "X-Sandgate-Session: <any name>."]
    return lines


async def run_up(config: Path | None) -> int:
    settings = SandboxServiceSettings.load(config)
    gateway_settings = GatewaySettings.load(config)
    keyed = bool(gateway_settings.tenant_keys() or settings.tenant_keys())
    service_key = gateway_settings.control_plane_key() or settings.bearer_token
    if keyed and not service_key:
        # The gateway acts for each tenant on SandboxService; that needs a service key.
        service_key = secrets.token_urlsafe(24)
        settings = settings.model_copy(update={"bearer_token": service_key})
    _say(f"sandgate: starting SandboxService (state {settings.state_dir}, "
         f"warm pools filling in the background)")
    running = await build_server(settings)
    try:
        gateway = await build_gateway(gateway_settings.model_copy(update={
            "sandbox_target": running.address, "sandbox_key": service_key}))
    except BaseException:
        await running.abort()  # a failed start hands adopted sandboxes on untouched
        raise
    pools = await running.manager.pool_status()
    keys = settings.tenant_keys()
    # The key to print: a tenant's key if there is one, else the service key.
    gateway_keys = sorted(gateway_settings.tenant_keys(),
                          key=lambda k: k in gateway_settings.service_keys())
    key = gateway_keys[0] if gateway_keys else None
    _say("")
    _say(f"  SandboxService (gRPC)  {running.address}"
         f"   [{'auth: bearer keys' if keys else 'no API key: loopback only'}]")
    _say(f"  MCP (streamable HTTP)  {gateway.mcp_url}"
         f"   [{'auth: bearer keys' if not gateway.open else 'no key: loopback only'}]")
    _say(f"  ToolGateway (gRPC)     {gateway.grpc_address}")
    _say("  templates              " + ", ".join(
        f"{p.template} (pool {p.target_size})" for p in pools))
    _say(f"  key                    {key or 'no key: loopback only'}")
    _say("")
    _say("  connect an MCP client:")
    for line in client_config_lines(gateway.mcp_url, key):
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
        await gateway.stop()
        await running.stop()

    await serve_until_signal(stop)
    return 0
