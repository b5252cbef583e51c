"""The browser tools over MCP: a real gateway, sandbox_svc and Chromium in bwrap sandboxes.

One gateway and sandbox_svc serve the whole module (a warm browser sandbox in the
pool, so the first call pays no Chromium launch). Most tests browse the site
one session serves from inside its own sandbox; shell and file tools are routed
to the browser template too, so that session can write the pages and start the
web server beside its browser.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import socket
import struct
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

import anyio
import mcp_types as types
import pytest
import pytest_asyncio
from mcp import Client

from gateway.mcp_server import SANDBOX_META
from gateway.server import RunningGateway
from sandbox_svc.server import RunningService, build_server
from tests.integration.conftest import make_settings

from .conftest import SERVICE_KEY, mcp_client, run_gateway

pytestmark = pytest.mark.asyncio(loop_scope="module")

PEERS = (Path(__file__).resolve().parents[2] / "fixtures" / "peers"
         / "playwright-mcp-0.0.83.tools.json")
NOT_SERVED = {"browser_run_code_unsafe"}
"""0.0.83 tools Sandgate leaves out: running Playwright code is not a tool here."""
OLD_GENERATION = {"browser_navigate_forward", "browser_pdf_save", "browser_tab_list",
                  "browser_tab_new", "browser_tab_select", "browser_tab_close"}
SITE = "http://127.0.0.1:8000/"
PAGES = {
    "index.html": """<!doctype html><title>Inside</title>
<h1 id="h">Hello from the sandbox</h1>
<button onclick="document.getElementById('h').textContent='Clicked'">Change</button>
<form onsubmit="document.getElementById('h').textContent='Hi '+this.who.value;return false">
<input name="who" aria-label="Name"><button type="submit">Send</button></form>
<a href="second.html">Next page</a>""",
    "second.html": "<!doctype html><title>Second</title><h1>The second page</h1>",
}
TEMPLATES = """templates:
  - {name: filesystem, tool_groups: [base, filesystem], pool_size: 0}
  - {name: base, pool_size: 0}
  - {name: browser, tool_groups: [base, filesystem, browser], network: true, memory_mb: 2048,
     max_pids: 1024, cpu_millis: 2000, pool_size: 1}
"""


@dataclass(frozen=True)
class Stack:
    service: RunningService
    gateway: RunningGateway

    def client(self, session: str) -> AbstractAsyncContextManager[Client]:
        return mcp_client(self.gateway.mcp_url, {"X-Sandgate-Session": session})


async def warm_browser(service: RunningService) -> None:
    """Wait (bounded) for the pool's browser sandbox, its Chromium started."""
    with anyio.fail_after(60):
        while not any(p.template == "browser" and p.ready
                      for p in await service.manager.pool_status()):
            await anyio.sleep(0.05)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack() -> AsyncIterator[Stack]:
    state = Path(tempfile.mkdtemp(prefix="sg-", dir="/tmp"))
    state.chmod(0o711)
    templates = state / "templates.yaml"
    templates.write_text(TEMPLATES)
    service = await build_server(make_settings(state, pool_size=None, max_sandboxes=8,
                                               templates_file=templates,
                                               bearer_token=SERVICE_KEY))
    try:
        await warm_browser(service)
        async with run_gateway(service, tool_templates="base=browser,filesystem=browser,"
                                                       "browser=browser") as gateway:
            yield Stack(service, gateway)
    finally:
        with anyio.fail_after(60):
            await service.stop(grace=0.5)
        shutil.rmtree(state, ignore_errors=True)


async def call(client: Client, tool: str, arguments: Mapping[str, object] | None = None, *,
               ok: bool = True) -> types.CallToolResult:
    with anyio.fail_after(40):
        result = await client.call_tool(tool, dict(arguments or {}))
    if ok:
        assert not result.is_error, (tool, text(result))
    return result


def text(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


def sandbox_of(result: types.CallToolResult) -> str:
    return str((result.meta or {})[SANDBOX_META])


def ref(snapshot: str, label: str) -> str:
    found = re.search(rf"{label}.*?\[ref=(\w+)\]", snapshot)
    assert found, f"no ref for {label!r} in {snapshot}"
    return found.group(1)


async def navigate(client: Client, url: str) -> types.CallToolResult:
    """Navigate, waiting (bounded) for the site's web server to accept connections."""
    with anyio.fail_after(30):
        while True:
            result = await call(client, "browser_navigate", {"url": url}, ok=False)
            if not result.is_error or "ERR_CONNECTION_REFUSED" not in text(result):
                assert not result.is_error, text(result)
                return result
            await anyio.sleep(0.1)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(stack: Stack) -> AsyncIterator[str]:
    """A session whose sandbox serves PAGES at SITE, from inside the sandbox."""
    async with stack.client("site") as client:
        for name, page in PAGES.items():
            await call(client, "write_file", {"path": f"site/{name}", "content": page})
        await call(client, "run_shell_command", {
            "command": "cd site && nohup python3 -m http.server 8000 --bind 127.0.0.1 "
                       ">/dev/null 2>&1 &"})
    yield "site"


async def test_tools_list_offers_both_generations_with_the_peers_argument_names(
        stack: Stack) -> None:
    async with stack.client("listing") as client:
        with anyio.fail_after(10):
            tools = {t.name: t for t in (await client.list_tools()).tools}
    for peer in json.loads(PEERS.read_text()):
        if peer["name"] in NOT_SERVED:
            continue
        ours = tools[peer["name"]].input_schema
        assert set(peer["inputSchema"].get("properties", {})) <= set(ours["properties"])
        # Required arguments never go beyond the peer's (defaults and `ref` make some optional).
        assert set(ours["required"]) <= set(peer["inputSchema"].get("required", []))
        assert tools[peer["name"]].description
    assert OLD_GENERATION <= set(tools)
    assert {"ref", "target", "element"} <= set(tools["browser_click"].input_schema["properties"])
    assert {"raw", "ref", "target"} <= set(
        tools["browser_take_screenshot"].input_schema["properties"])
    assert {"startRef", "endRef"} <= set(tools["browser_drag"].input_schema["properties"])
    assert tools["browser_snapshot"].annotations is not None
    assert tools["browser_snapshot"].annotations.read_only_hint


async def test_a_page_served_inside_the_sandbox_is_navigated_snapshotted_and_clicked(
        stack: Stack, site: str) -> None:
    async with stack.client(site) as client:
        assert "Hello from the sandbox" in text(await navigate(client, SITE))
        snapshot = text(await call(client, "browser_snapshot"))
        assert "Hello from the sandbox" in snapshot
        clicked = await call(client, "browser_click", {"element": "Change button",
                                                       "ref": ref(snapshot, "Change")})
        assert "Clicked" in text(clicked)
        assert "Clicked" in text(await call(client, "browser_snapshot"))


async def test_typing_into_a_form_and_submitting_it_changes_the_page(
        stack: Stack, site: str) -> None:
    async with stack.client(site) as client:
        await navigate(client, SITE)
        snapshot = text(await call(client, "browser_snapshot"))
        await call(client, "browser_type", {"element": "Name", "target": ref(snapshot, "Name"),
                                            "text": "Ada", "submit": True})
        assert "Hi Ada" in text(await call(client, "browser_snapshot"))


async def test_tabs_work_through_browser_tabs_and_the_older_browser_tab_tools(
        stack: Stack, site: str) -> None:
    async with stack.client(site) as client:
        await navigate(client, SITE)
        opened = await call(client, "browser_tabs", {"action": "new",
                                                     "url": SITE + "second.html"})
        assert "The second page" in text(opened)
        listed = text(await call(client, "browser_tabs", {"action": "list"}))
        assert "Inside" in listed and "Second" in listed
        # The older tools number tabs from 1: tab 1 is the site's first page.
        selected = await call(client, "browser_tab_select", {"index": 1})
        assert "Hello from the sandbox" in text(selected)
        await call(client, "browser_tab_close", {"index": 2})
        assert "Second" not in text(await call(client, "browser_tab_list"))
        await call(client, "browser_tab_new", {"url": SITE + "second.html"})
        await call(client, "browser_tabs", {"action": "close"})
        assert "Second" not in text(await call(client, "browser_tabs", {"action": "list"}))


async def test_a_screenshot_is_mcp_image_content_holding_a_png_of_the_requested_size(
        stack: Stack, site: str) -> None:
    async with stack.client(site) as client:
        await navigate(client, SITE)
        await call(client, "browser_resize", {"width": 640, "height": 480})
        shot = await call(client, "browser_take_screenshot", {})
        await call(client, "browser_resize", {"width": 1280, "height": 720})
    images = [c for c in shot.content if isinstance(c, types.ImageContent)]
    assert len(images) == 1 and images[0].mime_type == "image/png"
    png = base64.b64decode(images[0].data)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    assert struct.unpack(">II", png[16:24]) == (640, 480)


async def test_a_ref_not_in_the_last_snapshot_asks_for_a_new_snapshot(
        stack: Stack, site: str) -> None:
    async with stack.client(site) as client:
        change = ref(text(await navigate(client, SITE)), "Change")
        await call(client, "browser_navigate", {"url": SITE + "second.html"})
        stale = await call(client, "browser_click", {"element": "Change", "ref": change},
                           ok=False)
        unnamed = await call(client, "browser_click", {"element": "Change"}, ok=False)
    assert stale.is_error and "browser_snapshot" in text(stale)
    assert unnamed.is_error and "browser_snapshot" in text(unnamed)


async def test_a_server_on_host_loopback_is_unreachable_from_the_browser(
        stack: Stack, site: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.3)
        port = server.getsockname()[1]
        async with stack.client(site) as client:
            # 10.0.2.2 is where user-mode networking would put the host's loopback.
            for url in (f"http://10.0.2.2:{port}/", f"http://127.0.0.1:{port}/"):
                result = await call(client, "browser_navigate", {"url": url, "timeout": 10},
                                    ok=False)
                assert result.is_error, text(result)
        with pytest.raises(TimeoutError):
            server.accept()


async def test_two_sessions_get_different_browsers_and_cannot_see_each_others_pages(
        stack: Stack, site: str) -> None:
    async with stack.client(site) as mine:
        own = await navigate(mine, SITE)
    await warm_browser(stack.service)  # the pool refilled since the site's session took one
    async with stack.client("other") as theirs:
        tabs = await call(theirs, "browser_tabs", {"action": "list"})
        assert sandbox_of(tabs) != sandbox_of(own)
        assert "Inside" not in text(tabs) and "8000" not in text(tabs)
        # Its own network: nothing serves the site inside the other session's sandbox.
        elsewhere = await call(theirs, "browser_navigate", {"url": SITE}, ok=False)
        assert elsewhere.is_error
        released = await call(theirs, "sandbox_release")
    assert sandbox_of(tabs) in text(released)
    live = {r.sandbox_id for r in await stack.service.manager.list_sandboxes("default")}
    assert sandbox_of(tabs) not in live and sandbox_of(own) in live
