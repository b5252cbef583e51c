"""A launched browser: its tabs, the current one, and crash bookkeeping."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from playwright.async_api import Error, Page

from .engine import Engine, launch
from .errors import BrowserToolError
from .settings import BrowserSettings
from .tab import Tab

__all__ = ["BrowserRuntime"]

logger = logging.getLogger(__name__)

_PROBE_TIMEOUT_S = 2.0


class BrowserRuntime:
    """Tabs of the browser's one context, in opening order."""

    def __init__(self, engine: Engine, settings: BrowserSettings) -> None:
        self.engine = engine
        self._settings = settings
        self.tabs: list[Tab] = []
        self.current: Tab | None = None
        self.tab_base = 0
        """How tab lists number tabs: 0 (``browser_tabs``) or 1 (``browser_tab_*``)."""
        for page in engine.context.pages:
            self._adopt(page)
        engine.context.on("page", self._on_page)

    @classmethod
    async def start(cls, settings: BrowserSettings) -> BrowserRuntime:
        return cls(await launch(settings), settings)

    @property
    def alive(self) -> bool:
        return self.engine.alive

    def _on_page(self, page: Page) -> None:
        self._adopt(page)

    async def confirm_alive(self) -> bool:
        """Ask the browser itself; mark it dead when it does not answer.

        For a call that failed with "closed": the page may have closed itself,
        or the whole browser died and its close event is still on the way.
        """
        if self.alive:
            try:
                async with asyncio.timeout(_PROBE_TIMEOUT_S):
                    await self.engine.context.cookies()
            except (Error, TimeoutError):
                self.engine.disconnected.set()
        return self.alive

    def _adopt(self, page: Page) -> Tab:
        for tab in self.tabs:
            if tab.page is page:
                return tab
        tab = Tab(page, max_requests=self._settings.max_requests_kept)
        page.set_default_timeout(self._settings.action_timeout_s * 1000)
        page.on("close", lambda _page: self._forget(tab))
        self.tabs.append(tab)
        if self.current is None:
            self.current = tab
        return tab

    def _forget(self, tab: Tab) -> None:
        if tab not in self.tabs:
            return
        index = self.tabs.index(tab)
        self.tabs.remove(tab)
        if self.current is tab:
            self.current = self.tabs[min(index, len(self.tabs) - 1)] if self.tabs else None

    async def ensure_tab(self) -> Tab:
        """The current tab, opening one when none is open."""
        if self.current is None:
            return await self.new_tab()
        return self.current

    async def new_tab(self) -> Tab:
        tab = self._adopt(await self.engine.context.new_page())
        self.current = tab
        return tab

    def tab_at(self, index: int) -> Tab:
        """The tab at ``index`` in the numbering of ``tab_base``."""
        if not self.tabs:
            raise BrowserToolError("No tab is open; navigate to a URL to open one.")
        position = index - self.tab_base
        if not 0 <= position < len(self.tabs):
            last = self.tab_base + len(self.tabs) - 1
            raise BrowserToolError(
                f"There is no tab {index}; open tabs are numbered {self.tab_base} to {last}."
            )
        return self.tabs[position]

    async def select(self, tab: Tab) -> None:
        self.current = tab
        with contextlib.suppress(Error):
            await tab.page.bring_to_front()

    async def close_tab(self, tab: Tab) -> None:
        await tab.close()
        self._forget(tab)

    async def reap_crashed(self) -> list[str]:
        """Close tabs whose renderer crashed; say which ones."""
        notices = []
        for tab in [t for t in self.tabs if t.crashed]:
            number = self.tabs.index(tab) + self.tab_base
            url = tab.page.url
            await self.close_tab(tab)
            notices.append(
                f"Tab {number} ({url}) crashed (its renderer died, for example out of memory) "
                "and was closed."
            )
        return notices

    async def close(self) -> None:
        await self.engine.close()
        self.tabs.clear()
        self.current = None
