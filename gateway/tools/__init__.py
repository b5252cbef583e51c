"""Sandbox tool groups: each turns a tool call into SandboxRuntime calls and the
answer into content blocks. A group raises ``grpc.aio.AioRpcError`` for a
failed runtime call; the caller maps it (gateway.errors) once for all groups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from gateway.catalog import ToolSpec
from gateway.results import ToolResult
from gateway.sessions import SandboxHandle
from gateway.tools.base import BaseTools
from gateway.tools.browser import BrowserTools
from gateway.tools.filesystem import FilesystemTools

__all__ = ["SandboxToolGroup", "default_groups"]


class SandboxToolGroup(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def specs(self) -> Sequence[ToolSpec]: ...

    async def call(self, name: str, arguments: Mapping[str, Any],
                   sandbox: SandboxHandle | None) -> ToolResult:
        """Run tool ``name``; ``sandbox`` is None only for tools with needs_sandbox=False."""
        ...


def default_groups(max_result_bytes: int) -> list[SandboxToolGroup]:
    """The built-in groups: base (shell, Python), filesystem and browser."""
    return [BaseTools(max_result_bytes), FilesystemTools(max_result_bytes),
            BrowserTools(max_result_bytes)]
