"""The memory service contract, on every backend."""

from __future__ import annotations

import pytest

from agent_svc.errors import InvalidRequestError
from agent_svc.protocol import Message, TextContent
from agent_svc.services import MemoryService


def _say(text: str) -> Message:
    return Message(role="user", content=[TextContent(text=text)])


async def test_search_ranks_by_shared_words_then_recency(memory_service: MemoryService) -> None:
    await memory_service.add_memory("u", [_say("I live in Hangzhou"),
                                          _say("my cat is called Tofu"),
                                          _say("Tofu the cat likes Hangzhou tea")], "s1")
    found = await memory_service.search_memory("u", [_say("what is my cat called?")])
    assert [m.text() for m in found] == ["my cat is called Tofu",
                                         "Tofu the cat likes Hangzhou tea"]
    top = await memory_service.search_memory("u", [_say("Hangzhou")], {"top_k": 1})
    assert [m.text() for m in top] == ["Tofu the cat likes Hangzhou tea"]
    assert await memory_service.search_memory("u", [_say("nothing shared")]) == []
    assert await memory_service.search_memory("someone-else", [_say("cat")]) == []
    assert await memory_service.search_memory("u", []) == []


async def test_listing_pages_in_the_order_memories_were_added(
        memory_service: MemoryService) -> None:
    await memory_service.add_memory("u", [_say(f"note {i}") for i in range(5)])
    first = await memory_service.list_memory("u", {"page_num": 1, "page_size": 2})
    last = await memory_service.list_memory("u", {"page_num": 3, "page_size": 2})
    assert [m.text() for m in first] == ["note 0", "note 1"]
    assert [m.text() for m in last] == ["note 4"]
    assert len(await memory_service.list_memory("u")) == 5


async def test_deleting_a_session_keeps_the_others_and_deleting_all_empties(
        memory_service: MemoryService) -> None:
    await memory_service.add_memory("u", [_say("from one")], "one")
    await memory_service.add_memory("u", [_say("from two")], "two")
    await memory_service.add_memory("u", [_say("no session")])
    await memory_service.delete_memory("u", "one")
    assert [m.text() for m in await memory_service.list_memory("u")] == [
        "from two", "no session"]
    await memory_service.delete_memory("u")
    assert await memory_service.list_memory("u") == []


async def test_bad_filters_say_what_is_allowed(memory_service: MemoryService) -> None:
    with pytest.raises(InvalidRequestError, match="top_k must be a positive integer"):
        await memory_service.search_memory("u", [_say("x")], {"top_k": 0})
    with pytest.raises(InvalidRequestError, match="page_size"):
        await memory_service.list_memory("u", {"page_size": "ten"})
