"""Conversation stores: in memory, and over an AgentScope-style session history service."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent_svc.protocol import Message, Role, TextContent
from agent_svc.react import InMemoryConversationHistory, SessionHistoryAdapter


def _text(text: str) -> Message:
    return Message(role=Role.USER, content=[TextContent(text=text)])


@dataclass
class FakeSession:
    id: str
    user_id: str
    messages: list[Message] = field(default_factory=list)


class FakeSessionService:
    """Implements the adapter's SessionService like agent_svc's session history services."""

    def __init__(self) -> None:
        self.sessions: dict[tuple[str, str], FakeSession] = {}

    async def get_session(self, user_id: str, session_id: str) -> FakeSession | None:
        stored = self.sessions.get((user_id, session_id))
        return FakeSession(stored.id, stored.user_id, list(stored.messages)) if stored else None

    async def create_session(self, user_id: str, session_id: str | None = None) -> FakeSession:
        key = (user_id, session_id or "generated")
        return self.sessions.setdefault(key, FakeSession(key[1], user_id))

    async def append_message(self, session: FakeSession, message: list[Message]) -> None:
        stored = self.sessions.setdefault((session.user_id, session.id), session)
        if stored is not session:
            stored.messages.extend(message)
        session.messages.extend(message)


async def test_the_adapter_reads_and_appends_through_the_session_service() -> None:
    service = FakeSessionService()
    history = SessionHistoryAdapter(service)
    assert await history.get_messages("u", "s") == []
    await history.append_messages("u", "s", [_text("one")])
    await history.append_messages("u", "s", [_text("two"), _text("three")])
    assert [m.text() for m in await history.get_messages("u", "s")] == ["one", "two", "three"]
    assert await history.get_messages("other", "s") == []


async def test_in_memory_sessions_are_separate_per_user_and_copies_are_handed_out() -> None:
    history = InMemoryConversationHistory()
    await history.append_messages("u", "s", [_text("mine")])
    read = await history.get_messages("u", "s")
    read[0].content = []
    assert [m.text() for m in await history.get_messages("u", "s")] == ["mine"]
    assert await history.get_messages("v", "s") == []
