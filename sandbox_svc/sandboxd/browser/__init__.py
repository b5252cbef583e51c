"""The browser of a sandbox: Chromium driven by Playwright, served as browser_* tools.

Only the errors are imported with the package; the session and its values
when first named (``from .browser import BrowserSession``), and Playwright
itself when the first browser call arrives: sandboxd's start-up is on a
sandbox's cold path and most sandboxes never browse.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    BrowserArgumentError,
    BrowserToolError,
    BrowserUnavailableError,
    StaleRefError,
    UnknownBrowserToolError,
)

if TYPE_CHECKING:
    from .args import parse_arguments
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

_LAZY = {
    "parse_arguments": ".args",
    "BrowserContent": ".result", "BrowserResult": ".result", "ImageContent": ".result",
    "TextContent": ".result",
    "BrowserSession": ".session",
    "CHROMIUM_ARGS": ".settings", "BrowserSettings": ".settings",
}
"""Exported names imported on first use (PEP 562), with the module that defines each."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value
