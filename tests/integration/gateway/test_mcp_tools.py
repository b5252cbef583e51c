"""Every base and filesystem tool over MCP (streamable HTTP and stdio), real sandboxes."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import anyio
import httpx2
import mcp_types as types

from gateway.server import RunningGateway

from .conftest import ClientFactory, mcp_client

PEERS = (Path(__file__).resolve().parents[2] / "fixtures" / "peers"
         / "server-filesystem-2026.8.31.tools.json")


def _texts(result: types.CallToolResult) -> list[str]:
    return [c.text for c in result.content if isinstance(c, types.TextContent)]


def _labels(result: types.CallToolResult) -> dict[str, str]:
    return {(c.meta or {}).get("sandgate/label", ""): c.text for c in result.content
            if isinstance(c, types.TextContent)}


async def test_tools_list_has_the_peer_names_and_argument_shapes(gateway: RunningGateway) -> None:
    async with mcp_client(gateway.mcp_url) as client:
        with anyio.fail_after(10):
            tools = {t.name: t for t in (await client.list_tools()).tools}
    assert {"run_shell_command", "run_ipython_cell", "sandbox_release"} <= set(tools)
    for peer in json.loads(PEERS.read_text()):
        ours = tools[peer["name"]].input_schema
        assert set(ours.get("properties", {})) == set(peer["inputSchema"].get("properties", {}))
        assert set(ours.get("required", [])) == set(peer["inputSchema"].get("required", []))
        assert tools[peer["name"]].description


async def test_every_base_and_filesystem_tool_works_in_one_session(
        connect: ClientFactory) -> None:
    async with connect("tour") as client:
        async def call(name: str, **arguments: object) -> types.CallToolResult:
            with anyio.fail_after(30):
                result = await client.call_tool(name, arguments)
            assert not result.is_error, (name, _texts(result))
            return result

        shell = await call("run_shell_command", command="echo hi; echo warn >&2")
        assert _labels(shell) == {"stdout": "hi\n", "stderr": "warn\n", "returncode": "0"}
        cell = await call("run_ipython_cell", code="x = 20\nx + 22")
        assert "42" in _texts(cell)
        assert "42" in _texts(await call("run_ipython_cell", code="x * 2 + 2"))

        await call("create_directory", path="src/pkg")
        await call("write_file", path="src/pkg/a.py", content="one\ntwo\nthree\n")
        assert _texts(await call("read_file", path="src/pkg/a.py")) == ["one\ntwo\nthree\n"]
        assert _texts(await call("read_text_file", path="/workspace/src/pkg/a.py", head=1)) == [
            "one\n"]
        assert _texts(await call("read_file", path="src/pkg/a.py", tail=2)) == ["two\nthree\n"]
        edited = await call("edit_file", path="src/pkg/a.py",
                            edits=[{"oldText": "two", "newText": "TWO"}], dryRun=True)
        assert "-two" in _texts(edited)[0] and "+TWO" in _texts(edited)[0]
        assert "two" in _texts(await call("read_file", path="src/pkg/a.py"))[0]
        await call("edit_file", path="src/pkg/a.py", edits=[{"oldText": "two", "newText": "TWO"}])
        assert "TWO" in _texts(await call("read_file", path="src/pkg/a.py"))[0]
        await call("move_file", source="src/pkg/a.py", destination="src/pkg/b.py")
        many = _texts(await call("read_multiple_files", paths=["src/pkg/b.py", "missing.txt"]))[0]
        assert "src/pkg/b.py:\none" in many and "missing.txt: Error" in many
        assert _texts(await call("list_directory", path="src")) == ["[DIR] pkg"]
        sized = _texts(await call("list_directory_with_sizes", path="src/pkg", sortBy="size"))[0]
        assert "b.py" in sized and "Total: 1 files" in sized
        tree = json.loads(_texts(await call("directory_tree", path="/workspace",
                                            excludePatterns=["*.txt", ".ipython"]))[0])
        assert tree == [{"name": "src", "type": "directory", "children": [
            {"name": "pkg", "type": "directory", "children": [{"name": "b.py", "type": "file"}]}]}]
        found = _texts(await call("search_files", path="/workspace", pattern="**/*.py"))
        assert found == ["/workspace/src/pkg/b.py"]
        info = _texts(await call("get_file_info", path="src/pkg/b.py"))[0]
        assert "isFile: true" in info and "size: 14" in info
        assert "/workspace" in _texts(await call("list_allowed_directories"))[0]

        png = _png()
        await call("run_ipython_cell", code=f"open('dot.png', 'wb').write({png!r})")
        media = await call("read_media_file", path="dot.png")
        assert isinstance(media.content[0], types.ImageContent)
        assert media.content[0].mime_type == "image/png"
        # The shell sees what the file tools wrote: one sandbox per session.
        listing = await call("run_shell_command", command="ls src/pkg && cat src/pkg/b.py")
        assert _labels(listing)["stdout"] == "b.py\none\nTWO\nthree\n"


def _png() -> bytes:
    """A 1x1 PNG, built by hand (no imaging library in the sandbox)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


async def test_a_png_displayed_by_a_cell_comes_back_as_image_content(
        gateway: RunningGateway) -> None:
    code = f"from IPython.display import Image, display\ndisplay(Image(data={_png()!r}))"
    async with mcp_client(gateway.mcp_url) as client:
        with anyio.fail_after(30):
            result = await client.call_tool("run_ipython_cell", {"code": code})
    images = [c for c in result.content if isinstance(c, types.ImageContent)]
    assert not result.is_error
    assert [i.mime_type for i in images] == ["image/png"]
    assert images[0].data  # base64 PNG


async def test_a_failing_command_is_an_error_with_its_output_and_return_code(
        connect: ClientFactory) -> None:
    async with connect("failing") as client:
        with anyio.fail_after(30):
            result = await client.call_tool("run_shell_command",
                                            {"command": "echo out; echo oops >&2; exit 3"})
    assert result.is_error
    assert _labels(result) == {"stdout": "out\n", "stderr": "oops\n", "returncode": "3"}


async def test_bad_input_is_an_error_result_that_says_what_to_do(connect: ClientFactory) -> None:
    async with connect("bad-input") as client:
        with anyio.fail_after(30):
            unknown = await client.call_tool("no_such_tool", {})
            wrong_type = await client.call_tool("run_shell_command", {"command": 42})
            missing = await client.call_tool("write_file", {"path": "x.txt"})
            outside = await client.call_tool("read_file", {"path": "/etc/passwd"})
            absent = await client.call_tool("read_file", {"path": "nope.txt"})
            timeout = await client.call_tool("run_shell_command",
                                             {"command": "echo started; sleep 5", "timeout": 0.5})
    for result in (unknown, wrong_type, missing, outside, absent, timeout):
        assert result.is_error
    assert "tools/list" in _texts(unknown)[0]
    assert "command" in _texts(wrong_type)[0] and "string" in _texts(wrong_type)[0]
    assert "content" in _texts(missing)[0]
    assert "/workspace" in _texts(outside)[0]
    assert "nope.txt" in _texts(absent)[0]
    assert _labels(timeout)["stdout"] == "started\n"
    assert "timeout" in " ".join(_texts(timeout)).lower()


async def test_a_command_or_cell_past_its_timeout_says_so_after_its_partial_output(
        connect: ClientFactory) -> None:
    async with connect("timeouts") as client:
        with anyio.fail_after(60):
            await client.call_tool("run_ipython_cell", {"code": "kept = 'yes'"})
            shell = await client.call_tool(
                "run_shell_command", {"command": "echo started; sleep 30", "timeout": 1})
            cell = await client.call_tool(
                "run_ipython_cell",
                {"code": "print('working', flush=True)\nimport time\ntime.sleep(30)",
                 "timeout": 1})
            after = await client.call_tool("run_ipython_cell", {"code": "print(kept)"})
    assert shell.is_error and cell.is_error
    assert _labels(shell)["stdout"] == "started\n" and "returncode" not in _labels(shell)
    assert _labels(shell)["error"].startswith("Error: the command timed out after 1 s")
    assert _labels(cell)["stdout"] == "working\n"
    assert _labels(cell)["error"].startswith("Error: the cell timed out after 1 s")
    assert "variables are kept" in _labels(cell)["error"]
    assert not after.is_error and _labels(after)["stdout"] == "yes\n"


async def test_health_and_metrics_endpoints_report_calls_by_tool(gateway: RunningGateway) -> None:
    async with mcp_client(gateway.mcp_url) as client:
        with anyio.fail_after(30):
            await client.call_tool("run_shell_command", {"command": "true"})
            await client.call_tool("run_shell_command", {"command": "false"})
    base = gateway.mcp_url.removesuffix("/mcp")
    async with httpx2.AsyncClient() as http:
        health = (await http.get(f"{base}/healthz")).json()
        metrics = (await http.get(f"{base}/metrics")).text
    assert health["status"] == "ok" and health["bound_sandboxes"] == 1
    assert ('sandgate_gateway_tool_calls_total{outcome="ok",tool="run_shell_command"} 1.0'
            in metrics)
    assert ('sandgate_gateway_tool_errors_total{code="tool_error",tool="run_shell_command"} 1.0'
            in metrics)


async def test_a_long_call_sends_progress_notifications(gateway: RunningGateway) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with mcp_client(gateway.mcp_url) as client:
        with anyio.fail_after(30):
            result = await client.call_tool("run_shell_command",
                                            {"command": "sleep 1.2; echo done"},
                                            progress_callback=on_progress)
    assert _labels(result)["stdout"] == "done\n"
    assert len(seen) >= 2 and seen == sorted(seen)
