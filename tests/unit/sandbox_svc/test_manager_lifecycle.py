"""Create, get, delete, release, renew, pause and resume, per tenant."""

from __future__ import annotations

import pytest
from sandbox_fakes import FakeBackend, ManagerFactory

from sandbox_svc.errors import (
    InvalidRequestError,
    PauseUnsupportedError,
    SandboxNotFoundError,
    SandboxStateError,
)
from sandbox_svc.manager import SandboxManager
from sandbox_svc.registry import SandboxStatus
from sandbox_svc.registry_memory import MemoryRegistry


async def test_another_tenants_sandbox_is_not_found(manager: SandboxManager) -> None:
    record = await manager.create("acme", "base", labels={"team": "a"})
    assert (await manager.get("acme", record.sandbox_id)).labels == {"team": "a"}
    for call in (manager.get, manager.delete, manager.pause):
        with pytest.raises(SandboxNotFoundError):
            await call("globex", record.sandbox_id)
    assert await manager.list_sandboxes("globex") == []


async def test_release_session_deletes_only_that_sessions_sandboxes(
        manager: SandboxManager, backend: FakeBackend, registry: MemoryRegistry) -> None:
    s1_base, _, _ = await manager.acquire("acme", "u", "s1", "base")
    s1_files, _, _ = await manager.acquire("acme", "u", "s1", "filesystem")
    s2, _, _ = await manager.acquire("acme", "u", "s2", "base")
    other, _, _ = await manager.acquire("globex", "u", "s1", "base")
    assert await manager.release_session("acme", "u", "s1", "filesystem") == [
        s1_files.sandbox_id]
    assert await manager.release_session("acme", "u", "s1") == [s1_base.sandbox_id]
    assert await manager.release_session("acme", "u", "s1") == []
    assert {r.sandbox_id for r in await registry.all()} == {s2.sandbox_id, other.sandbox_id}
    assert set(backend.sandboxes) == {s2.sandbox_id, other.sandbox_id}
    again, newly, _ = await manager.acquire("acme", "u", "s1", "base")
    assert newly and again.sandbox_id != s1_base.sandbox_id


async def test_release_session_needs_a_session_id(manager: SandboxManager) -> None:
    with pytest.raises(InvalidRequestError):
        await manager.release_session("acme", "u", "")


async def test_pause_and_resume_only_from_the_right_state(
        manager: SandboxManager, backend: FakeBackend) -> None:
    record = await manager.create("acme", "base")
    with pytest.raises(SandboxStateError):
        await manager.resume("acme", record.sandbox_id)
    paused = await manager.pause("acme", record.sandbox_id)
    assert paused.status is SandboxStatus.PAUSED and backend.sandboxes[record.sandbox_id].paused
    with pytest.raises(SandboxStateError):
        await manager.pause("acme", record.sandbox_id)
    resumed = await manager.resume("acme", record.sandbox_id)
    assert resumed.status is SandboxStatus.READY
    assert not backend.sandboxes[record.sandbox_id].paused


async def test_a_backend_that_cannot_pause_refuses_with_a_state_error(
        managers: ManagerFactory) -> None:
    manager = await managers(backend=FakeBackend(can_pause=False))
    record = await manager.create("acme", "base")
    with pytest.raises(PauseUnsupportedError) as caught:
        await manager.pause("acme", record.sandbox_id)
    assert isinstance(caught.value, SandboxStateError)  # FAILED_PRECONDITION
    assert (await manager.get("acme", record.sandbox_id)).status is SandboxStatus.READY


async def test_a_sandbox_deleted_meanwhile_cannot_be_renewed(
        manager: SandboxManager, registry: MemoryRegistry) -> None:
    record = await manager.create("acme", "base")
    await registry.remove(record.sandbox_id)
    with pytest.raises(SandboxNotFoundError):
        await manager.renew("acme", record.sandbox_id, 60)


async def test_renew_refuses_a_ttl_out_of_range(manager: SandboxManager) -> None:
    record = await manager.create("acme", "base")
    with pytest.raises(InvalidRequestError):
        await manager.renew("acme", record.sandbox_id, 31 * 86400)
