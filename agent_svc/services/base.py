"""The lifecycle every state, session history and memory service shares."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any, Self

from agent_svc.protocol import Message

__all__ = ["Service", "ServiceWithLifecycleManager", "as_messages", "message_text"]


class Service(ABC):
    """Started before use and stopped after (``async with service:`` does both).

    Raises:
        ServiceNotStartedError: from any data method called before ``start()``.
    """

    @abstractmethod
    async def start(self) -> None:
        """Open connections or files; idempotent."""

    @abstractmethod
    async def stop(self) -> None:
        """Release them; an in-memory service forgets its data."""

    async def health(self) -> bool:
        """Whether the service can answer now."""
        return True

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()


ServiceWithLifecycleManager = Service
"""AgentScope Runtime's name for :class:`Service`."""


def as_messages(value: Message | dict[str, Any] | list[Message] | list[dict[str, Any]]
                | list[Message | dict[str, Any]] | None) -> list[Message]:
    """One message or a list of them, dicts validated as :class:`Message`."""
    items: list[Any] = value if isinstance(value, list) else [value]
    return [m if isinstance(m, Message) else Message.model_validate(m)
            for m in items if m is not None]


def message_text(message: Message) -> str:
    """The text a message carries (text content, else the JSON of its data)."""
    text = message.text()
    if text:
        return text
    parts = [str(getattr(c, "data", "") or "") for c in message.content or ()]
    return " ".join(p for p in parts if p)
