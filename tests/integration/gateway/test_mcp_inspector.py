"""The MCP Inspector CLI (npm @modelcontextprotocol/inspector) as an independent client."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from gateway.server import RunningGateway

ROOT = Path(__file__).resolve().parents[3]
NPX = shutil.which("npx") or "npx"


async def _inspector(tmp_path: Path, url: str, *args: str) -> dict[str, object]:
    process = await asyncio.create_subprocess_exec(
        NPX, "--offline", "@modelcontextprotocol/inspector", "--cli", url,
        "--transport", "http", *args, cwd=ROOT,
        # The pinned devDependency in package.json, installed by `make` (npm install).
        env={"PATH": str(Path(NPX).parent),
             "HOME": str(tmp_path), "MCP_CATALOG_PATH": str(tmp_path / "catalog.json")},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    reply: dict[str, object] = json.loads(out)
    return reply


async def test_the_mcp_inspector_lists_and_calls_tools(gateway: RunningGateway,
                                                       tmp_path: Path) -> None:
    listed = await _inspector(tmp_path, gateway.mcp_url, "--method", "tools/list")
    called = await _inspector(tmp_path, gateway.mcp_url, "--method", "tools/call",
                              "--tool-name", "run_shell_command",
                              "--tool-arg", "command=echo inspected",
                              "--header", "X-Sandgate-Session: inspector")
    names = {t["name"] for t in listed["tools"]}  # type: ignore[attr-defined]
    assert {"run_shell_command", "write_file", "directory_tree"} <= names
    assert called["isError"] is False
    assert called["content"][0]["text"] == "inspected\n"  # type: ignore[index]
