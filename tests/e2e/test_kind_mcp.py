"""Sandgate on a real cluster (kind), through the gateway's MCP endpoint.

Run by ``make e2e`` (scripts/e2e-kind.sh), which deploys the kind overlay and
port-forwards the gateway; off by default (marker ``e2e``). The environment
names the endpoint: SANDGATE_E2E_MCP_URL, SANDGATE_E2E_TOKEN and
SANDGATE_E2E_CONTEXT (the kubectl context).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator

import anyio
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

pytestmark = pytest.mark.e2e


def _env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        pytest.fail(f"{name} is not set; run these tests with 'make e2e'")
    return value


@contextlib.asynccontextmanager
async def _client(session: str) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {_env('SANDGATE_E2E_TOKEN')}",
               "X-Sandgate-Session": session}
    async with create_mcp_http_client(headers=headers) as http:
        async with Client(streamable_http_client(_env("SANDGATE_E2E_MCP_URL"),
                                                 http_client=http)) as client:
            yield client


def _text(result: object) -> str:
    return "".join(getattr(block, "text", "") for block in getattr(result, "content", []))


def _sandbox_pods() -> list[dict[str, object]]:
    out = subprocess.run(
        ["kubectl", "--context", _env("SANDGATE_E2E_CONTEXT"), "-n", "sandgate-sandboxes",
         "get", "pods", "-l", "app.kubernetes.io/managed-by=sandgate", "-o", "json"],
        check=True, capture_output=True, text=True, timeout=30).stdout
    items: list[dict[str, object]] = json.loads(out)["items"]
    return items


async def test_shell_python_and_files_run_in_a_sandbox_pod() -> None:
    session = f"e2e-{uuid.uuid4().hex[:8]}"
    with anyio.fail_after(300):  # a cold Pod start on a fresh node pulls nothing, but schedules
        async with _client(session) as client:
            shell = await client.call_tool("run_shell_command", {"command": "hostname; id -u"})
            assert not shell.is_error, _text(shell)
            assert _text(shell).split()[:2] == ["sandbox", "10000"]
            cell = await client.call_tool("run_ipython_cell", {"code": "x = 6 * 7\nx"})
            assert not cell.is_error and "42" in _text(cell)
            again = await client.call_tool("run_ipython_cell", {"code": "x + 1"})
            assert "43" in _text(again)  # one persistent kernel per session
            wrote = await client.call_tool("write_file", {"path": "/workspace/e2e.txt",
                                                          "content": session})
            assert not wrote.is_error, _text(wrote)
            read = await client.call_tool("read_file", {"path": "/workspace/e2e.txt"})
            assert _text(read) == session
    assert any(pod["status"]["phase"] == "Running"  # type: ignore[index]
               for pod in _sandbox_pods())


async def test_a_sandbox_without_network_cannot_reach_the_cluster() -> None:
    session = f"e2e-{uuid.uuid4().hex[:8]}"
    with anyio.fail_after(300):
        async with _client(session) as client:
            probe = await client.call_tool("run_ipython_cell", {"code": (
                "import socket\n"
                "s = socket.socket(); s.settimeout(3)\n"
                "try:\n"
                "    s.connect(('kubernetes.default.svc', 443)); print('reached')\n"
                "except OSError as exc:\n"
                "    print('blocked', type(exc).__name__)\n")})
    # kind's CNI enforces NetworkPolicy since kind 0.24; DNS is blocked too, so
    # the name does not even resolve.
    assert "blocked" in _text(probe), _text(probe)
