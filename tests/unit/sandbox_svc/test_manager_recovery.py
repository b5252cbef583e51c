"""A restarted manager re-adopts what lives, reaps what died, removes what nobody knows."""

from __future__ import annotations

import anyio
import pytest
from sandbox_fakes import FakeBackend, FakeClock, FakeSandbox, ManagerFactory, catalog

from sandbox_svc.errors import IsolationUnavailableError
from sandbox_svc.manager import Limits, SandboxManager
from sandbox_svc.registry import SandboxRecord, SandboxStatus
from sandbox_svc.registry_memory import MemoryRegistry


async def test_a_restart_adopts_live_sandboxes_and_reaps_the_rest(
        managers: ManagerFactory, backend: FakeBackend, registry: MemoryRegistry) -> None:
    first = await managers()
    kept = await first.create("acme", "base")
    bound, _, _ = await first.acquire("acme", "u", "s1", "base")
    paused = await first.create("acme", "base")
    await first.pause("acme", paused.sandbox_id)
    dead = await first.create("acme", "base")
    hung = await first.create("acme", "base")
    await first.stop(delete_all=False)
    assert backend.closed
    backend.kill(dead.sandbox_id)
    backend.sandboxes[hung.sandbox_id].paused = True  # alive but not answering probes
    backend.sandboxes["sbx-orphan"] = FakeSandbox("base", "t")  # no record: a leftover
    starting = SandboxRecord("sbx-starting", "base", "t", SandboxStatus.STARTING, 1.0, 1.0)
    await registry.insert(starting)  # a start the old process never finished
    backend.sandboxes[starting.sandbox_id] = FakeSandbox("base", "t")

    second = await managers()
    survivors = {kept.sandbox_id, bound.sandbox_id, paused.sandbox_id}
    assert {r.sandbox_id for r in await registry.all()} == survivors
    assert set(backend.sandboxes) == survivors
    again, newly, _ = await second.acquire("acme", "u", "s1", "base")
    assert again.sandbox_id == bound.sandbox_id and not newly
    record = await second.get("acme", paused.sandbox_id)
    assert record.status is SandboxStatus.PAUSED
    await second.resume("acme", paused.sandbox_id)


async def test_stop_with_delete_all_leaves_nothing(
        managers: ManagerFactory, backend: FakeBackend, registry: MemoryRegistry) -> None:
    manager = await managers(pool=1)
    for i in range(10):
        await manager.acquire("acme", "u", f"s{i}", "base")
    await manager.stop(delete_all=True)
    assert await registry.all() == [] and backend.sandboxes == {}


async def test_a_template_the_backend_cannot_run_stops_the_start(
        managers: ManagerFactory, backend: FakeBackend) -> None:
    backend.refused_templates = {"filesystem"}
    with pytest.raises(IsolationUnavailableError):
        await managers()


async def test_a_young_starting_record_is_left_to_its_replica_and_reaped_once_old(
        managers: ManagerFactory, backend: FakeBackend, registry: MemoryRegistry,
        clock: FakeClock) -> None:
    from sandbox_svc.upkeep import STARTING_GRACE_S

    # Another replica sharing the registry is starting this one right now.
    peer = SandboxRecord("sbx-peer", "base", "t", SandboxStatus.STARTING, clock.now, clock.now)
    await registry.insert(peer)
    backend.sandboxes[peer.sandbox_id] = FakeSandbox("base", "t")
    manager = await managers()
    assert await registry.get(peer.sandbox_id) == peer
    assert peer.sandbox_id in backend.sandboxes  # not taken for a leftover either
    assert await manager.reap_once(clock.now + 1) == []
    # That replica died: no start takes this long.
    assert await manager.reap_once(clock.now + STARTING_GRACE_S + 1) == [peer.sandbox_id]
    assert await registry.all() == [] and backend.sandboxes == {}


async def test_the_registrys_sole_user_reaps_a_young_starting_record_of_its_dead_run(
        backend: FakeBackend, registry: MemoryRegistry, clock: FakeClock) -> None:
    """With the state dir's lock held no peer can be starting it: the session it was
    started for must not wait for a start that died with the previous process."""
    dead = SandboxRecord("sbx-dead", "base", "t", SandboxStatus.STARTING, clock.now, clock.now,
                         tenant="acme", user_id="u", session_id="s1")
    await registry.insert(dead)
    backend.sandboxes[dead.sandbox_id] = FakeSandbox("base", "t")
    manager = SandboxManager(catalog(0), registry, backend,
                             Limits(reap_interval_s=3600, sole_user=True), clock=clock)
    await manager.start()
    try:
        assert await registry.all() == [] and backend.sandboxes == {}
        with anyio.fail_after(5):  # no wait for the dead start
            record, newly, _ = await manager.acquire("acme", "u", "s1", "base")
        assert newly and record.sandbox_id != dead.sandbox_id
    finally:
        await manager.stop(delete_all=True)
