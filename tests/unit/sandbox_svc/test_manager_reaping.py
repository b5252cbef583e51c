"""The reaper deletes expired, idle and dead sandboxes, judged by an injected clock."""

from __future__ import annotations

from sandbox_fakes import FakeBackend, FakeClock, ManagerFactory, wait_for_pool

from sandbox_svc.errors import BackendError
from sandbox_svc.manager import SandboxManager
from sandbox_svc.registry_memory import MemoryRegistry


async def test_a_sandbox_past_its_ttl_is_reaped(
        manager: SandboxManager, backend: FakeBackend, clock: FakeClock) -> None:
    record = await manager.create("acme", "base", ttl_s=60)
    assert await manager.reap_once(clock.now + 59) == []
    assert await manager.reap_once(clock.now + 61) == [record.sandbox_id]
    assert backend.sandboxes == {}


async def test_renewing_pushes_the_expiry_back(
        manager: SandboxManager, clock: FakeClock) -> None:
    record = await manager.create("acme", "base", ttl_s=60)
    clock.advance(50)
    await manager.renew("acme", record.sandbox_id, 60)
    assert await manager.reap_once(clock.now + 59) == []


async def test_a_bound_sandbox_idle_past_its_templates_timeout_is_reaped(
        manager: SandboxManager, clock: FakeClock) -> None:
    record, _, _ = await manager.acquire("acme", "u", "s1", "base", ttl_s=86400)
    assert await manager.reap_once(clock.now + 899) == []  # base: idle_timeout_s=900
    clock.advance(800)
    await manager.acquire("acme", "u", "s1", "base")  # activity
    assert await manager.reap_once(clock.now + 899) == []
    assert await manager.reap_once(clock.now + 901) == [record.sandbox_id]


async def test_pooled_sandboxes_are_never_idle(
        managers: ManagerFactory, clock: FakeClock, registry: MemoryRegistry) -> None:
    manager = await managers(pool=1)
    await wait_for_pool(manager, ready=1)
    assert await manager.reap_once(clock.now + 10 * 86400) == []
    assert len(await registry.all()) == 1


async def test_a_sandbox_whose_processes_died_is_reaped(
        manager: SandboxManager, backend: FakeBackend, registry: MemoryRegistry) -> None:
    dead = await manager.create("acme", "base")
    kept = await manager.create("acme", "base")
    backend.kill(dead.sandbox_id)
    assert await manager.reap_once() == [dead.sandbox_id]
    assert [r.sandbox_id for r in await registry.all()] == [kept.sandbox_id]
    assert dead.sandbox_id not in backend.sandboxes


class _BlindBackend(FakeBackend):
    """A fake whose liveness check fails, as an unreachable API server would."""

    async def alive(self, sandbox_id: str) -> bool:
        raise BackendError("cannot reach the API server")


async def test_a_sandbox_the_backend_cannot_see_is_not_taken_for_dead(
        managers: ManagerFactory, clock: FakeClock) -> None:
    blind = _BlindBackend()
    manager = await managers(backend=blind)
    record = await manager.create("acme", "base", ttl_s=60)
    assert await manager.reap_once() == []
    assert await manager.reap_once(clock.now + 61) == [record.sandbox_id]  # expiry still counts
