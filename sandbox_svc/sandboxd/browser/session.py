"""The sandbox's browser session: one browser, one context, calls one at a time.

The browser starts on the first call (or at sandboxd start-up, with
``--browser-warm``). Before each call the session checks that the browser is
still alive: a browser that crashed or was killed is replaced (the result
says so), and tabs whose renderer crashed are closed. ``browser_close`` ends
the browser; the next call starts a fresh one. Playwright is imported on the
first call only: sandboxd's start-up is on a sandbox's cold path.

Outcomes: bad input (unknown tool, bad arguments, timeout out of range) raises
an ``InvalidInputError``; a browser that cannot start raises
``BrowserUnavailableError``; everything that goes wrong in the page (stale
ref, navigation timeout, unreachable address, a Playwright error) comes back
as a result with ``is_error`` set.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..errors import InvalidInputError
from ..paths import Workspace
from .errors import BrowserUnavailableError, UnknownBrowserToolError
from .result import BrowserResult, TextContent
from .settings import BrowserSettings

if TYPE_CHECKING:
    from .runtime import BrowserRuntime

__all__ = ["BrowserSession"]

logger = logging.getLogger(__name__)

_CLOSE_TOOL = "browser_close"


class BrowserSession:
    """The one browser of a sandbox, serving tool calls in turn."""

    def __init__(self, settings: BrowserSettings, workspace: Workspace) -> None:
        self._settings = settings
        self._workspace = workspace
        self._lock = asyncio.Lock()
        self._runtime: BrowserRuntime | None = None
        self._shut_down = False

    @property
    def running(self) -> bool:
        """A browser has been started and not closed (it may since have crashed)."""
        return self._runtime is not None

    @property
    def connected(self) -> bool:
        """A browser is running and its connection is up, as far as is known."""
        return self._runtime is not None and self._runtime.alive

    async def start(self) -> None:
        """Start the browser now rather than on the first call.

        Raises:
            BrowserUnavailableError: it cannot be started.
        """
        from .dispatch import run_tool

        async with self._lock:
            runtime = await self._ensure_runtime([])
            # One harmless call loads the tool code and wakes the page, so a warm
            # sandbox's first real call pays neither.
            await run_tool("browser_tabs", {"action": "list"}, runtime=runtime,
                           settings=self._settings, workspace=self._workspace,
                           budget_s=self._settings.default_timeout_s, notices=[])

    async def call(
        self, tool: str, arguments: Mapping[str, object], *, timeout_s: float | None = None
    ) -> BrowserResult:
        """Run one browser tool.

        Args:
            tool: A Playwright MCP tool name, such as ``browser_navigate``.
            arguments: The tool's arguments (decoded JSON).
            timeout_s: Budget of the whole call; the default when None.

        Raises:
            UnknownBrowserToolError: no such tool.
            BrowserArgumentError: the arguments do not fit the tool.
            InvalidInputError: the timeout is out of range.
            BrowserUnavailableError: no browser can be started.
        """
        from .dispatch import run_tool
        from .tools import TOOLS

        if tool != _CLOSE_TOOL and tool not in TOOLS:
            raise UnknownBrowserToolError(tool, [*TOOLS, _CLOSE_TOOL])
        budget = self._budget(timeout_s)
        async with self._lock:
            if self._shut_down:
                raise BrowserUnavailableError("sandboxd is shutting down; the browser is closed")
            if tool == _CLOSE_TOOL:
                return await self._close()
            notices: list[str] = []
            runtime = await self._ensure_runtime(notices)
            notices += await runtime.reap_crashed()
            logger.debug("browser call %s", tool)
            return await run_tool(
                tool,
                arguments,
                runtime=runtime,
                settings=self._settings,
                workspace=self._workspace,
                budget_s=budget,
                notices=notices,
            )

    async def shutdown(self) -> None:
        """Close the browser for good (sandboxd is stopping)."""
        self._shut_down = True
        runtime, self._runtime = self._runtime, None
        if runtime is not None:
            await runtime.close()

    async def _ensure_runtime(self, notices: list[str]) -> BrowserRuntime:
        from .runtime import BrowserRuntime

        if self._runtime is not None and self._runtime.alive:
            return self._runtime
        if self._runtime is not None:
            await self._runtime.close()
            self._runtime = None
            notices.append(
                "The browser had crashed or was killed, so a fresh one was started: tabs, refs, "
                "cookies and page state from before are gone."
            )
            logger.warning("the browser died; starting a fresh one")
        self._runtime = await BrowserRuntime.start(self._settings)
        logger.info("browser started (%s)", self._settings.executable)
        return self._runtime

    async def _close(self) -> BrowserResult:
        runtime, self._runtime = self._runtime, None
        if runtime is None:
            text = "### Result\nNo browser was open."
        else:
            await runtime.close()
            text = "### Result\nClosed the browser; the next browser call starts a fresh one."
        return BrowserResult((TextContent(text),))

    def _budget(self, timeout_s: float | None) -> float:
        if timeout_s is None:
            return self._settings.default_timeout_s
        low, high = self._settings.min_timeout_s, self._settings.max_timeout_s
        if not math.isfinite(timeout_s) or not low <= timeout_s <= high:
            raise InvalidInputError(
                f"timeout {timeout_s:g} s is out of range; browser calls allow "
                f"{low:g} s to {high:g} s"
            )
        return timeout_s
