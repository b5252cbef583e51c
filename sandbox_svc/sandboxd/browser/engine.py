"""Starting and stopping Playwright's driver and one Chromium with one context.

Playwright drives Chromium over a pipe (``--remote-debugging-pipe``), never a
port. Each launch gets a fresh profile directory, removed on close; it is also
the browser's HOME, so nothing the browser writes lands in the workspace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import BrowserContext, Error, Playwright, async_playwright

from .errors import BrowserUnavailableError
from .settings import CHROMIUM_ARGS, BrowserSettings

__all__ = ["Engine", "launch"]

logger = logging.getLogger(__name__)

_CLOSE_WAIT_S = 5.0
"""Each closing step (the context, then the driver) waits at most this long."""


@dataclass
class Engine:
    """A running Playwright driver and its browser's (only) context."""

    playwright: Playwright
    context: BrowserContext
    profile_dir: Path
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    _closed: bool = False

    def __post_init__(self) -> None:
        self.context.on("close", lambda _context: self.disconnected.set())

    @property
    def alive(self) -> bool:
        return not self.disconnected.is_set()

    async def close(self) -> None:
        """Close the browser, then the driver; each step bounded; idempotent.

        Stopping the driver ends a browser that would not close: Chromium exits
        when its control pipe closes.
        """
        if self._closed:
            return
        self._closed = True
        for step in (self.context.close, self.playwright.stop):
            try:
                async with asyncio.timeout(_CLOSE_WAIT_S):
                    await step()
            except Error:
                pass  # already gone
            except TimeoutError:
                logger.warning("closing the browser: a step took over %gs", _CLOSE_WAIT_S)
        self.disconnected.set()
        await asyncio.to_thread(shutil.rmtree, self.profile_dir, True)


async def launch(settings: BrowserSettings) -> Engine:
    """Start Playwright's driver, then Chromium with a fresh profile.

    Raises:
        BrowserUnavailableError: the driver or the browser cannot be started.
    """
    if not os.access(settings.executable, os.X_OK):
        raise BrowserUnavailableError(
            f"no browser at {settings.executable}; this sandbox's template does not "
            "provide Chromium"
        )
    profile = Path(
        await asyncio.to_thread(
            tempfile.mkdtemp, prefix="sandgate-chromium-", dir=settings.profile_parent
        )
    )
    driver: Playwright | None = None
    try:
        async with asyncio.timeout(settings.launch_timeout_s):
            driver = await async_playwright().start()
            context = await driver.chromium.launch_persistent_context(
                profile / "data",
                executable_path=settings.executable,
                headless=settings.headless,
                args=list(CHROMIUM_ARGS),
                env=_browser_env(profile),
                viewport={"width": settings.viewport_width, "height": settings.viewport_height},
                timeout=settings.launch_timeout_s * 1000,
                handle_sigint=False,
                handle_sigterm=False,
                handle_sighup=False,
            )
    except BaseException as exc:
        if driver is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(driver.stop(), _CLOSE_WAIT_S)
        await asyncio.to_thread(shutil.rmtree, profile, True)
        if isinstance(exc, TimeoutError):
            raise BrowserUnavailableError(
                f"the browser did not start within {settings.launch_timeout_s:g} s"
            ) from None
        if isinstance(exc, Error):
            first_line = (exc.message or str(exc)).strip().splitlines()[0]
            raise BrowserUnavailableError(f"the browser cannot start: {first_line}") from None
        raise
    return Engine(playwright=driver, context=context, profile_dir=profile)


def _browser_env(profile: Path) -> dict[str, str | float | bool]:
    env: dict[str, str | float | bool] = dict(os.environ)
    env["HOME"] = str(profile)
    env["XDG_CONFIG_HOME"] = str(profile / "config")
    env["XDG_CACHE_HOME"] = str(profile / "cache")
    return env
