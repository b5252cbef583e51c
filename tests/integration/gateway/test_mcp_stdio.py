"""``sandgate mcp``: the official MCP client over stdio."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import mcp_types as types
from mcp import Client

from sandbox_svc.local.statelock import StateLock
from sandbox_svc.server import RunningService

from .conftest import SERVICE_KEY, sandgate_mcp


def _text(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def test_sandgate_mcp_serves_the_tools_of_a_running_sandbox_service(
        sandbox_service: RunningService) -> None:
    params = sandgate_mcp("--target", sandbox_service.address, "--api-key", SERVICE_KEY,
                           "--session", "ide")
    async with Client(params) as client:
        with anyio.fail_after(60):
            names = {t.name for t in (await client.list_tools()).tools}
            wrote = await client.call_tool("write_file", {"path": "hello.txt", "content": "hi"})
            shell = await client.call_tool("run_shell_command", {"command": "cat hello.txt"})
            failed = await client.call_tool("run_shell_command", {"command": "exit 4"})
    assert {"run_shell_command", "run_ipython_cell", "read_file", "write_file"} <= names
    assert not wrote.is_error
    assert _text(shell) == "hi0"
    assert failed.is_error
    bound = await sandbox_service.manager.list_sandboxes("default")
    assert [r.session_id for r in bound] == ["ide"]


async def test_sandgate_mcp_starts_a_private_sandbox_service_when_asked(
        state_dir: Path) -> None:
    env = {"SANDGATE_STATE_DIR": str(state_dir), "SANDGATE_POOL_SIZE": "0",
           "PATH": os.environ.get("PATH", "")}
    async with Client(sandgate_mcp("--embedded", env=env), mode="legacy") as client:
        with anyio.fail_after(60):
            cell = await client.call_tool("run_ipython_cell", {"code": "6 * 7"})
        (private,) = state_dir.glob("stdio-*")
        assert StateLock.try_acquire(private, index_dir=None) is None  # its owner holds it
    assert "42" in _text(cell)
    # The private service removes its state when the client goes away.
    assert not any(state_dir.glob("stdio-*"))
