"""Tools that move between pages and tabs, and wait."""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from playwright.async_api import Error, TimeoutError

from ...errors import InvalidInputError
from ..args import Args
from ..context import ToolContext
from ..errors import BrowserArgumentError, BrowserToolError
from ..tab import Tab

__all__ = [
    "navigate",
    "navigate_back",
    "navigate_forward",
    "navigate_tab",
    "resize",
    "tab_close",
    "tab_list",
    "tab_new",
    "tab_select",
    "tabs",
    "wait_for",
]

_HAS_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://|^(about|data|blob|javascript):", re.I)
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "0.0.0.0", "[::1]")
_NET_ERROR = re.compile(r"net::(ERR_[A-Z_]+)")
_POLICY = (
    "this sandbox blocks host loopback, private ranges and cloud metadata addresses "
    "unless its template allows them, and has no internet access unless its template "
    "grants it"
)
_NET_HINTS = {
    "ERR_NAME_NOT_RESOLVED": "the host name does not resolve (check the spelling; " + _POLICY + ")",
    "ERR_CONNECTION_REFUSED": "nothing accepts connections there, or " + _POLICY,
    "ERR_CONNECTION_RESET": "the server reset the connection, or " + _POLICY,
    "ERR_ADDRESS_UNREACHABLE": "the address is unreachable: " + _POLICY,
    "ERR_NETWORK_UNREACHABLE": "the network is unreachable: " + _POLICY,
    "ERR_INTERNET_DISCONNECTED": "there is no network: " + _POLICY,
    "ERR_NETWORK_ACCESS_DENIED": "network access was denied: " + _POLICY,
    "ERR_BLOCKED_BY_CLIENT": "the request was blocked: " + _POLICY,
    "ERR_CONNECTION_TIMED_OUT": "the connection timed out: " + _POLICY,
    "ERR_TIMED_OUT": "the connection timed out: " + _POLICY,
    "ERR_CERT_AUTHORITY_INVALID": "the site's TLS certificate is not trusted",
    "ERR_ABORTED": "the navigation was cancelled (by the page, a download or a crash)",
    "ERR_INVALID_URL": "the URL is malformed",
    "ERR_UNKNOWN_URL_SCHEME": "the browser does not open this kind of URL",
}
_MAX_VIEWPORT = 10_000
_CLOSED = "has been closed"


async def navigate(ctx: ToolContext, args: Args) -> None:
    url = args.required_string("url", what="the URL to open")
    await navigate_tab(ctx, await ctx.tab(), url)


async def navigate_tab(ctx: ToolContext, tab: Tab, url: str) -> None:
    """Open ``url`` in ``tab``: wait for DOMContentLoaded, then (briefly) for load."""
    asked = url.strip()  # messages name the URL as the model wrote it
    full_url = await _checked_url(ctx, url)
    page = tab.page
    try:
        loaded, _ = await tab.race_modal(
            page.goto(full_url, wait_until="domcontentloaded", timeout=ctx.timeout_ms())
        )
    except TimeoutError:
        with contextlib.suppress(Error):  # abandon the navigation still under way
            await page.evaluate("() => window.stop()")
        raise BrowserToolError(
            f"Navigation to {asked} did not finish within {ctx.budget_s:g} s (the server did not "
            "answer, or the page never finished parsing). The tab keeps whatever it loaded: "
            "call browser_snapshot to see it, or retry with a longer timeout."
        ) from None
    except Error as exc:
        message = exc.message or str(exc)
        if tab.crashed or page.is_closed() or _CLOSED in message:
            raise  # the page or browser died: the dispatcher reports that
        if "Download is starting" in message:
            ctx.add_result(
                f"{asked} is a file download, which this browser does not keep; fetch it with "
                "a shell command (for example curl -O), or read a workspace file directly."
            )
            return
        raise BrowserToolError(_navigation_error(asked, message)) from None
    if loaded:
        await _wait_for_load(ctx, tab)
    ctx.want_snapshot()


async def _wait_for_load(ctx: ToolContext, tab: Tab) -> None:
    """Wait (briefly) for the load event: a slow subresource must not hold the model up."""
    wait_s = ctx.optional_wait_s(ctx.settings.load_wait_s)
    with contextlib.suppress(Error):
        await tab.race_modal(tab.page.wait_for_load_state("load", timeout=max(wait_s * 1000, 1)))


async def _checked_url(ctx: ToolContext, url: str) -> str:
    url = url.strip()
    if not url:
        raise BrowserArgumentError(f"{ctx.tool}: url is empty; give the address to open")
    if not _HAS_SCHEME.match(url):
        local = url.startswith(_LOCAL_HOSTS)
        url = ("http://" if local else "https://") + url
    if url.lower().startswith("file:"):
        path = unquote(urlsplit(url).path)
        real = await asyncio.to_thread(_workspace_file, ctx, path)
        return real.as_uri()
    return url


def _workspace_file(ctx: ToolContext, path: str) -> Path:
    try:
        return ctx.workspace.resolve(path)
    except InvalidInputError:
        raise BrowserToolError(
            f"file:// URLs may only name files under /workspace; {path} is outside it"
        ) from None


def _navigation_error(url: str, message: str) -> str:
    found = _NET_ERROR.search(message)
    if found is None:
        first = message.strip().splitlines()[0] if message.strip() else "unknown error"
        return f"Navigation to {url} failed: {first}"
    code = found[1]
    hint = _NET_HINTS.get(code, "the page could not be loaded")
    return f"Navigation to {url} failed with net::{code}: {hint}."


async def navigate_back(ctx: ToolContext, args: Args) -> None:
    await _history(ctx, forward=False)


async def navigate_forward(ctx: ToolContext, args: Args) -> None:
    await _history(ctx, forward=True)


async def _history(ctx: ToolContext, *, forward: bool) -> None:
    tab = await ctx.tab()
    before = tab.page.url
    move = tab.page.go_forward if forward else tab.page.go_back
    try:
        moved, response = await tab.race_modal(move(wait_until="commit", timeout=ctx.timeout_ms()))
    except TimeoutError:
        raise BrowserToolError(
            f"Going {'forward' if forward else 'back'} did not finish within {ctx.budget_s:g} s."
        ) from None
    if moved and response is None and tab.page.url == before:
        ctx.add_result(f"There is no {'next' if forward else 'previous'} page in this tab.")
    if moved:
        await _wait_for_load(ctx, tab)
    ctx.want_snapshot()


async def wait_for(ctx: ToolContext, args: Args) -> None:
    seconds = args.number("time")
    text = args.string("text")
    gone = args.string("textGone")
    if seconds is None and not text and not gone:
        raise BrowserArgumentError(
            "browser_wait_for needs 'time' (seconds), 'text' (to appear) or 'textGone'"
        )
    if seconds is not None and seconds < 0:
        raise BrowserArgumentError("browser_wait_for: 'time' must be zero or more seconds")
    tab = await ctx.tab()
    capped = min(seconds, ctx.settings.max_wait_for_s) if seconds is not None else None
    if text or gone:
        limit_s = min(capped if capped else ctx.remaining_s(), ctx.remaining_s())
        waits: dict[asyncio.Task[None], str] = {}
        if text:
            waits[asyncio.create_task(_wait_text(tab, text, "visible", limit_s))] = (
                f'Waited for "{text}" to appear'
            )
        if gone:
            waits[asyncio.create_task(_wait_text(tab, gone, "hidden", limit_s))] = (
                f'Waited for "{gone}" to disappear'
            )
        outcome = await _first_success(waits)
        if outcome is None:
            what = " or ".join(
                ([f'"{text}" to appear'] if text else [])
                + ([f'"{gone}" to disappear'] if gone else [])
            )
            raise BrowserToolError(
                f"Waited {limit_s:g} s for {what}, in vain. Take a snapshot to see the page."
            )
        ctx.add_result(outcome)
    elif capped is not None and seconds is not None:
        waited = round(ctx.optional_wait_s(capped), 3)
        await asyncio.sleep(waited)
        note = "" if waited == seconds else f" (asked for {seconds:g} s; the most this call allows)"
        ctx.add_result(f"Waited for {waited:g} seconds{note}")
    ctx.want_snapshot()


async def _wait_text(tab: Tab, text: str, state: str, limit_s: float) -> None:
    locator = tab.page.get_by_text(text).first
    if state == "visible":
        await locator.wait_for(state="visible", timeout=limit_s * 1000)
    else:
        await locator.wait_for(state="hidden", timeout=limit_s * 1000)


async def _first_success(waits: dict[asyncio.Task[None], str]) -> str | None:
    pending = set(waits)
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                if not future.cancelled() and future.exception() is None:
                    return waits[future]
        return None
    finally:
        for future in pending:
            future.cancel()


async def resize(ctx: ToolContext, args: Args) -> None:
    width, height = args.integer("width"), args.integer("height")
    if width is None or height is None:
        raise BrowserArgumentError("browser_resize needs 'width' and 'height' in CSS pixels")
    if not (1 <= width <= _MAX_VIEWPORT and 1 <= height <= _MAX_VIEWPORT):
        raise BrowserArgumentError(
            f"browser_resize: width and height must be between 1 and {_MAX_VIEWPORT} pixels"
        )
    tab = await ctx.tab()
    await tab.page.set_viewport_size({"width": width, "height": height})
    ctx.add_result(f"Resized the viewport to {width}x{height}")


# -- tabs: 0.0.83's browser_tabs(action) and 0.0.25's browser_tab_* ----------


async def tabs(ctx: ToolContext, args: Args) -> None:
    action = args.choice("action", ("list", "new", "close", "select"))
    if action is None:
        raise BrowserArgumentError("browser_tabs needs 'action': list, new, close or select")
    ctx.runtime.tab_base = 0
    index = args.integer("index")
    if action == "list":
        await ctx.tab()
    elif action == "new":
        await _new(ctx, args.string("url"))
    elif action == "select":
        if index is None:
            raise BrowserArgumentError("browser_tabs action 'select' needs 'index'")
        await _select(ctx, index)
    else:
        await _close(ctx, index)
    ctx.show_tabs = True


async def tab_list(ctx: ToolContext, args: Args) -> None:
    ctx.runtime.tab_base = 1
    await ctx.tab()
    ctx.show_tabs = True


async def tab_new(ctx: ToolContext, args: Args) -> None:
    ctx.runtime.tab_base = 1
    await _new(ctx, args.string("url"))
    ctx.show_tabs = True


async def tab_select(ctx: ToolContext, args: Args) -> None:
    ctx.runtime.tab_base = 1
    index = args.integer("index")
    if index is None:
        raise BrowserArgumentError("browser_tab_select needs 'index' (tabs are numbered from 1)")
    await _select(ctx, index)
    ctx.show_tabs = True


async def tab_close(ctx: ToolContext, args: Args) -> None:
    ctx.runtime.tab_base = 1
    await _close(ctx, args.integer("index"))
    ctx.show_tabs = True


async def _new(ctx: ToolContext, url: str | None) -> None:
    tab = await ctx.runtime.new_tab()
    if url:
        await navigate_tab(ctx, tab, url)
    else:
        ctx.want_snapshot()


async def _select(ctx: ToolContext, index: int) -> None:
    tab = ctx.runtime.tab_at(index)
    await ctx.runtime.select(tab)
    ctx.want_snapshot()


async def _close(ctx: ToolContext, index: int | None) -> None:
    runtime = ctx.runtime
    tab = runtime.tab_at(index) if index is not None else runtime.current
    if tab is None:
        raise BrowserToolError("no tab is open")
    await runtime.close_tab(tab)
    if runtime.current is not None:
        with contextlib.suppress(Error):
            await runtime.current.page.bring_to_front()
