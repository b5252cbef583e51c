"""Session binding over MCP: explicit sessions, legacy session ids, release, lost sandboxes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from gateway.mcp_server import SANDBOX_META
from gateway.server import RunningGateway
from sandbox_svc.local.backend import LocalBackend
from sandbox_svc.server import RunningService

from .conftest import mcp_client, run_gateway


def _stdout(result: types.CallToolResult) -> str:
    first = result.content[0]
    assert isinstance(first, types.TextContent)
    return first.text


def _sandbox(result: types.CallToolResult) -> str:
    return str((result.meta or {})[SANDBOX_META])


async def _live(service: RunningService) -> set[str]:
    return {r.sandbox_id for r in await service.manager.list_sandboxes("default")}


async def test_a_session_keeps_its_sandbox_across_clients_and_reconnects(
        gateway: RunningGateway) -> None:
    headers = {"X-Sandgate-Session": "keep"}
    async with mcp_client(gateway.mcp_url, headers) as client:
        with anyio.fail_after(30):
            first = await client.call_tool("run_shell_command", {"command": "echo 1 > n"})
    async with mcp_client(gateway.mcp_url, headers, mode="legacy") as client:
        with anyio.fail_after(30):
            again = await client.call_tool("run_shell_command", {"command": "cat n"})
    assert _stdout(again) == "1\n"
    assert _sandbox(again) == _sandbox(first)


async def test_legacy_clients_get_their_sandbox_from_their_mcp_session_id(
        gateway: RunningGateway, sandbox_service: RunningService) -> None:
    async with mcp_client(gateway.mcp_url, mode="legacy") as one, \
            mcp_client(gateway.mcp_url, mode="legacy") as two:
        assert one.protocol_version == two.protocol_version == "2025-11-25"
        with anyio.fail_after(30):
            await one.call_tool("write_file", {"path": "who", "content": "one"})
            await two.call_tool("write_file", {"path": "who", "content": "two"})
            mine = await one.call_tool("read_file", {"path": "who"})
            theirs = await two.call_tool("read_file", {"path": "who"})
        assert (_stdout(mine), _stdout(theirs)) == ("one", "two")
        assert _sandbox(mine) != _sandbox(theirs)
        assert {_sandbox(mine), _sandbox(theirs)} <= await _live(sandbox_service)
    # Closing a legacy client ends its MCP session (DELETE) and releases its sandbox.
    assert not {_sandbox(mine), _sandbox(theirs)} & await _live(sandbox_service)


async def test_sandbox_release_discards_the_session_sandbox(gateway: RunningGateway) -> None:
    async with mcp_client(gateway.mcp_url, {"X-Sandgate-Session": "rel"}) as client:
        with anyio.fail_after(30):
            before = await client.call_tool("run_shell_command", {"command": "touch mark"})
            released = await client.call_tool("sandbox_release", {})
            after = await client.call_tool("run_shell_command", {"command": "ls"})
    assert _sandbox(before) in _stdout(released)
    assert _sandbox(after) != _sandbox(before)
    assert "mark" not in _stdout(after)


async def test_delete_releases_the_session_it_names(gateway: RunningGateway,
                                                    sandbox_service: RunningService) -> None:
    headers = {"X-Sandgate-Session": "bye"}
    async with mcp_client(gateway.mcp_url, headers) as client:
        with anyio.fail_after(30):
            result = await client.call_tool("run_shell_command", {"command": "true"})
    assert _sandbox(result) in await _live(sandbox_service)
    async with httpx2.AsyncClient() as http:
        reply = await http.delete(gateway.mcp_url, headers=headers)
    assert reply.status_code == 204
    assert _sandbox(result) not in await _live(sandbox_service)


async def test_a_sandbox_that_dies_mid_call_fails_it_and_the_next_call_gets_a_fresh_one(
        gateway: RunningGateway, sandbox_service: RunningService) -> None:
    backend = sandbox_service.manager.backend
    assert isinstance(backend, LocalBackend)
    async with mcp_client(gateway.mcp_url, {"X-Sandgate-Session": "doomed"}) as client:
        with anyio.fail_after(30):
            first = await client.call_tool("run_shell_command", {"command": "echo x > f"})
            call = asyncio.ensure_future(client.call_tool("run_shell_command",
                                                          {"command": "sleep 20"}))
            await asyncio.sleep(0.5)
            for pid in backend.pids(_sandbox(first)):
                # A pid may exit between listing and killing (its parent died first).
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            died = await call
            fresh = await client.call_tool("run_shell_command", {"command": "ls"})
            settled = await client.call_tool("run_shell_command", {"command": "true"})
    assert died.is_error and "stopped during the call" in _stdout(died)
    assert not fresh.is_error and _sandbox(fresh) != _sandbox(first)
    assert "new one" in _stdout(fresh) and "f" not in fresh.content[1].text  # type: ignore[union-attr]
    assert _sandbox(settled) == _sandbox(fresh) and "new one" not in _stdout(settled)


async def test_an_oversized_request_is_refused_with_413(sandbox_service: RunningService) -> None:
    async with run_gateway(sandbox_service, max_request_bytes=64 * 1024) as gateway:
        async with httpx2.AsyncClient() as http:
            reply = await http.post(gateway.mcp_url, content=b"{" + b" " * 70_000 + b"}",
                                    headers={"Content-Type": "application/json",
                                             "Accept": "application/json, text/event-stream"})
        assert reply.status_code == 413
        async with mcp_client(gateway.mcp_url) as client:
            with anyio.fail_after(30), pytest.raises(MCPError):
                await client.call_tool("write_file", {"path": "big", "content": "x" * 70_000})
            small = await client.call_tool("write_file", {"path": "ok", "content": "fine"})
        assert not small.is_error
