"""The browser template end to end: Chromium inside a real bwrap sandbox with
user-mode networking, driven through sandboxd's BrowserAction."""

from __future__ import annotations

import asyncio
import re
import socket
import struct
from collections.abc import AsyncIterator

import pytest

from sandbox_svc.server import RunningService
from sandgate.sdk import AsyncSandbox

PAGE = """<!doctype html><title>Inside</title>
<h1 id="h">Hello from the sandbox</h1>
<button onclick="document.getElementById('h').textContent='Clicked'">Change</button>
<form onsubmit="document.getElementById('h').textContent='Hi '+this.who.value;return false">
<input name="who" aria-label="Name"><button type="submit">Send</button></form>
"""


@pytest.fixture
async def browser_sbx(service: RunningService) -> AsyncIterator[AsyncSandbox]:
    sbx = await AsyncSandbox.create("browser", target=service.address)
    await sbx.files.write("site/index.html", PAGE)
    await sbx.commands.run("cd site && nohup python3 -m http.server 8000 --bind 127.0.0.1 "
                           ">/dev/null 2>&1 &")
    yield sbx
    await sbx.kill()


def _ref(snapshot: str, label: str) -> str:
    match = re.search(rf'{label}.*?\[ref=(\w+)\]', snapshot)
    assert match, f"no ref for {label!r} in {snapshot}"
    return match.group(1)


async def _navigate(sbx: AsyncSandbox, url: str) -> str:
    async with asyncio.timeout(30):
        while True:  # the in-sandbox web server may still be starting
            result = await sbx.browser.call("browser_navigate", {"url": url})
            if not result.is_error or "ERR_CONNECTION_REFUSED" not in result.text:
                return result.text
            await asyncio.sleep(0.1)


async def test_navigate_click_and_type_in_a_sandboxed_browser(browser_sbx: AsyncSandbox) -> None:
    text = await _navigate(browser_sbx, "http://127.0.0.1:8000/")
    assert "Hello from the sandbox" in text
    snapshot = (await browser_sbx.browser.call("browser_snapshot")).text
    clicked = await browser_sbx.browser.call(
        "browser_click", {"element": "Change button", "ref": _ref(snapshot, "Change")})
    assert "Clicked" in clicked.text and not clicked.is_error
    snapshot = (await browser_sbx.browser.call("browser_snapshot")).text
    typed = await browser_sbx.browser.call("browser_type", {
        "element": "Name", "target": _ref(snapshot, "Name"), "text": "Ada", "submit": True})
    assert not typed.is_error
    assert "Hi Ada" in (await browser_sbx.browser.call("browser_snapshot")).text


async def test_screenshot_is_a_png_of_the_requested_size(browser_sbx: AsyncSandbox) -> None:
    await _navigate(browser_sbx, "http://127.0.0.1:8000/")
    await browser_sbx.browser.call("browser_resize", {"width": 640, "height": 480})
    shot = await browser_sbx.browser.call("browser_take_screenshot")
    (mime, png), = shot.images
    assert mime == "image/png" and png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (640, 480)


async def test_host_loopback_is_unreachable_from_the_browser(
        browser_sbx: AsyncSandbox) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.3)
        port = server.getsockname()[1]
        for url in (f"http://10.0.2.2:{port}/", f"http://127.0.0.1:{port}/"):
            result = await browser_sbx.browser.call("browser_navigate", {"url": url},
                                                    timeout=10)
            assert result.is_error, result.text
        with pytest.raises(TimeoutError):
            server.accept()


async def test_one_sandboxs_pages_are_invisible_to_another(
        browser_sbx: AsyncSandbox, service: RunningService) -> None:
    await _navigate(browser_sbx, "http://127.0.0.1:8000/")
    other = await AsyncSandbox.create("browser", target=service.address)
    try:
        tabs = await other.browser.call("browser_tabs", {"action": "list"})
        assert "127.0.0.1:8000" not in tabs.text and "Inside" not in tabs.text
    finally:
        await other.kill()
