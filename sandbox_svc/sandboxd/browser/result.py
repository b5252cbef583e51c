"""What a browser tool answers: MCP-style content blocks and an error flag."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BrowserContent", "BrowserResult", "ImageContent", "TextContent"]


@dataclass(frozen=True)
class TextContent:
    text: str


@dataclass(frozen=True)
class ImageContent:
    data: bytes
    mime_type: str


BrowserContent = TextContent | ImageContent


@dataclass(frozen=True)
class BrowserResult:
    """A tool's result; ``is_error`` marks a failure the model can act on."""

    content: tuple[BrowserContent, ...]
    is_error: bool = False

    @property
    def text(self) -> str:
        """All text blocks joined (images left out)."""
        return "\n".join(c.text for c in self.content if isinstance(c, TextContent))
