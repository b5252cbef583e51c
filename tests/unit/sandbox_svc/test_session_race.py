"""Two managers sharing one registry never bind one sandbox twice nor give a session two.

Each manager has its own in-process session locks, so only the registry's atomic
bind keeps them correct. The backends are fakes whose starts take a moment, so
acquires of one session overlap across the managers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sandbox_fakes import FakeBackend, ManagerFactory, wait_for_pool

from sandbox_svc.manager import SandboxManager
from sandbox_svc.registry import Registry, SandboxRecord
from sandbox_svc.registry_memory import MemoryRegistry
from sandbox_svc.registry_sqlite import SqliteRegistry

SESSIONS = 12
ACQUIRES_PER_SESSION = 4


def _memory(tmp_path: Path) -> tuple[Registry, Registry]:
    registry = MemoryRegistry()
    return registry, registry


def _sqlite_file(tmp_path: Path) -> tuple[Registry, Registry]:
    # Each manager opens the file itself, as two processes would.
    return SqliteRegistry(tmp_path / "r.db"), SqliteRegistry(tmp_path / "r.db")


SHARED: dict[str, Callable[[Path], tuple[Registry, Registry]]] = {
    "memory": _memory, "sqlite-file": _sqlite_file}


@pytest.fixture(params=sorted(SHARED))
async def shared(request: pytest.FixtureRequest,
                 tmp_path: Path) -> AsyncIterator[tuple[Registry, Registry]]:
    """Two handles on one registry."""
    registries = SHARED[request.param](tmp_path)
    yield registries
    for registry in registries:
        await registry.close()


async def _two_managers(managers: ManagerFactory, shared: tuple[Registry, Registry], *,
                        pool: int = 0) -> tuple[SandboxManager, SandboxManager,
                                                list[FakeBackend]]:
    backends = [FakeBackend(start_delay_s=0.002) for _ in range(2)]
    first = await managers(backend=backends[0], registry=shared[0], pool=pool,
                           max_sandboxes=64)
    second = await managers(backend=backends[1], registry=shared[1], max_sandboxes=64)
    return first, second, backends


def _check_bindings(results: list[tuple[SandboxRecord, bool, bool]],
                    records: list[SandboxRecord]) -> None:
    by_session: dict[str, set[str]] = {}
    for record, _, _ in results:
        by_session.setdefault(record.session_id, set()).add(record.sandbox_id)
    assert all(len(ids) == 1 for ids in by_session.values()), by_session
    ids = [next(iter(ids)) for ids in by_session.values()]
    assert len(set(ids)) == len(ids)  # no sandbox serves two sessions
    bound = [r for r in records if not r.pooled]
    assert sorted(r.sandbox_id for r in bound) == sorted(ids)
    assert all(r.session_id and by_session[r.session_id] == {r.sandbox_id} for r in bound)


async def test_racing_acquires_of_the_same_sessions_get_one_sandbox_each(
        shared: tuple[Registry, Registry], managers: ManagerFactory) -> None:
    first, second, backends = await _two_managers(managers, shared)
    calls = [(first if n % 2 else second).acquire("acme", "u", f"s{i}", "base")
             for i in range(SESSIONS) for n in range(ACQUIRES_PER_SESSION)]
    results = await asyncio.gather(*calls)
    _check_bindings(results, await shared[0].all())
    assert sum(newly for _, newly, _ in results) == SESSIONS
    started = set(backends[0].sandboxes) | set(backends[1].sandboxes)
    assert len(started) == SESSIONS  # a loser of the bind never started a sandbox
    assert sum(b.starts for b in backends) == SESSIONS


async def test_racing_acquires_never_hand_one_pooled_sandbox_to_two_sessions(
        shared: tuple[Registry, Registry], managers: ManagerFactory) -> None:
    first, second, _ = await _two_managers(managers, shared, pool=6)
    await wait_for_pool(first, ready=6)
    calls = [(first if n % 2 else second).acquire("acme", "u", f"s{i}", "base")
             for i in range(SESSIONS) for n in range(2)]
    results = await asyncio.gather(*calls)
    _check_bindings(results, await shared[0].all())
    assert sum(hit for _, _, hit in results) >= 6


async def test_racing_creates_never_hand_one_pooled_sandbox_out_twice(
        shared: tuple[Registry, Registry], managers: ManagerFactory) -> None:
    first, second, backends = await _two_managers(managers, shared, pool=4)
    await wait_for_pool(first, ready=4)
    pooled = {r.sandbox_id for r in await shared[0].all()}
    await first.stop(delete_all=False)  # no refill: the pool holds exactly these four
    calls = [(first if i % 2 else second).create("acme", "base") for i in range(8)]
    created = await asyncio.gather(*calls)
    ids = [r.sandbox_id for r in created]
    assert len(set(ids)) == 8  # nobody got a sandbox someone else got
    assert set(ids) & pooled == pooled  # the whole pool was handed out
    assert sum(r.sandbox_id in pooled for r in created) == 4
    assert sum(b.starts for b in backends) == 4 + 4  # the pool's, then only the misses
