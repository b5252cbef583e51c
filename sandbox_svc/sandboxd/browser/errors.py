"""Errors of the browser tools.

SandboxdError (sandboxd's base)
 +-- InvalidInputError                   -> INVALID_ARGUMENT
 |    +-- UnknownBrowserToolError        no tool of that name
 |    +-- BrowserArgumentError           arguments missing, mistyped or malformed
 +-- BrowserUnavailableError             -> UNAVAILABLE: no browser can be started here

BrowserToolError                         not a status: the call answers normally with
 +-- StaleRefError                       is_error set and this message, which tells
                                         the model what to do next

A BrowserToolError is what a tool says when the page did not cooperate (a
stale ref, a navigation timeout, an unreachable address, no dialog open).
"""

from __future__ import annotations

from ..errors import InvalidInputError, SandboxdError

__all__ = [
    "BrowserArgumentError",
    "BrowserToolError",
    "BrowserUnavailableError",
    "StaleRefError",
    "UnknownBrowserToolError",
]


class UnknownBrowserToolError(InvalidInputError):
    def __init__(self, tool: str, known: list[str]) -> None:
        super().__init__(f"unknown browser tool {tool!r}; known tools: {', '.join(sorted(known))}")
        self.tool = tool


class BrowserArgumentError(InvalidInputError):
    """The arguments do not fit the tool's schema."""


class BrowserUnavailableError(SandboxdError):
    """Chromium (or Playwright's driver) cannot be started in this sandbox."""


class BrowserToolError(Exception):
    """A tool failed in a way the model can act on; the message says how."""


class StaleRefError(BrowserToolError):
    def __init__(self, ref: str) -> None:
        super().__init__(
            f"Ref {ref} is not in the last page snapshot (the page changed, or the ref "
            "comes from an older snapshot or another tab). Take a new snapshot with "
            "browser_snapshot and use a ref from it."
        )
        self.ref = ref
