"""What a sandbox tool group hands the gateway for each of its tools: a handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from gateway.results import ToolResult
from gateway.sessions import SandboxHandle

__all__ = ["ToolHandler"]

ToolHandler = Callable[[Mapping[str, Any], SandboxHandle | None], Awaitable[ToolResult]]
"""Runs one tool: ``(arguments, sandbox)``; ``sandbox`` is None only for tools with
``needs_sandbox=False``. Looked up once per tool when the gateway starts, so a call
never dispatches on the tool's name again."""
