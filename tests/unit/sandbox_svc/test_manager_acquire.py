"""Acquire: one sandbox per session key, from the pool when it can."""

from __future__ import annotations

import pytest
from sandbox_fakes import FakeBackend, FakeClock, ManagerFactory, wait_for_pool

from sandbox_svc.errors import BackendError, InvalidRequestError, TemplateNotFoundError
from sandbox_svc.manager import SandboxManager
from sandbox_svc.registry import SandboxStatus
from sandbox_svc.registry_memory import MemoryRegistry


def _acquires(manager: SandboxManager, pool: str) -> float:
    value = manager.metrics.registry.get_sample_value(
        "sandgate_acquire_seconds_count", {"template": "base", "pool": pool})
    return value or 0.0


async def test_acquire_returns_the_same_sandbox_for_the_same_session_key(
        manager: SandboxManager) -> None:
    first, newly, _ = await manager.acquire("acme", "u1", "s1", "base")
    again, newly_again, hit_again = await manager.acquire("acme", "u1", "s1", "base")
    assert newly and not newly_again and not hit_again
    assert again.sandbox_id == first.sandbox_id and again.token == first.token
    assert again.target == f"fake://{first.sandbox_id}"


async def test_each_part_of_the_session_key_gets_its_own_sandbox(
        manager: SandboxManager) -> None:
    keys = [("acme", "u1", "s1", "base"), ("globex", "u1", "s1", "base"),
            ("acme", "u2", "s1", "base"), ("acme", "u1", "s2", "base"),
            ("acme", "u1", "s1", "filesystem")]
    ids = {(await manager.acquire(*key))[0].sandbox_id for key in keys}
    assert len(ids) == len(keys)


async def test_a_warm_pool_answers_a_hit_and_an_empty_one_a_miss(
        managers: ManagerFactory, registry: MemoryRegistry) -> None:
    manager = await managers(pool=1)
    await wait_for_pool(manager, ready=1)
    (pooled,) = [r for r in await registry.all() if r.pooled]
    record, newly, hit = await manager.acquire("acme", "u", "s1", "base")
    assert (record.sandbox_id, newly, hit) == (pooled.sandbox_id, True, True)
    assert (record.tenant, record.session_id) == ("acme", "s1")
    _, newly, hit = await manager.acquire("acme", "u", "s2", "filesystem")  # no pool
    assert newly and not hit
    assert _acquires(manager, "hit") == 1


async def test_a_miss_starts_a_sandbox_bound_to_the_session(
        manager: SandboxManager, backend: FakeBackend, clock: FakeClock) -> None:
    record, newly, hit = await manager.acquire("acme", "u", "s1", "base", ttl_s=60)
    assert newly and not hit and _acquires(manager, "miss") == 1
    assert record.status is SandboxStatus.READY and record.expires_at == clock.now + 60
    assert backend.running() == {record.sandbox_id}
    assert backend.sandboxes[record.sandbox_id].token == record.token


async def test_acquiring_again_refreshes_activity_and_extends_the_expiry(
        manager: SandboxManager, clock: FakeClock) -> None:
    first, _, _ = await manager.acquire("acme", "u", "s1", "base", ttl_s=60)
    clock.advance(30)
    again, _, _ = await manager.acquire("acme", "u", "s1", "base", ttl_s=600)
    assert again.last_active_at == clock.now and again.expires_at == clock.now + 600
    clock.advance(1)
    shorter, _, _ = await manager.acquire("acme", "u", "s1", "base", ttl_s=1)
    assert shorter.expires_at == again.expires_at  # a shorter ttl never cuts it


async def test_acquiring_a_paused_sessions_sandbox_resumes_it(
        manager: SandboxManager, backend: FakeBackend) -> None:
    record, _, _ = await manager.acquire("acme", "u", "s1", "base")
    await manager.pause("acme", record.sandbox_id)
    again, _, _ = await manager.acquire("acme", "u", "s1", "base")
    assert again.status is SandboxStatus.READY
    assert not backend.sandboxes[record.sandbox_id].paused


async def test_acquire_refuses_a_missing_session_an_unknown_template_and_a_bad_ttl(
        manager: SandboxManager) -> None:
    with pytest.raises(InvalidRequestError):
        await manager.acquire("acme", "u", "", "base")
    with pytest.raises(TemplateNotFoundError) as caught:
        await manager.acquire("acme", "u", "s1", "nope")
    assert caught.value.known == ["base", "filesystem"]
    with pytest.raises(InvalidRequestError):
        await manager.acquire("acme", "u", "s1", "base", ttl_s=-5)


async def test_a_failed_start_leaves_no_record_and_no_sandbox(
        manager: SandboxManager, backend: FakeBackend, registry: MemoryRegistry) -> None:
    backend.fail_starts = 1
    with pytest.raises(BackendError):
        await manager.acquire("acme", "u", "s1", "base")
    assert await registry.all() == [] and backend.sandboxes == {}
    record, newly, _ = await manager.acquire("acme", "u", "s1", "base")  # the session is free
    assert newly and await registry.all() == [record]
