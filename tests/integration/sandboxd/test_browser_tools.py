"""The browser tools against real Chromium and a local test site on 127.0.0.1.

One browser serves the module's tests (each starts by navigating); the tests
that close or kill the browser get their own session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import struct
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_asyncio

from sandbox_svc.sandboxd.browser import (
    BrowserArgumentError,
    BrowserResult,
    BrowserSession,
    BrowserSettings,
    ImageContent,
    UnknownBrowserToolError,
)
from sandbox_svc.sandboxd.errors import InvalidInputError
from sandbox_svc.sandboxd.paths import Workspace

pytestmark = pytest.mark.asyncio(loop_scope="module")

CHROMIUM = Path("/usr/bin/chromium")
if not os.access(CHROMIUM, os.X_OK):  # pragma: no cover - the platform provides it
    pytest.skip("Debian's Chromium is not installed", allow_module_level=True)

PAGES: dict[str, str] = {
    "/": """<!doctype html><title>Home</title>
<h1 id=h>Welcome</h1>
<p>Go to the <a href="/next">next page</a>.</p>
<button onclick="document.getElementById('h').textContent = 'Clicked'">Change heading</button>
<button ondblclick="document.getElementById('h').textContent = 'Double'">Double me</button>
""",
    "/next": "<!doctype html><title>Next</title><h1>Second page</h1>",
    "/form": """<!doctype html><title>Search</title>
<form action="/result"><label>Query <input name=q></label><button>Search</button></form>""",
    "/inputs": """<!doctype html><title>Inputs</title>
<h1 id=h>Idle</h1>
<div id=hov onmouseover="document.getElementById('h').textContent='Hovered'">Hover here</div>
<label>Colour <select id=colour onchange="document.getElementById('h').textContent=this.value">
<option value=red>Red</option><option value=green>Green</option></select></label>
<label>Name <input id=name></label>
<label><input type=checkbox id=agree> I agree</label>
<input id=keys aria-label=Keys
 onkeydown="document.getElementById('h').textContent='Key '+event.key">
<div id=src draggable=true ondragstart="event.dataTransfer.setData('text/plain','x')">Drag me</div>
<div id=dst ondragover="event.preventDefault()"
 ondrop="event.preventDefault(); document.getElementById('h').textContent =
 event.dataTransfer.files.length ? 'Dropped file ' + event.dataTransfer.files[0].name
 : 'Dropped ' + event.dataTransfer.getData('text/plain')">Drop here</div>
""",
    "/console": """<!doctype html><title>Console</title><h1>Logs</h1>
<script>console.log('hello from the page'); console.error('something broke');
fetch('/api/data').then(r => r.json()).then(d => { document.title = 'Fetched ' + d.n; });
</script>""",
    "/dialog": """<!doctype html><title>Dialog</title><h1 id=h>Undecided</h1>
<button onclick="document.getElementById('h').textContent =
 confirm('Are you sure?') ? 'Confirmed' : 'Cancelled'">Decide</button>""",
    "/upload": """<!doctype html><title>Upload</title><h1 id=h>No file</h1>
<input type=file id=f aria-label="Pick a file"
 onchange="document.getElementById('h').textContent = 'Got ' + this.files[0].name">""",
    "/long": "<!doctype html><title>Long</title>"
    + "".join(f"<p style='height:200px'>Paragraph {i}</p>" for i in range(20)),
    "/stuck": "<!doctype html><title>Stuck</title><h1>Text first</h1><img src=/hang alt=never>",
    "/popup": """<!doctype html><title>Popup</title>
<a href="/next" target="_blank">Open next in a new tab</a>""",
}


@dataclass
class Site:
    url: str
    hits: list[str]


class _Handler(BaseHTTPRequestHandler):
    release: threading.Event
    hits: list[str]

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = urlsplit(self.path).path
        self.hits.append(path)
        if path == "/hang":  # never answers, until the test site stops
            self.release.wait(30)
            return
        if path == "/api/data":
            self._send(json.dumps({"n": 42}).encode(), "application/json")
        elif path == "/result":
            query = parse_qs(urlsplit(self.path).query).get("q", [""])[0]
            body = f"<!doctype html><title>Results</title><h1>You searched for {query}</h1>"
            self._send(body.encode(), "text/html")
        elif path in PAGES:
            self._send(PAGES[path].encode(), "text/html")
        else:
            self.send_error(404)

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    release = threading.Event()
    hits: list[str] = []
    handler = type("Handler", (_Handler,), {"release": release, "hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Site(f"http://127.0.0.1:{server.server_address[1]}", hits)
    release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ws")


def new_session(workspace: Path, **settings: object) -> BrowserSession:
    return BrowserSession(
        BrowserSettings(executable=CHROMIUM, **settings),  # type: ignore[arg-type]
        Workspace(workspace),
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(workspace: Path) -> AsyncIterator[BrowserSession]:
    session = new_session(workspace)
    yield session
    async with asyncio.timeout(30):
        await session.shutdown()


async def call(
    session: BrowserSession, tool: str, timeout_s: float | None = None, **arguments: object
) -> BrowserResult:
    async with asyncio.timeout(60):
        return await session.call(tool, arguments, timeout_s=timeout_s)


def ref_of(result: BrowserResult, line_part: str) -> str:
    """The ref on the snapshot line containing ``line_part``."""
    for line in result.text.splitlines():
        if line_part in line and "[ref=" in line:
            return line.split("[ref=", 1)[1].split("]", 1)[0]
    raise AssertionError(f"no snapshot line with {line_part!r} and a ref in:\n{result.text}")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# --- navigation and snapshots ---------------------------------------------------


async def test_navigate_answers_with_url_title_and_a_snapshot_with_refs(
    browser: BrowserSession, site: Site
) -> None:
    result = await call(browser, "browser_navigate", url=f"{site.url}/")
    assert not result.is_error
    text = result.text
    assert f"- Page URL: {site.url}/" in text and "- Page Title: Home" in text
    assert "```yaml" in text
    assert ref_of(result, 'button "Change heading"')
    assert ref_of(result, 'link "next page"')


async def test_clicking_a_ref_changes_the_page(browser: BrowserSession, site: Site) -> None:
    page = await call(browser, "browser_navigate", url=f"{site.url}/")
    clicked = await call(browser, "browser_click", ref=ref_of(page, "Change heading"))
    assert not clicked.is_error and 'heading "Clicked"' in clicked.text
    double = await call(
        browser, "browser_click", target=ref_of(clicked, "Double me"), doubleClick=True
    )
    assert 'heading "Double"' in double.text
    link = await call(browser, "browser_click", target=ref_of(double, "next page"))
    assert "- Page Title: Next" in link.text


async def test_back_and_forward_move_through_the_tab_history(
    browser: BrowserSession, site: Site
) -> None:
    await call(browser, "browser_navigate", url=f"{site.url}/")
    await call(browser, "browser_navigate", url=f"{site.url}/next")
    back = await call(browser, "browser_navigate_back")
    assert "- Page Title: Home" in back.text
    forward = await call(browser, "browser_navigate_forward")
    assert "- Page Title: Next" in forward.text


async def test_file_urls_open_workspace_files_only(
    browser: BrowserSession, workspace: Path
) -> None:
    (workspace / "local.html").write_text("<title>Local file</title><p>from disk</p>")
    local = await call(browser, "browser_navigate", url="file:///workspace/local.html")
    assert not local.is_error and "- Page Title: Local file" in local.text
    outside = await call(browser, "browser_navigate", url="file:///etc/hostname")
    assert outside.is_error and "/workspace" in outside.text


async def test_typing_and_submitting_a_form_loads_its_result(
    browser: BrowserSession, site: Site
) -> None:
    form = await call(browser, "browser_navigate", url=f"{site.url}/form")
    typed = await call(
        browser, "browser_type", ref=ref_of(form, "textbox"), text="otters", submit=True
    )
    assert not typed.is_error
    assert "- Page Title: Results" in typed.text and "You searched for otters" in typed.text


async def test_typing_slowly_fires_key_handlers(browser: BrowserSession, site: Site) -> None:
    page = await call(browser, "browser_navigate", url=f"{site.url}/inputs")
    typed = await call(browser, "browser_type", target=ref_of(page, "Keys"), text="ab", slowly=True)
    assert 'heading "Key b"' in typed.text


async def test_a_ref_from_an_older_snapshot_asks_for_a_new_snapshot(
    browser: BrowserSession, site: Site
) -> None:
    home = await call(browser, "browser_navigate", url=f"{site.url}/")
    button = ref_of(home, "Change heading")
    await call(browser, "browser_navigate", url=f"{site.url}/next")
    for stale in (button, "e9999"):
        result = await call(browser, "browser_click", ref=stale)
        assert result.is_error
        assert "browser_snapshot" in result.text and stale in result.text
    fresh = await call(browser, "browser_snapshot")
    assert not fresh.is_error and 'heading "Second page"' in fresh.text


async def test_a_selector_target_works_where_a_ref_would(
    browser: BrowserSession, site: Site
) -> None:
    await call(browser, "browser_navigate", url=f"{site.url}/")
    clicked = await call(browser, "browser_click", target="text=Change heading")
    assert 'heading "Clicked"' in clicked.text
    missing = await call(browser, "browser_click", target="#no-such-element")
    assert missing.is_error


async def test_wait_for_text_and_time(browser: BrowserSession, site: Site) -> None:
    await call(browser, "browser_navigate", url=f"{site.url}/console")
    seen = await call(browser, "browser_wait_for", text="Logs")
    assert not seen.is_error
    gone = await call(browser, "browser_wait_for", textGone="Logs", time=0.3)
    assert gone.is_error
    waited = await call(browser, "browser_wait_for", time=0.1)
    assert not waited.is_error


# --- tabs ------------------------------------------------------------------------


async def test_tabs_in_both_generations(browser: BrowserSession, site: Site) -> None:
    await call(browser, "browser_navigate", url=f"{site.url}/")
    opened = await call(browser, "browser_tabs", action="new", url=f"{site.url}/next")
    assert "- 0: [Home]" in opened.text and "- 1: (current) [Next]" in opened.text

    listed = await call(browser, "browser_tab_list")  # 0.0.25 numbers tabs from 1
    assert "- 1: [Home]" in listed.text and "- 2: (current) [Next]" in listed.text
    selected = await call(browser, "browser_tab_select", index=1)
    assert "- Page Title: Home" in selected.text and "```yaml" in selected.text
    closed = await call(browser, "browser_tab_close", index=2)
    assert "[Next]" not in closed.text

    new = await call(browser, "browser_tab_new", url=f"{site.url}/next")
    assert "- 2: (current) [Next]" in new.text
    await call(browser, "browser_tabs", action="select", index=0)
    listed = await call(browser, "browser_tabs", action="list")
    assert "- 0: (current) [Home]" in listed.text
    missing = await call(browser, "browser_tabs", action="select", index=7)
    assert missing.is_error
    closed = await call(browser, "browser_tabs", action="close", index=1)
    assert "[Next]" not in closed.text


async def test_a_link_to_a_new_window_opens_a_tab(browser: BrowserSession, site: Site) -> None:
    page = await call(browser, "browser_navigate", url=f"{site.url}/popup")
    clicked = await call(browser, "browser_click", ref=ref_of(page, "Open next"))
    assert "### Open tabs" in clicked.text and "[Next]" in clicked.text
    await call(browser, "browser_tabs", action="close", index=1)


# --- screenshots and PDF -------------------------------------------------------------


async def test_a_screenshot_is_a_png_of_the_viewport_size(
    browser: BrowserSession, site: Site, workspace: Path
) -> None:
    await call(browser, "browser_navigate", url=f"{site.url}/long")
    resized = await call(browser, "browser_resize", width=640, height=480)
    assert not resized.is_error
    shot = await call(browser, "browser_take_screenshot")
    images = [c for c in shot.content if isinstance(c, ImageContent)]
    assert len(images) == 1 and images[0].mime_type == "image/png"
    assert png_size(images[0].data) == (640, 480)

    full = await call(browser, "browser_take_screenshot", fullPage=True, raw=True)
    width, height = png_size([c for c in full.content if isinstance(c, ImageContent)][0].data)
    assert width == 640 and height > 480

    snapshot = await call(browser, "browser_snapshot")
    element = await call(browser, "browser_take_screenshot", ref=ref_of(snapshot, "Paragraph 3"))
    image = [c for c in element.content if isinstance(c, ImageContent)][0]
    assert png_size(image.data)[1] < 480

    saved = await call(browser, "browser_take_screenshot", filename="shots/page.png")
    assert not [c for c in saved.content if isinstance(c, ImageContent)]
    assert png_size((workspace / "shots" / "page.png").read_bytes()) == (640, 480)
    await call(browser, "browser_resize", width=1280, height=720)


async def test_pdf_is_saved_into_the_workspace(
    browser: BrowserSession, site: Site, workspace: Path
) -> None:
    await call(browser, "browser_navigate", url=f"{site.url}/")
    saved = await call(browser, "browser_pdf_save", filename="/workspace/docs/home.pdf")
    assert not saved.is_error and "/workspace/docs/home.pdf" in saved.text
    assert (workspace / "docs" / "home.pdf").read_bytes().startswith(b"%PDF")
    outside = await call(browser, "browser_pdf_save", filename="../escape.pdf")
    assert outside.is_error and not (workspace.parent / "escape.pdf").exists()


# --- console, network, dialogs, files ---------------------------------------------


async def test_console_messages_and_network_requests_are_listed(
    browser: BrowserSession, site: Site
) -> None:
    page = await call(browser, "browser_navigate", url=f"{site.url}/console")
    await call(browser, "browser_wait_for", text="Logs")
    assert "- Console: 1 errors" in page.text
    console = await call(browser, "browser_console_messages")
    assert "[LOG] hello from the page" in console.text
    assert "[ERROR] something broke" in console.text
    errors_only = await call(browser, "browser_console_messages", level="error")
    assert "hello from the page" not in errors_only.text

    requests = await call(browser, "browser_network_requests", static=False)
    assert f"[GET] {site.url}/api/data => [200]" in requests.text
    assert f"[GET] {site.url}/console" not in requests.text  # a loaded document is static
    everything = await call(browser, "browser_network_requests", static=True)
    line = next(x for x in everything.text.splitlines() if "/api/data" in x)
    number = int(line.split(".", 1)[0])
    details = await call(browser, "browser_network_request", index=number)
    assert "content-type: application/json" in details.text
    body = await call(browser, "browser_network_request", index=number, part="response-body")
    assert '{"n": 42}' in body.text
    unknown = await call(browser, "browser_network_request", index=99999)
    assert unknown.is_error


async def test_a_dialog_waits_for_browser_handle_dialog(
    browser: BrowserSession, site: Site
) -> None:
    upload = await call(browser, "browser_navigate", url=f"{site.url}/upload")
    chooser = await call(browser, "browser_click", ref=ref_of(upload, "Pick a file"))
    assert "File chooser" in chooser.text  # left open: leaving the page drops it
    page = await call(browser, "browser_navigate", url=f"{site.url}/dialog")
    assert "Modal state" not in page.text
    nothing = await call(browser, "browser_handle_dialog", accept=True)
    assert nothing.is_error
    opened = await call(browser, "browser_click", ref=ref_of(page, "Decide"))
    assert not opened.is_error
    assert '"confirm" dialog with message "Are you sure?"' in opened.text
    assert "browser_handle_dialog" in opened.text
    blocked = await call(browser, "browser_snapshot")  # the page runs no script meanwhile
    assert blocked.is_error and "browser_handle_dialog" in blocked.text
    handled = await call(browser, "browser_handle_dialog", accept=True)
    assert 'heading "Confirmed"' in handled.text

    again = await call(browser, "browser_click", ref=ref_of(handled, "Decide"))
    assert "Modal state" in again.text
    dismissed = await call(browser, "browser_handle_dialog", accept=False)
    assert 'heading "Cancelled"' in dismissed.text


async def test_file_upload_takes_workspace_files_and_refuses_others(
    browser: BrowserSession, site: Site, workspace: Path
) -> None:
    (workspace / "notes.txt").write_text("hello")
    page = await call(browser, "browser_navigate", url=f"{site.url}/upload")
    no_chooser = await call(browser, "browser_file_upload", paths=["notes.txt"])
    assert no_chooser.is_error
    chooser = await call(browser, "browser_click", ref=ref_of(page, "Pick a file"))
    assert "File chooser" in chooser.text
    refused = await call(browser, "browser_file_upload", paths=["/etc/passwd"])
    assert refused.is_error and "outside the workspace" in refused.text
    escaped = await call(browser, "browser_file_upload", paths=["../../etc/hostname"])
    assert escaped.is_error
    uploaded = await call(browser, "browser_file_upload", paths=["/workspace/notes.txt"])
    assert not uploaded.is_error and 'heading "Got notes.txt"' in uploaded.text


# --- the 0.0.83 extras ---------------------------------------------------------------


async def test_hover_select_press_and_drag_act_on_the_page(
    browser: BrowserSession, site: Site
) -> None:
    page = await call(browser, "browser_navigate", url=f"{site.url}/inputs")
    hovered = await call(browser, "browser_hover", ref=ref_of(page, "Hover here"))
    assert 'heading "Hovered"' in hovered.text
    chosen = await call(
        browser, "browser_select_option", ref=ref_of(hovered, "combobox"), values=["green"]
    )
    assert 'heading "green"' in chosen.text
    await call(browser, "browser_click", ref=ref_of(chosen, "Keys"))
    pressed = await call(browser, "browser_press_key", key="ArrowDown")
    assert 'heading "Key ArrowDown"' in pressed.text
    bad_key = await call(browser, "browser_press_key", key="NotAKey")
    assert bad_key.is_error
    dragged = await call(
        browser,
        "browser_drag",
        startRef=ref_of(pressed, "Drag me"),
        endTarget=ref_of(pressed, "Drop here"),
    )
    assert 'heading "Dropped x"' in dragged.text


async def test_fill_form_evaluate_find_drop_and_emulate_media(
    browser: BrowserSession, site: Site, workspace: Path
) -> None:
    page = await call(browser, "browser_navigate", url=f"{site.url}/inputs")
    filled = await call(
        browser,
        "browser_fill_form",
        fields=[
            {"name": "Name", "type": "textbox", "target": ref_of(page, "Name"), "value": "Ada"},
            {"name": "Agree", "type": "checkbox", "ref": ref_of(page, "I agree"), "value": "true"},
            {"name": "Colour", "type": "combobox", "target": "#colour", "value": "Green"},
        ],
    )
    assert not filled.is_error
    values = await call(
        browser,
        "browser_evaluate",
        function="() => [document.querySelector('#name').value,"
        " document.querySelector('#agree').checked, document.querySelector('#colour').value]",
    )
    assert json.loads(values.text.split("### Result\n", 1)[1].split("\n###", 1)[0]) == [
        "Ada",
        True,
        "green",
    ]
    on_element = await call(
        browser, "browser_evaluate", function="(el) => el.id", target=ref_of(page, "Hover here")
    )
    assert '"hov"' in on_element.text
    failing = await call(browser, "browser_evaluate", function="() => { throw new Error('nope') }")
    assert failing.is_error and "nope" in failing.text

    found = await call(browser, "browser_find", text="drop here")
    assert "Found 1 match" in found.text and "[ref=" in found.text
    none = await call(browser, "browser_find", regex="/^zzz$/i")
    assert "No matches" in none.text

    (workspace / "drop.txt").write_text("dropped")
    dropped = await call(browser, "browser_drop", target="#dst", paths=["drop.txt"])
    assert 'heading "Dropped file drop.txt"' in dropped.text
    dropped = await call(browser, "browser_drop", target="#dst", data={"text/plain": "words"})
    assert 'heading "Dropped words"' in dropped.text

    await call(browser, "browser_emulate_media", colorScheme="dark")
    dark = await call(
        browser,
        "browser_evaluate",
        function="() => matchMedia('(prefers-color-scheme: dark)').matches",
    )
    assert "### Result\ntrue" in dark.text
    await call(browser, "browser_emulate_media", colorScheme=None)


# --- bad input, time limits, closing and crashes -------------------------------------


async def test_unknown_tools_and_bad_arguments_are_invalid_input(
    browser: BrowserSession,
) -> None:
    with pytest.raises(UnknownBrowserToolError):
        await call(browser, "browser_teleport")
    with pytest.raises(BrowserArgumentError):
        await call(browser, "browser_navigate")
    with pytest.raises(BrowserArgumentError):
        await call(browser, "browser_click", ref=12)
    with pytest.raises(BrowserArgumentError):
        await call(browser, "browser_tabs", action="explode")
    with pytest.raises(InvalidInputError):
        await call(browser, "browser_snapshot", timeout_s=10_000)


async def test_a_navigation_that_never_answers_ends_at_the_timeout(
    browser: BrowserSession, site: Site
) -> None:
    async with asyncio.timeout(15):  # the tool's own 1 s budget must end it well before
        hung = await browser.call("browser_navigate", {"url": f"{site.url}/hang"}, timeout_s=1.0)
    assert hung.is_error and "did not finish within 1 s" in hung.text
    after = await call(browser, "browser_navigate", url=f"{site.url}/next")
    assert not after.is_error and "- Page Title: Next" in after.text
    async with asyncio.timeout(15):  # its image never loads, but the page is usable
        stuck = await browser.call("browser_navigate", {"url": f"{site.url}/stuck"}, timeout_s=2)
    assert not stuck.is_error and 'heading "Text first"' in stuck.text


async def test_an_unreachable_address_is_an_error_naming_the_network_policy(
    browser: BrowserSession, site: Site
) -> None:
    port = int(site.url.rsplit(":", 1)[1])
    closed_port = port + 1 if port < 65535 else port - 1  # nothing listens there (usually)
    result = await call(browser, "browser_navigate", url=f"127.0.0.1:{closed_port}/")
    assert result.is_error and "net::ERR_CONNECTION_REFUSED" in result.text


async def test_close_then_the_next_call_starts_a_fresh_browser(workspace: Path, site: Site) -> None:
    session = new_session(workspace)
    try:
        await call(session, "browser_navigate", url=f"{site.url}/")
        closed = await call(session, "browser_close")
        assert not closed.is_error and not session.running
        again = await call(session, "browser_navigate", url=f"{site.url}/next")
        assert not again.is_error and "- Page Title: Next" in again.text
    finally:
        await session.shutdown()


async def test_a_killed_browser_is_replaced_and_a_crashed_tab_closed(
    tmp_path: Path, workspace: Path, site: Site
) -> None:
    session = new_session(workspace, profile_parent=tmp_path)
    try:
        await call(session, "browser_navigate", url=f"{site.url}/")
        crashed = await call(session, "browser_navigate", url="chrome://crash")
        assert crashed.is_error
        next_call = await call(session, "browser_navigate", url=f"{site.url}/next")
        assert "crashed" in next_call.text and "- Page Title: Next" in next_call.text

        for pid in browser_pids(tmp_path):
            with contextlib.suppress(ProcessLookupError):  # gone with its parent already
                os.kill(pid, signal.SIGKILL)  # the Chromium this test started
        async with asyncio.timeout(10):
            while session.connected:
                await asyncio.sleep(0.02)
        fresh = await call(session, "browser_navigate", url=f"{site.url}/")
        assert not fresh.is_error
        assert "### Browser" in fresh.text and "fresh one was started" in fresh.text
        assert "- Page Title: Home" in fresh.text
    finally:
        await session.shutdown()


def browser_pids(profile_parent: Path) -> list[int]:
    """Chromium's main process: the one whose --user-data-dir lies under ``profile_parent``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.startswith(b"--user-data-dir=" + bytes(profile_parent)) for a in argv) and not any(
            a.startswith(b"--type=") for a in argv
        ):
            pids.append(int(entry.name))
    return pids
