"""Upstream MCP servers: their tools join the catalog, and a dead one breaks nothing."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import mcp_types as types
import pytest

from sandbox_svc.server import RunningService

from .conftest import mcp_client, run_gateway

SERVER = Path(__file__).with_name("upstream_server.py")


def _text(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


@pytest.fixture
async def http_upstream() -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(SERVER), "http", stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    async with asyncio.timeout(20):
        port = int(await process.stdout.readline())
    yield process, port
    if process.returncode is None:
        process.kill()
    await process.wait()


async def test_upstream_tools_appear_work_and_a_dead_upstream_breaks_nothing(
        sandbox_service: RunningService, tmp_path: Path,
        http_upstream: tuple[asyncio.subprocess.Process, int]) -> None:
    process, port = http_upstream
    config = tmp_path / "upstreams.json"
    config.write_text(json.dumps({"mcpServers": {
        "remote": {"url": f"http://127.0.0.1:{port}/mcp", "headers": {"X-Test": "1"},
                   "timeout_s": 5},
        "local": {"command": sys.executable, "args": [str(SERVER), "stdio"], "prefix": "loc_",
                  "timeout_s": 1},
        "broken": {"command": "/nonexistent/mcp-server"},
    }}))
    async with run_gateway(sandbox_service, upstreams_file=config) as gateway:
        async with mcp_client(gateway.mcp_url) as client:
            with anyio.fail_after(30):
                names = {t.name for t in (await client.list_tools()).tools}
                echoed = await client.call_tool("remote__echo", {"text": "hi"})
                added = await client.call_tool("loc_add", {"a": 2, "b": 3})
                invalid = await client.call_tool("loc_add", {"a": "two"})
                slow = await client.call_tool("loc_nap", {"seconds": 5})
                after_slow = await client.call_tool("loc_add", {"a": 1, "b": 1})
            assert {"remote__echo", "remote__add", "loc_echo", "loc_add",
                    "run_shell_command"} <= names
            assert not any(n.startswith("broken") for n in names)
            assert _text(echoed) == "upstream says: hi" and not echoed.is_error
            assert _text(added) == "5"
            assert invalid.is_error
            assert slow.is_error and "within 1 s" in _text(slow)
            assert _text(after_slow) == "2"

            process.kill()
            await process.wait()
            with anyio.fail_after(30):
                gone = await client.call_tool("remote__echo", {"text": "hi"})
                still = await client.call_tool("loc_echo", {"text": "still here"})
                shell = await client.call_tool("run_shell_command", {"command": "echo ok"})
                after = {t.name for t in (await client.list_tools()).tools}
            assert gone.is_error and "remote" in _text(gone)
            assert _text(still) == "upstream says: still here"
            assert not shell.is_error
            assert "remote__echo" not in after and "loc_echo" in after
        status = {s.name: s for s in gateway.federation.status()}
        assert status["local"].ready and not status["remote"].ready
        assert not status["broken"].ready and status["broken"].error
