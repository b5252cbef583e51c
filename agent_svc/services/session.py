"""Session history: the messages of each conversation, per user (AgentScope Runtime's API).

A :class:`Session` is ``{id, user_id, messages}``. ``create_session`` makes one
(a generated id when none is given; an existing one is kept, not emptied);
``get_session`` answers it with its messages or ``None``; ``list_sessions``
answers a user's sessions in creation order without their messages;
``append_message`` adds messages (a ``Message``, a dict, or a list of either) to
the stored session, creating it when needed, and to the ``Session`` object
passed; ``delete_session`` forgets one (no error when it does not exist).
"""

from __future__ import annotations

import uuid
from abc import abstractmethod
from typing import Any

from pydantic import BaseModel, Field

from agent_svc.errors import ServiceNotStartedError
from agent_svc.protocol import Message
from agent_svc.services.base import Service, as_messages

__all__ = ["InMemorySessionHistoryService", "MessageInput", "Session",
           "SessionHistoryService", "session_id_or_new"]

MessageInput = Message | dict[str, Any] | list[Message] | list[dict[str, Any]]
"""What ``append_message`` accepts."""


class Session(BaseModel):
    """One conversation of one user."""

    id: str
    user_id: str
    messages: list[Message] = Field(default_factory=list)


def session_id_or_new(session_id: str | None) -> str:
    return session_id.strip() if session_id and session_id.strip() else str(uuid.uuid4())


class SessionHistoryService(Service):
    """Stores sessions and their messages.

    Raises:
        ServiceNotStartedError: from any method before ``start()``.
    """

    @abstractmethod
    async def create_session(self, user_id: str, session_id: str | None = None) -> Session:
        """The session ``session_id`` of ``user_id`` (created empty if new; a new id if None)."""

    @abstractmethod
    async def get_session(self, user_id: str, session_id: str) -> Session | None:
        """The session with its messages, or ``None``."""

    @abstractmethod
    async def delete_session(self, user_id: str, session_id: str) -> None:
        """Forget the session (nothing happens when there is none)."""

    @abstractmethod
    async def list_sessions(self, user_id: str) -> list[Session]:
        """The user's sessions, oldest first, without their messages."""

    @abstractmethod
    async def append_message(self, session: Session, message: MessageInput) -> None:
        """Append to the stored session (creating it) and to ``session.messages``."""


class InMemorySessionHistoryService(SessionHistoryService):
    """Sessions in a dict: for tests and development (lost on stop)."""

    def __init__(self) -> None:
        self._store: dict[str, dict[str, Session]] | None = None

    async def start(self) -> None:
        if self._store is None:
            self._store = {}

    async def stop(self) -> None:
        self._store = None

    async def health(self) -> bool:
        return self._store is not None

    def _data(self) -> dict[str, dict[str, Session]]:
        if self._store is None:
            raise ServiceNotStartedError("the session history service is not started")
        return self._store

    async def create_session(self, user_id: str, session_id: str | None = None) -> Session:
        sessions = self._data().setdefault(user_id, {})
        sid = session_id_or_new(session_id)
        stored = sessions.setdefault(sid, Session(id=sid, user_id=user_id))
        return stored.model_copy(deep=True)

    async def get_session(self, user_id: str, session_id: str) -> Session | None:
        stored = self._data().get(user_id, {}).get(session_id)
        return stored.model_copy(deep=True) if stored else None

    async def delete_session(self, user_id: str, session_id: str) -> None:
        self._data().get(user_id, {}).pop(session_id, None)

    async def list_sessions(self, user_id: str) -> list[Session]:
        return [Session(id=s.id, user_id=s.user_id)
                for s in self._data().get(user_id, {}).values()]

    async def append_message(self, session: Session, message: MessageInput) -> None:
        messages = as_messages(message)
        sessions = self._data().setdefault(session.user_id, {})
        stored = sessions.setdefault(session.id, Session(id=session.id, user_id=session.user_id))
        stored.messages.extend(m.model_copy(deep=True) for m in messages)
        session.messages.extend(messages)
