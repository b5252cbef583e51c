"""Fixtures for manager tests: managers on a fake backend, an in-memory registry, a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sandbox_fakes import FakeBackend, FakeClock, ManagerFactory, catalog

from sandbox_svc.manager import Limits, SandboxManager
from sandbox_svc.registry import Registry
from sandbox_svc.registry_memory import MemoryRegistry


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def registry() -> MemoryRegistry:
    return MemoryRegistry()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def managers(backend: FakeBackend, registry: MemoryRegistry,
                   clock: FakeClock) -> AsyncIterator[ManagerFactory]:
    """Starts managers (the fixtures' backend, registry and clock unless given); stops them."""
    started: list[SandboxManager] = []

    async def make(*, backend: FakeBackend | None = backend, registry: Registry | None = registry,
                   pool: int = 0, max_sandboxes: int = 16) -> SandboxManager:
        assert backend is not None and registry is not None
        manager = SandboxManager(catalog(pool), registry, backend,
                                 Limits(max_sandboxes=max_sandboxes, reap_interval_s=3600),
                                 clock=clock)
        await manager.start()
        started.append(manager)
        return manager

    yield make
    for manager in started:
        await manager.stop(delete_all=False)


@pytest.fixture
async def manager(managers: ManagerFactory) -> SandboxManager:
    """One started manager without warm pools."""
    return await managers()
