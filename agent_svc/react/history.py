"""Where the agent keeps a conversation: the protocol it needs, and two implementations.

The agent reads a session's messages at the start of a run and, when it
records, appends each message as it is finished, so a run that is cancelled or
fails leaves the messages it completed (the chat mapping answers calls that
never returned).

- :class:`InMemoryConversationHistory`: in this process's memory.
- :class:`SessionHistoryAdapter`: over a session history service with
  AgentScope Runtime's API (``get_session`` / ``create_session`` /
  ``append_message``), such as agent_svc's in-memory, SQLite and Redis ones.
  An :class:`AgentApp` with a session history records each run's input and
  output itself; the agent then only reads (``record_history=False``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar

from agent_svc.protocol import Message

__all__ = [
    "ConversationHistory",
    "InMemoryConversationHistory",
    "SessionHistoryAdapter",
    "SessionService",
]


class ConversationHistory(Protocol):
    """The messages of one conversation, keyed by ``(user_id, session_id)``."""

    async def get_messages(self, user_id: str, session_id: str) -> list[Message]:
        """Every message of the session, oldest first (empty for a new session)."""
        ...

    async def append_messages(self, user_id: str, session_id: str,
                              messages: Sequence[Message]) -> None:
        """Add ``messages`` at the end of the session (creating it if needed)."""
        ...


class InMemoryConversationHistory:
    """A :class:`ConversationHistory` in this process's memory (tests, single runs)."""

    def __init__(self) -> None:
        self._sessions: defaultdict[tuple[str, str], list[Message]] = defaultdict(list)

    async def get_messages(self, user_id: str, session_id: str) -> list[Message]:
        return [m.model_copy(deep=True) for m in self._sessions.get((user_id, session_id), ())]

    async def append_messages(self, user_id: str, session_id: str,
                              messages: Sequence[Message]) -> None:
        self._sessions[(user_id, session_id)].extend(m.model_copy(deep=True) for m in messages)


class _WithMessages(Protocol):
    messages: list[Message]


_S = TypeVar("_S", bound=_WithMessages)


class SessionService(Protocol[_S]):
    """A session history service with AgentScope Runtime's API (what the adapter uses)."""

    async def get_session(self, user_id: str, session_id: str) -> _S | None: ...

    async def create_session(self, user_id: str, session_id: str | None = None) -> _S: ...

    async def append_message(self, session: _S, message: list[Message]) -> None: ...


class SessionHistoryAdapter(Generic[_S]):
    """A :class:`ConversationHistory` over a :class:`SessionService`."""

    def __init__(self, service: SessionService[_S]) -> None:
        self._service = service

    async def get_messages(self, user_id: str, session_id: str) -> list[Message]:
        session = await self._service.get_session(user_id, session_id)
        return list(session.messages) if session is not None else []

    async def append_messages(self, user_id: str, session_id: str,
                              messages: Sequence[Message]) -> None:
        session = await self._service.get_session(user_id, session_id)
        if session is None:
            session = await self._service.create_session(user_id, session_id)
        await self._service.append_message(session, list(messages))
