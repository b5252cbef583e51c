"""Long-term memory: messages kept per user (and session), found again by keywords.

AgentScope Runtime's API: ``add_memory(user_id, messages, session_id=None)``;
``search_memory(user_id, messages, filters=None)`` ranks the user's memories by
how many distinct words of the last message's text they contain (ties: the
most recent first), drops those sharing none, and keeps ``filters["top_k"]``
(default: all); ``list_memory(user_id, filters=None)`` pages through them in
the order they were added (``page_num`` from 1, ``page_size`` default 10);
``delete_memory(user_id, session_id=None)`` forgets a session's memories, or
all of the user's.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

from agent_svc.errors import InvalidRequestError, ServiceNotStartedError
from agent_svc.protocol import Message
from agent_svc.services.base import Service, as_messages, message_text

__all__ = ["InMemoryMemoryService", "MemoryService", "page", "rank"]

_WORD = re.compile(r"\w+")


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) > 1 or w.isdigit()}


def _int_filter(filters: dict[str, Any] | None, name: str, default: int | None) -> int | None:
    value = (filters or {}).get(name, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidRequestError(f"filter {name} must be a positive integer, not {value!r}")
    return value


def rank(query: Sequence[Message], memories: Sequence[Message],
         filters: dict[str, Any] | None = None) -> list[Message]:
    """``memories`` (oldest first) matching the last query message, best first.

    Raises:
        InvalidRequestError: ``top_k`` is not a positive integer.
    """
    top_k = _int_filter(filters, "top_k", None)
    if not query:
        return []
    keywords = _words(message_text(query[-1]))
    if not keywords:
        return []
    scored = []
    for age, memory in enumerate(memories):
        score = len(keywords & _words(message_text(memory)))
        if score:
            scored.append((-score, -age, memory))
    scored.sort(key=lambda item: (item[0], item[1]))
    found = [memory for _, _, memory in scored]
    return found[:top_k] if top_k is not None else found


def page(memories: Sequence[Message], filters: dict[str, Any] | None = None) -> list[Message]:
    """One page of ``memories``.

    Raises:
        InvalidRequestError: ``page_num`` or ``page_size`` is not a positive integer.
    """
    number = _int_filter(filters, "page_num", 1) or 1
    size = _int_filter(filters, "page_size", 10) or 10
    return list(memories[(number - 1) * size: number * size])


class MemoryService(Service):
    """Stores and finds a user's memories.

    Raises:
        ServiceNotStartedError: from any method before ``start()``.
        InvalidRequestError: bad ``filters``.
    """

    @abstractmethod
    async def add_memory(self, user_id: str, messages: list[Message] | list[dict[str, Any]],
                         session_id: str | None = None) -> None:
        """Remember ``messages`` for the user (under ``session_id`` when given)."""

    @abstractmethod
    async def search_memory(self, user_id: str,
                            messages: list[Message] | list[dict[str, Any]],
                            filters: dict[str, Any] | None = None) -> list[Message]:
        """Memories matching the last message, best first (``top_k`` limits them)."""

    @abstractmethod
    async def list_memory(self, user_id: str,
                          filters: dict[str, Any] | None = None) -> list[Message]:
        """A page of the user's memories (``page_num``, ``page_size``)."""

    @abstractmethod
    async def delete_memory(self, user_id: str, session_id: str | None = None) -> None:
        """Forget the session's memories, or all of the user's."""


class InMemoryMemoryService(MemoryService):
    """Memories in a dict: for tests and development (lost on stop)."""

    def __init__(self) -> None:
        self._store: dict[str, list[tuple[str | None, Message]]] | None = None

    async def start(self) -> None:
        if self._store is None:
            self._store = {}

    async def stop(self) -> None:
        self._store = None

    async def health(self) -> bool:
        return self._store is not None

    def _items(self, user_id: str) -> list[tuple[str | None, Message]]:
        if self._store is None:
            raise ServiceNotStartedError("the memory service is not started")
        return self._store.setdefault(user_id, [])

    async def add_memory(self, user_id: str, messages: list[Message] | list[dict[str, Any]],
                         session_id: str | None = None) -> None:
        self._items(user_id).extend(
            (session_id, m.model_copy(deep=True)) for m in as_messages(messages))

    async def search_memory(self, user_id: str,
                            messages: list[Message] | list[dict[str, Any]],
                            filters: dict[str, Any] | None = None) -> list[Message]:
        return rank(as_messages(messages), [m for _, m in self._items(user_id)], filters)

    async def list_memory(self, user_id: str,
                          filters: dict[str, Any] | None = None) -> list[Message]:
        return page([m for _, m in self._items(user_id)], filters)

    async def delete_memory(self, user_id: str, session_id: str | None = None) -> None:
        items = self._items(user_id)
        items[:] = [] if session_id is None else [i for i in items if i[0] != session_id]
