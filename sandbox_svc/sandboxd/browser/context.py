"""What a tool works with during one call, and how its result is rendered.

A tool reads its arguments, acts on the current tab through this context, and
adds results; ``render`` then writes the result the way Playwright MCP does:
markdown sections (``### Result``, ``### Page``, ``### Snapshot``, ...), then
any images. Every wait here is bounded by the call's deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from playwright.async_api import Error, Locator, Request

from ..errors import InvalidInputError
from ..paths import Workspace
from .errors import BrowserToolError
from .result import BrowserContent, BrowserResult, ImageContent, TextContent
from .runtime import BrowserRuntime
from .settings import BrowserSettings
from .snapshot import capture, truncate
from .tab import Tab

__all__ = ["ToolContext"]

_RENDER_GRACE_S = 2.0
"""Rendering the page state may run this much past an exhausted budget."""
_OPTIONAL_WAIT_MARGIN_S = 0.2


@dataclass
class _SnapshotWish:
    root: Locator | None = None
    depth: int | None = None
    boxes: bool = False
    filename: str | None = None


class ToolContext:
    """One call's runtime, budget, workspace and result under construction."""

    def __init__(
        self,
        *,
        tool: str,
        runtime: BrowserRuntime,
        settings: BrowserSettings,
        workspace: Workspace,
        budget_s: float,
    ) -> None:
        self.tool = tool
        self._runtime = runtime
        self.settings = settings
        self.workspace = workspace
        self.budget_s = budget_s
        self._deadline = time.monotonic() + budget_s
        self.notices: list[str] = []
        self.results: list[str] = []
        self.errors: list[str] = []
        self.images: list[ImageContent] = []
        self.show_tabs = False
        self._snapshot: _SnapshotWish | None = None

    # -- the browser ------------------------------------------------------

    @property
    def runtime(self) -> BrowserRuntime:
        return self._runtime

    async def tab(self) -> Tab:
        """The current tab (one is opened when none is)."""
        return await self._runtime.ensure_tab()

    # -- time -------------------------------------------------------------

    def remaining_s(self) -> float:
        return max(self._deadline - time.monotonic(), 0.001)

    def timeout_ms(self) -> float:
        """What is left of the call's budget, for Playwright's ``timeout=``."""
        return self.remaining_s() * 1000

    def optional_wait_s(self, cap_s: float) -> float:
        """How long a wait that may be cut short can last: at most ``cap_s``,
        ending a little before the budget so that the call still succeeds."""
        return max(min(cap_s, self._deadline - time.monotonic() - _OPTIONAL_WAIT_MARGIN_S), 0.0)

    def action_timeout_ms(self) -> float:
        return min(self.settings.action_timeout_s, self.remaining_s()) * 1000

    # -- results ----------------------------------------------------------

    def add_result(self, text: str) -> None:
        self.results.append(text)

    def add_error(self, text: str) -> None:
        self.errors.append(text)

    def add_image(self, data: bytes, mime_type: str) -> None:
        self.images.append(ImageContent(data=data, mime_type=mime_type))

    def want_snapshot(
        self,
        *,
        root: Locator | None = None,
        depth: int | None = None,
        boxes: bool = False,
        filename: str | None = None,
    ) -> None:
        self._snapshot = _SnapshotWish(root, depth, boxes, filename)

    async def add_text_result(self, title: str, text: str, filename: str | None) -> None:
        """Return ``text``, or save it into the workspace when a filename is given."""
        if filename:
            _, shown = await self.write_file(filename, text.encode())
            self.add_result(f"- [{title}]({shown})")
        else:
            self.add_result(
                truncate(text, self.settings.max_text_chars, "pass filename to save it all")
            )

    # -- files ------------------------------------------------------------

    async def write_file(self, filename: str, data: bytes) -> tuple[Path, str]:
        """Write into the workspace; returns the real path and its /workspace spelling."""

        def write() -> tuple[Path, str]:
            real = self._resolve(filename)
            real.parent.mkdir(parents=True, exist_ok=True)
            real.write_bytes(data)
            return real, self.workspace.display(real)

        try:
            return await asyncio.to_thread(write)
        except OSError as exc:
            raise BrowserToolError(f"cannot write {filename}: {exc.strerror}") from None

    async def input_file(self, path: str) -> Path:
        """A file under the workspace that the browser may read (uploads, drops)."""

        def check() -> Path:
            real = self._resolve(path)
            if not real.is_file():
                raise BrowserToolError(
                    f"{path}: no such file in the workspace; only existing files under "
                    "/workspace can be uploaded"
                )
            if not os.access(real, os.R_OK):
                raise BrowserToolError(f"{path}: the sandbox user cannot read it")
            return real

        return await asyncio.to_thread(check)

    def _resolve(self, path: str) -> Path:
        try:
            return self.workspace.resolve(path)
        except InvalidInputError as exc:
            raise BrowserToolError(str(exc)) from None

    # -- acting -----------------------------------------------------------

    async def act(self, tab: Tab, action: Callable[[], Awaitable[object]]) -> None:
        """Run an input action, then wait (bounded) for what it set off.

        A dialog or file chooser that the action opens ends the wait at once.
        A navigation it started is awaited to its load event; requests it
        started, to their responses.
        """
        started: list[Request] = []

        def listener(request: Request) -> None:
            started.append(request)

        tab.page.on("request", listener)
        try:
            finished, _ = await tab.race_modal(action())
            if not finished:
                return  # a dialog or file chooser is waiting for the model
            await asyncio.sleep(self.optional_wait_s(self.settings.settle_s))
        finally:
            tab.page.remove_listener("request", listener)
        if any(r.is_navigation_request() for r in started):
            wait_s = self.optional_wait_s(self.settings.load_wait_s)
            with contextlib.suppress(Error):
                await tab.race_modal(
                    tab.page.wait_for_load_state("load", timeout=max(wait_s * 1000, 1))
                )
        elif started:
            wait_s = self.optional_wait_s(self.settings.network_wait_s)
            responses = [asyncio.ensure_future(_response_of(r)) for r in started]
            _done, pending = await asyncio.wait(responses, timeout=wait_s)
            for future in pending:
                future.cancel()

    # -- rendering --------------------------------------------------------

    async def render(self) -> BrowserResult:
        sections: list[tuple[str, list[str]]] = []
        if self.notices:
            sections.append(("Browser", self.notices))
        if self.errors:
            sections.append(("Error", self.errors))
        if self.results:
            sections.append(("Result", self.results))
        runtime = self._runtime
        if runtime.alive and runtime.current is not None:
            deadline = max(self.remaining_s(), _RENDER_GRACE_S)
            try:
                async with asyncio.timeout(deadline):
                    sections.extend(await self._page_sections(runtime, runtime.current))
            except TimeoutError:
                sections.append(("Page", ["- The page did not answer in time (busy or hung)."]))
        text = "\n".join(f"### {title}\n" + "\n".join(lines) for title, lines in sections if lines)
        content: list[BrowserContent] = [TextContent(text or "Done.")]
        content.extend(self.images)
        return BrowserResult(content=tuple(content), is_error=bool(self.errors))

    async def _page_sections(
        self, runtime: BrowserRuntime, tab: Tab
    ) -> list[tuple[str, list[str]]]:
        sections: list[tuple[str, list[str]]] = []
        if self.show_tabs or len(runtime.tabs) > 1:
            sections.append(("Open tabs", await self.tab_lines(runtime)))
        page = [f"- Page URL: {tab.page.url}"]
        if not tab.javascript_blocked and not tab.crashed:
            with contextlib.suppress(Error):
                title = await tab.page.title()
                if title:
                    page.append(f"- Page Title: {title}")
        if tab.crashed:
            page.append("- Page status: crashed; the next call closes this tab")
        if tab.errors or tab.warnings:
            page.append(f"- Console: {tab.errors} errors, {tab.warnings} warnings")
        sections.append(("Page", page))
        if tab.has_modal:
            sections.append(("Modal state", tab.modal_lines()))
        elif self._snapshot is not None and not tab.crashed:
            sections.append(("Snapshot", await self._snapshot_lines(tab, self._snapshot)))
        return sections

    async def _snapshot_lines(self, tab: Tab, wish: _SnapshotWish) -> list[str]:
        timeout_ms = max(self.remaining_s(), _RENDER_GRACE_S) * 1000
        try:
            text = await capture(
                tab.page, root=wish.root, depth=wish.depth, boxes=wish.boxes, timeout_ms=timeout_ms
            )
        except Error as exc:
            message = (exc.message or str(exc)).strip().splitlines()[0]
            return [f"(no snapshot: {message}; call browser_snapshot again)"]
        if wish.filename:
            _, shown = await self.write_file(wish.filename, text.encode())
            return [f"- [Snapshot]({shown})"]
        if not text.strip():
            return ["(the page is empty)"]
        hint = "use browser_find, or browser_snapshot with target, depth or filename"
        return ["```yaml", truncate(text, self.settings.max_text_chars, hint), "```"]

    async def tab_lines(self, runtime: BrowserRuntime) -> list[str]:
        if not runtime.tabs:
            return ["No open tabs. Navigate to a URL to open one."]
        lines = []
        for number, tab in enumerate(runtime.tabs, start=runtime.tab_base):
            current = " (current)" if tab is runtime.current else ""
            title = ""
            if not tab.javascript_blocked and not tab.crashed:
                with contextlib.suppress(Error):
                    title = await tab.page.title()
            crashed = " [crashed]" if tab.crashed else ""
            lines.append(f"- {number}:{current} [{title}]({tab.page.url}){crashed}")
        return lines


async def _response_of(request: Request) -> None:
    with contextlib.suppress(Error):
        await request.response()
