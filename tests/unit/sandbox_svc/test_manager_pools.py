"""Warm pools fill and refill; max_sandboxes evicts pooled sandboxes, then refuses."""

from __future__ import annotations

import asyncio

import anyio
import pytest
from sandbox_fakes import FakeBackend, ManagerFactory, catalog, wait_for_pool

from sandbox_svc.errors import SandboxLimitError
from sandbox_svc.manager import Limits, SandboxManager
from sandbox_svc.registry import SandboxStatus
from sandbox_svc.registry_memory import MemoryRegistry


async def test_a_pool_fills_to_its_size_and_refills_after_a_claim(
        managers: ManagerFactory, registry: MemoryRegistry) -> None:
    manager = await managers(pool=2)
    await wait_for_pool(manager, ready=2)
    before = {r.sandbox_id for r in await registry.all()}
    record, _, hit = await manager.acquire("acme", "u", "s1", "base")
    assert hit and record.sandbox_id in before
    await wait_for_pool(manager, ready=2)
    records = await registry.all()
    assert len(records) == 3 and sum(r.pooled for r in records) == 2
    (view,) = await manager.pool_status("base")
    assert (view.target_size, view.ready, view.starting) == (2, 2, 0)


async def test_a_pool_refills_after_a_pooled_sandbox_dies(
        managers: ManagerFactory, backend: FakeBackend) -> None:
    manager = await managers(pool=1)
    await wait_for_pool(manager, ready=1)
    (dead,) = backend.running()
    backend.kill(dead)
    assert await manager.reap_once() == [dead]
    await wait_for_pool(manager, ready=1)
    assert dead not in backend.sandboxes and len(backend.running()) == 1


async def test_max_sandboxes_evicts_pooled_sandboxes_then_refuses(
        managers: ManagerFactory, registry: MemoryRegistry) -> None:
    manager = await managers(pool=2, max_sandboxes=2)
    await wait_for_pool(manager, ready=2)
    first = await manager.create("acme", "filesystem")
    second = await manager.create("acme", "filesystem")
    records = await registry.all()
    assert {r.sandbox_id for r in records} == {first.sandbox_id, second.sandbox_id}
    with pytest.raises(SandboxLimitError):
        await manager.create("acme", "filesystem")
    with pytest.raises(SandboxLimitError):
        await manager.acquire("acme", "u", "s1", "filesystem")
    await manager.delete("acme", first.sandbox_id)
    await wait_for_pool(manager, ready=1)  # the pool takes the freed room back


async def test_a_pool_fills_only_as_far_as_max_sandboxes_leaves_room(
        managers: ManagerFactory, backend: FakeBackend) -> None:
    manager = await managers(pool=1, max_sandboxes=1)
    await wait_for_pool(manager, ready=1)
    record = await manager.create("acme", "filesystem")  # evicts the pooled one
    await manager.fill_pools()
    assert backend.running() == {record.sandbox_id}
    (view,) = await manager.pool_status("base")
    assert (view.ready, view.starting) == (0, 0)


async def test_a_full_backend_answers_a_limit_error_and_keeps_nothing(
        manager: SandboxManager, backend: FakeBackend, registry: MemoryRegistry) -> None:
    backend.capacity = 1
    await manager.create("acme", "base")
    with pytest.raises(SandboxLimitError):
        await manager.acquire("acme", "u", "s1", "base")
    assert len(await registry.all()) == 1
    assert all(r.status is SandboxStatus.READY for r in await registry.all())


async def test_stop_ends_a_pool_refill_whose_clean_up_fails() -> None:
    """A refill cancelled mid-start whose clean-up raises must not swallow the stop."""
    backend = FakeBackend(start_delay_s=30)
    backend.cleanup_fails = True
    manager = SandboxManager(catalog(1), MemoryRegistry(), backend,
                             Limits(max_sandboxes=4, reap_interval_s=3600))
    await manager.start()
    with anyio.fail_after(5):
        while backend.starts == 0:
            await anyio.sleep(0.01)
        await manager.stop(delete_all=False)
    assert [t for t in asyncio.all_tasks() if t.get_name() == "sandgate-pool"] == []


async def test_managers_sharing_a_registry_fill_one_pool_to_its_size_not_beyond() -> None:
    """Each counts the pool again before every start, so neither starts what the other has."""
    registry = MemoryRegistry()
    managers = [SandboxManager(catalog(2), registry, FakeBackend(start_delay_s=0.05),
                               Limits(max_sandboxes=8, reap_interval_s=3600)) for _ in range(2)]
    with anyio.fail_after(5):
        await asyncio.gather(*(m.fill_pools() for m in managers))
    (view,) = await managers[0].pool_status("base")
    assert (view.ready, view.starting) == (2, 0)
