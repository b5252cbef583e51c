"""Each service over its three backends: in-memory, SQLite (a temp file), Redis (a real server)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from agent_svc.services import (
    InMemoryMemoryService,
    InMemorySessionHistoryService,
    InMemoryStateService,
    MemoryService,
    Service,
    SessionHistoryService,
    SQLiteMemoryService,
    SQLiteSessionHistoryService,
    SQLiteStateService,
    StateService,
)
from agent_svc.services.redis_backend import (
    RedisMemoryService,
    RedisSessionHistoryService,
    RedisStateService,
)

BACKENDS = ["memory", "sqlite", "redis"]
S = TypeVar("S", bound=Service)


def _make(kind: str, request: pytest.FixtureRequest, tmp_path: Path,
          memory: Callable[[], S], sqlite: Callable[[Path], S], redis: Callable[[str], S]) -> S:
    if kind == "memory":
        return memory()
    if kind == "sqlite":
        return sqlite(tmp_path / "agent.db")
    return redis(request.getfixturevalue("redis_url"))


@pytest.fixture(params=BACKENDS)
async def state_service(request: pytest.FixtureRequest, tmp_path: Path
                        ) -> AsyncIterator[StateService]:
    service: StateService = _make(request.param, request, tmp_path, InMemoryStateService,
                                  SQLiteStateService, RedisStateService)
    async with service:
        yield service


@pytest.fixture(params=BACKENDS)
async def session_service(request: pytest.FixtureRequest, tmp_path: Path
                          ) -> AsyncIterator[SessionHistoryService]:
    service: SessionHistoryService = _make(
        request.param, request, tmp_path, InMemorySessionHistoryService,
        SQLiteSessionHistoryService, RedisSessionHistoryService)
    async with service:
        yield service


@pytest.fixture(params=BACKENDS)
async def memory_service(request: pytest.FixtureRequest, tmp_path: Path
                         ) -> AsyncIterator[MemoryService]:
    service: MemoryService = _make(request.param, request, tmp_path, InMemoryMemoryService,
                                   SQLiteMemoryService, RedisMemoryService)
    async with service:
        yield service
