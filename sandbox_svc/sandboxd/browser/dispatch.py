"""Running one tool in a live browser, and turning page failures into results.

Everything that goes wrong in the page ends up as an ``is_error`` result with
a message the model can act on: a ``BrowserToolError`` as is, a Playwright
timeout with the last steps of its call log and what to try next, a browser
or page that died mid-call with what the next call will do.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from ..paths import Workspace
from .args import Args
from .context import ToolContext
from .errors import BrowserToolError, StaleRefError
from .result import BrowserResult
from .runtime import BrowserRuntime
from .settings import BrowserSettings
from .tools import TOOLS

__all__ = ["run_tool"]

_MAX_ERROR_CHARS = 1_500
_CLOSED = "has been closed"
_WHILE_DIALOG = frozenset(
    {
        "browser_handle_dialog",
        "browser_tabs",
        "browser_tab_list",
        "browser_tab_new",
        "browser_tab_select",
        "browser_tab_close",
        "browser_console_messages",
        "browser_network_requests",
        "browser_network_request",
    }
)
"""The tools that work while a dialog blocks the page's scripts."""
_STALE_REF = re.compile(r"aria-ref=((?:f\d+)?e\d+)")


async def run_tool(
    tool: str,
    arguments: Mapping[str, object],
    *,
    runtime: BrowserRuntime,
    settings: BrowserSettings,
    workspace: Workspace,
    budget_s: float,
    notices: list[str],
) -> BrowserResult:
    """Run ``tool`` within ``budget_s`` and render its result.

    Raises:
        BrowserArgumentError: the arguments do not fit the tool.
    """
    ctx = ToolContext(
        tool=tool, runtime=runtime, settings=settings, workspace=workspace, budget_s=budget_s
    )
    ctx.notices.extend(notices)
    current = runtime.current
    if current is not None and current.javascript_blocked and tool not in _WHILE_DIALOG:
        ctx.add_error(
            f"A dialog is open on the current tab, so the page cannot run {tool}: "
            "answer it with browser_handle_dialog first."
        )
        return await ctx.render()
    deadline = asyncio.timeout(budget_s)
    try:
        async with deadline:
            await TOOLS[tool](ctx, Args(tool, arguments))
    except BrowserToolError as exc:
        ctx.add_error(str(exc))
    except PlaywrightTimeoutError as exc:
        ctx.add_error(_timeout_message(tool, exc.message or str(exc)))
    except PlaywrightError as exc:
        if _CLOSED in (exc.message or ""):
            await runtime.confirm_alive()
        if not runtime.alive:
            ctx.add_error(
                f"The browser closed or crashed during {tool}; the next call starts a fresh one."
            )
        elif runtime.current is not None and runtime.current.crashed:
            ctx.add_error(f"The page crashed during {tool}; the next call closes its tab.")
        else:
            ctx.add_error(_clip(f"{tool} failed: {exc.message or exc}"))
    except TimeoutError:
        if not deadline.expired():
            raise
        ctx.add_error(
            f"{tool} did not finish within {budget_s:g} s and was stopped; the page may still "
            "be busy. Take a snapshot to see where it is, or retry with a longer timeout."
        )
    return await ctx.render()


def _timeout_message(tool: str, message: str) -> str:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    stale = _STALE_REF.search(message)
    if stale and lines and lines[-1].startswith("- waiting for locator"):
        return str(StaleRefError(stale[1]))  # the element went away after the ref was checked
    steps = [line.lstrip("- ") for line in lines[1:] if line.startswith("-")][-3:]
    detail = f" ({'; '.join(steps)})" if steps else ""
    return _clip(
        f"{tool} timed out: {lines[0] if lines else 'timeout'}{detail}. The element may be "
        "hidden, disabled, covered by another element or still loading: take a new snapshot "
        "(browser_snapshot) or wait for it (browser_wait_for), then try again."
    )


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_CHARS else text[:_MAX_ERROR_CHARS] + " ..."
