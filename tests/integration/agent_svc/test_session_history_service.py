"""The session history service contract, on every backend."""

from __future__ import annotations

from pathlib import Path

from agent_svc.protocol import Message, TextContent
from agent_svc.services import SessionHistoryService, SQLiteSessionHistoryService


def _say(text: str, role: str = "user") -> Message:
    return Message(role=role, content=[TextContent(text=text)])


async def test_a_created_session_is_empty_and_found_again(
        session_service: SessionHistoryService) -> None:
    session = await session_service.create_session("u", "s1")
    assert (session.id, session.user_id, session.messages) == ("s1", "u", [])
    found = await session_service.get_session("u", "s1")
    assert found is not None and found.id == "s1"
    assert await session_service.get_session("u", "nope") is None
    assert await session_service.get_session("someone-else", "s1") is None


async def test_a_session_without_an_id_gets_a_new_one(
        session_service: SessionHistoryService) -> None:
    first = await session_service.create_session("u")
    second = await session_service.create_session("u", "  ")
    assert first.id and second.id and first.id != second.id


async def test_appended_messages_come_back_in_order(
        session_service: SessionHistoryService) -> None:
    session = await session_service.create_session("u", "s")
    await session_service.append_message(session, _say("hello"))
    await session_service.append_message(session, [
        _say("hi there", "assistant"),
        {"role": "user", "content": [{"type": "text", "text": "bye"}]}])
    assert [m.text() for m in session.messages] == ["hello", "hi there", "bye"]
    stored = await session_service.get_session("u", "s")
    assert stored is not None
    assert [(m.role, m.text()) for m in stored.messages] == [
        ("user", "hello"), ("assistant", "hi there"), ("user", "bye")]


async def test_creating_an_existing_session_keeps_its_messages(
        session_service: SessionHistoryService) -> None:
    session = await session_service.create_session("u", "s")
    await session_service.append_message(session, _say("keep me"))
    again = await session_service.create_session("u", "s")
    assert [m.text() for m in again.messages] == ["keep me"]


async def test_listing_gives_sessions_in_creation_order_without_messages(
        session_service: SessionHistoryService) -> None:
    for sid in ("b", "a", "c"):
        session = await session_service.create_session("u", sid)
        await session_service.append_message(session, _say(sid))
    await session_service.create_session("other", "z")
    listed = await session_service.list_sessions("u")
    assert [s.id for s in listed] == ["b", "a", "c"]
    assert all(s.messages == [] and s.user_id == "u" for s in listed)


async def test_appending_to_an_unknown_session_creates_it(
        session_service: SessionHistoryService) -> None:
    from agent_svc.services import Session

    await session_service.append_message(Session(id="new", user_id="u"), _say("first"))
    stored = await session_service.get_session("u", "new")
    assert stored is not None and [m.text() for m in stored.messages] == ["first"]


async def test_a_deleted_session_is_gone_and_deleting_twice_is_harmless(
        session_service: SessionHistoryService) -> None:
    session = await session_service.create_session("u", "s")
    await session_service.append_message(session, _say("x"))
    await session_service.delete_session("u", "s")
    await session_service.delete_session("u", "s")
    assert await session_service.get_session("u", "s") is None
    assert await session_service.list_sessions("u") == []
    again = await session_service.create_session("u", "s")
    assert again.messages == []


async def test_sqlite_history_survives_a_restart(tmp_path: Path) -> None:
    async with SQLiteSessionHistoryService(tmp_path / "h.db") as first:
        session = await first.create_session("u", "s")
        await first.append_message(session, _say("remember"))
    async with SQLiteSessionHistoryService(tmp_path / "h.db") as second:
        stored = await second.get_session("u", "s")
    assert stored is not None and stored.messages[0].text() == "remember"
