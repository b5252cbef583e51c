"""Where the agent keeps a conversation: the protocol it needs, and an in-memory store.

The agent reads a session's messages at the start of a run and appends each
message as it is finished, so a run that is cancelled or fails leaves the
messages it completed (the chat mapping answers calls that never returned).
The session history services of agent_svc (in-memory, SQLite, Redis) satisfy
:class:`ConversationHistory` directly or through a small adapter.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol

from agent_svc.protocol import Message

__all__ = ["ConversationHistory", "InMemoryConversationHistory"]


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
