"""The browser of a sandbox: Chromium driven by Playwright, served as browser_* tools.

Only the session and its values are imported here; Playwright itself is
imported when the first browser call arrives (sandboxd's start-up is on a
sandbox's cold path).
"""

from __future__ import annotations

from .args import parse_arguments
from .errors import (
    BrowserArgumentError,
    BrowserToolError,
    BrowserUnavailableError,
    StaleRefError,
    UnknownBrowserToolError,
)
from .result import BrowserContent, BrowserResult, ImageContent, TextContent
from .session import BrowserSession
from .settings import CHROMIUM_ARGS, BrowserSettings

__all__ = [
    "CHROMIUM_ARGS",
    "BrowserArgumentError",
    "BrowserContent",
    "BrowserResult",
    "BrowserSession",
    "BrowserSettings",
    "BrowserToolError",
    "BrowserUnavailableError",
    "ImageContent",
    "StaleRefError",
    "TextContent",
    "UnknownBrowserToolError",
    "parse_arguments",
]
