"""What a tool call returns: MCP-style content blocks, independent of the face.

The MCP face turns these into ``CallToolResult`` content, the gRPC face into
``sandgate.gateway.v1.ToolResult``; tools and the error mapping build them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "ContentBlock",
    "ImageBlock",
    "ResourceBlock",
    "TextBlock",
    "ToolResult",
    "error_result",
    "text_result",
]


@dataclass(frozen=True)
class TextBlock:
    text: str
    label: str = ""
    """What the block holds when a tool labels its parts ("stdout", "stderr", ...)."""


@dataclass(frozen=True)
class ImageBlock:
    data: bytes
    """Raw image bytes (the MCP face base64-encodes them)."""
    mime_type: str
    label: str = ""


@dataclass(frozen=True)
class ResourceBlock:
    uri: str
    mime_type: str
    text: str | None = None
    blob: bytes | None = None
    label: str = ""


ContentBlock = TextBlock | ImageBlock | ResourceBlock


@dataclass(frozen=True)
class ToolResult:
    content: tuple[ContentBlock, ...]
    is_error: bool = False
    sandbox_id: str = ""
    """The sandbox the call ran in; empty for gateway and upstream tools."""
    structured: Mapping[str, Any] | None = None
    notes: tuple[str, ...] = field(default=())
    """Gateway notices shown before the content (for example "fresh sandbox")."""

    def with_note(self, note: str) -> ToolResult:
        return replace(self, notes=(*self.notes, note))

    def blocks(self) -> tuple[ContentBlock, ...]:
        """The content with the gateway's notes first, as text blocks."""
        if not self.notes:
            return self.content
        return (*(TextBlock(n, "note") for n in self.notes), *self.content)

    @property
    def text(self) -> str:
        """Every text block joined by newlines (handy for logs and tests)."""
        return "\n".join(b.text for b in self.blocks() if isinstance(b, TextBlock))


def text_result(text: str, *, sandbox_id: str = "") -> ToolResult:
    return ToolResult((TextBlock(text),), sandbox_id=sandbox_id)


def error_result(message: str, *, sandbox_id: str = "") -> ToolResult:
    return ToolResult((TextBlock(message),), is_error=True, sandbox_id=sandbox_id)
