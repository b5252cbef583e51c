"""CreateSandbox takes a ready sandbox from the warm pool and starts one only on a miss."""

from __future__ import annotations

import asyncio

from sandbox_fakes import FakeBackend, FakeClock, ManagerFactory, wait_for_pool

from sandbox_svc.events import EventType
from sandbox_svc.manager import SandboxManager
from sandbox_svc.registry_memory import MemoryRegistry


async def test_create_hands_out_a_pooled_sandbox_with_the_requests_ttl_and_labels(
        managers: ManagerFactory, backend: FakeBackend, registry: MemoryRegistry,
        clock: FakeClock) -> None:
    manager = await managers(pool=1)
    await wait_for_pool(manager, ready=1)
    (pooled,) = await registry.all()
    starts = backend.starts
    record = await manager.create("acme", "base", ttl_s=60, labels={"team": "a"})
    assert record.sandbox_id == pooled.sandbox_id
    assert (record.tenant, record.session_id, record.labels) == ("acme", "", {"team": "a"})
    assert record.expires_at == clock.now + 60 and record.last_active_at == clock.now
    assert await registry.get(record.sandbox_id) == record
    assert backend.starts >= starts and record.sandbox_id in backend.sandboxes


async def test_the_pool_refills_after_create_takes_from_it(
        managers: ManagerFactory, registry: MemoryRegistry) -> None:
    manager = await managers(pool=2)
    await wait_for_pool(manager, ready=2)
    taken = await manager.create("acme", "base")
    await wait_for_pool(manager, ready=2)
    records = await registry.all()
    assert len(records) == 3 and sum(r.pooled for r in records) == 2
    assert not next(r for r in records if r.sandbox_id == taken.sandbox_id).pooled


async def test_create_starts_a_new_sandbox_when_the_pool_is_empty(
        managers: ManagerFactory, backend: FakeBackend, registry: MemoryRegistry) -> None:
    manager = await managers(pool=1)
    await wait_for_pool(manager, ready=1)
    (pooled,) = await registry.all()
    record = await manager.create("acme", "filesystem")  # filesystem keeps no pool
    assert record.sandbox_id != pooled.sandbox_id and record.tenant == "acme"
    assert record.sandbox_id in backend.sandboxes
    still = await registry.get(pooled.sandbox_id)
    assert still is not None and still.pooled


async def test_a_create_from_the_pool_is_announced_to_the_tenants_watchers(
        managers: ManagerFactory) -> None:
    manager = await managers(pool=1)
    await wait_for_pool(manager, ready=1)
    events = manager.watch("acme")
    pending = asyncio.ensure_future(anext(events))
    async with asyncio.timeout(5):
        await asyncio.sleep(0)  # the watcher subscribes on its first step
        record = await manager.create("acme", "base")
        kind, seen, _ = await pending
    assert (kind, seen.sandbox_id) == (EventType.CREATED, record.sandbox_id)
    await events.aclose()



async def test_a_pooled_sandbox_of_a_warm_kernel_template_starts_its_kernel_early(
        managers: ManagerFactory, backend: FakeBackend) -> None:
    manager = await managers(pool=1)
    await wait_for_pool(manager, ready=1)
    (pooled,) = backend.sandboxes.values()
    assert pooled.warm_kernel


async def test_a_sandbox_started_on_a_miss_leaves_its_kernel_to_the_first_cell(
        manager: SandboxManager, backend: FakeBackend) -> None:
    created = await manager.create("acme", "base")  # base warms kernels, but has no pool here
    acquired, _, hit = await manager.acquire("acme", "u", "s1", "base")
    assert not hit
    assert not backend.sandboxes[created.sandbox_id].warm_kernel
    assert not backend.sandboxes[acquired.sandbox_id].warm_kernel
