"""32 concurrent MCP sessions: each gets its own sandbox and only sees its own files."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import anyio
import mcp_types as types

from gateway.mcp_server import SANDBOX_META
from gateway.server import RunningGateway
from sandbox_svc.server import RunningService

from .conftest import SERVICE_KEY, mcp_client, run_gateway

CLIENTS = 32


async def _own_sandbox(url: str, name: str, headers: Mapping[str, str]) -> str:
    async with mcp_client(url, headers) as client:
        wrote = await client.call_tool("write_file", {"path": f"{name}.txt", "content": name})
        listed = await client.call_tool("run_shell_command", {"command": "ls *.txt; cat *.txt"})
    assert not wrote.is_error and not listed.is_error, (wrote.content, listed.content)
    first = listed.content[0]
    assert isinstance(first, types.TextContent)
    assert first.text == f"{name}.txt\n{name}", "a session saw another session's files"
    return str((listed.meta or {})[SANDBOX_META])


async def test_32_sessions_with_distinct_session_headers_get_32_sandboxes(
        gateway: RunningGateway) -> None:
    with anyio.fail_after(60):
        sandboxes = await asyncio.gather(*(
            _own_sandbox(gateway.mcp_url, f"s{i}", {"X-Sandgate-Session": f"s{i}"})
            for i in range(CLIENTS)))
    assert len(set(sandboxes)) == CLIENTS


async def test_32_tenants_with_distinct_api_keys_get_32_sandboxes(
        sandbox_service: RunningService) -> None:
    keys = ",".join(f"key-{i}=tenant-{i}" for i in range(CLIENTS))
    async with run_gateway(sandbox_service, api_keys=keys, bearer_token=SERVICE_KEY) as gateway:
        with anyio.fail_after(60):
            sandboxes = await asyncio.gather(*(
                _own_sandbox(gateway.mcp_url, f"t{i}", {"Authorization": f"Bearer key-{i}"})
                for i in range(CLIENTS)))
    assert len(set(sandboxes)) == CLIENTS
    tenants = {r.tenant for i in range(CLIENTS)
               for r in await sandbox_service.manager.list_sandboxes(f"tenant-{i}")}
    assert tenants == {f"tenant-{i}" for i in range(CLIENTS)}
