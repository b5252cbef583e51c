"""The state service contract, on every backend."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent_svc.errors import ServiceNotStartedError
from agent_svc.services import InMemoryStateService, SQLiteStateService, StateService


async def test_rounds_are_numbered_from_one_and_the_latest_is_exported(
        state_service: StateService) -> None:
    assert await state_service.save_state("u", {"step": 1}) == 1
    assert await state_service.save_state("u", {"step": 2}) == 2
    assert await state_service.export_state("u") == {"step": 2}
    assert await state_service.export_state("u", round_id=1) == {"step": 1}
    assert await state_service.list_rounds("u") == [1, 2]


async def test_an_explicit_round_is_overwritten_and_new_rounds_follow_the_highest(
        state_service: StateService) -> None:
    assert await state_service.save_state("u", {"a": 1}, session_id="s", round_id=7) == 7
    assert await state_service.save_state("u", {"a": 2}, session_id="s", round_id=7) == 7
    assert await state_service.save_state("u", {"a": 3}, session_id="s") == 8
    assert await state_service.export_state("u", "s", 7) == {"a": 2}
    assert await state_service.list_rounds("u", "s") == [7, 8]


async def test_users_and_sessions_are_separate_and_missing_state_is_none(
        state_service: StateService) -> None:
    await state_service.save_state("u1", {"x": 1}, session_id="s")
    assert await state_service.export_state("u2", session_id="s") is None
    assert await state_service.export_state("u1", session_id="other") is None
    assert await state_service.export_state("u1", session_id="s", round_id=9) is None
    await state_service.delete_state("u1", "s")
    assert await state_service.export_state("u1", session_id="s") is None


async def test_concurrent_saves_never_share_a_round(state_service: StateService) -> None:
    rounds = await asyncio.gather(*(state_service.save_state("u", {"i": i}) for i in range(8)))
    assert sorted(rounds) == list(range(1, 9))


async def test_a_saved_state_is_a_copy(state_service: StateService) -> None:
    state = {"items": [1]}
    await state_service.save_state("u", state)
    state["items"].append(2)
    assert await state_service.export_state("u") == {"items": [1]}


async def test_sqlite_state_survives_a_restart(tmp_path: Path) -> None:
    async with SQLiteStateService(tmp_path / "a.db") as first:
        await first.save_state("u", {"kept": True}, session_id="s")
    async with SQLiteStateService(tmp_path / "a.db") as second:
        assert await second.export_state("u", "s") == {"kept": True}


async def test_a_service_used_before_start_says_so() -> None:
    with pytest.raises(ServiceNotStartedError):
        await InMemoryStateService().save_state("u", {})
