"""Sandbox tool groups: each turns a tool call into SandboxRuntime calls and the
answer into content blocks. A group raises ``grpc.aio.AioRpcError`` for a
failed runtime call; the caller maps it (gateway.errors) once for all groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gateway.catalog import ToolSpec
from gateway.tools.base import BaseTools
from gateway.tools.browser import BrowserTools
from gateway.tools.filesystem import FilesystemTools
from gateway.tools.handler import ToolHandler

__all__ = ["SandboxToolGroup", "ToolHandler", "default_groups"]


class SandboxToolGroup(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def specs(self) -> Sequence[ToolSpec]: ...

    def handler(self, name: str) -> ToolHandler:
        """The handler of tool ``name`` (one of ``specs``).

        Raises:
            KeyError: the group has no such tool.
        """
        ...


def default_groups(max_result_bytes: int) -> list[SandboxToolGroup]:
    """The built-in groups: base (shell, Python), filesystem and browser."""
    return [BaseTools(max_result_bytes), FilesystemTools(max_result_bytes),
            BrowserTools(max_result_bytes)]
