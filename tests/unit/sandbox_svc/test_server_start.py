"""Starting and stopping a SandboxService never destroys another instance's work.

The state dir's lock keeps a second instance out before it touches anything; a
start that fails (a busy port) deletes nothing; a stop deletes only the
sandboxes its own instance started or adopted.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox_fakes import FakeBackend, ManagerFactory, wait_for_pool

from sandbox_svc.errors import StateDirInUseError
from sandbox_svc.registry_memory import MemoryRegistry
from sandbox_svc.server import build_server
from sandbox_svc.settings import SandboxServiceSettings
from sandgate.service.assembly import ListenError


def _settings(state: Path, **overrides: object) -> SandboxServiceSettings:
    values: dict[str, object] = dict(
        host="127.0.0.1", port=0, state_dir=state, pool_size=0, api_keys="",
        bearer_token="", reap_interval_s=3600.0, auto_cleanup=True)
    values.update(overrides)
    return SandboxServiceSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        yield int(squatter.getsockname()[1])


async def _left_behind(state: Path, backend: FakeBackend) -> str:
    """A sandbox a previous instance (stopped without cleanup) left to adopt."""
    first = await build_server(_settings(state, auto_cleanup=False), backend=backend)
    record = await first.manager.create("default", "base")
    await first.stop(grace=0)
    assert record.sandbox_id in backend.sandboxes
    return record.sandbox_id


async def test_a_second_server_on_the_same_state_dir_refuses_before_touching_anything(
        tmp_path: Path) -> None:
    backend, other = FakeBackend(), FakeBackend()
    first = await build_server(_settings(tmp_path), backend=backend)
    try:
        record = await first.manager.create("default", "base")
        with pytest.raises(StateDirInUseError) as refused:
            await build_server(_settings(tmp_path), backend=other)
        assert refused.value.pid == os.getpid()
        assert (other.starts, other.closed) == (0, False)  # never looked at
        assert set(backend.sandboxes) == {record.sandbox_id}
        assert [r.sandbox_id for r in await first.registry.all()] == [record.sandbox_id]
    finally:
        await first.stop(grace=0)
    assert backend.sandboxes == {}  # the first one's own stop still cleans up


@pytest.mark.parametrize("busy", ["port", "metrics_port"])
async def test_a_start_that_fails_on_a_busy_port_deletes_nothing_and_releases_the_lock(
        tmp_path: Path, busy_port: int, busy: str) -> None:
    backend = FakeBackend()
    left = await _left_behind(tmp_path, backend)
    with pytest.raises(ListenError, match=str(busy_port)):
        await build_server(_settings(tmp_path, **{busy: busy_port}), backend=backend)
    assert set(backend.sandboxes) == {left}
    again = await build_server(_settings(tmp_path), backend=backend)  # the lock is free
    try:
        assert (await again.manager.get("default", left)).sandbox_id == left  # adopted
    finally:
        await again.stop(grace=0)
    assert backend.sandboxes == {}


async def test_an_aborted_start_keeps_adopted_sandboxes_and_deletes_only_its_own(
        tmp_path: Path) -> None:
    backend = FakeBackend()
    left = await _left_behind(tmp_path, backend)
    running = await build_server(_settings(tmp_path, pool_size=1), backend=backend)
    await wait_for_pool(running.manager, 1)
    # Other templates' pools may fill too: this instance's own base sandbox is the one.
    (pooled,) = {sid for sid, s in backend.sandboxes.items() if s.template == "base"} - {left}
    await running.abort(grace=0)
    assert set(backend.sandboxes) == {left}
    assert pooled not in backend.sandboxes


async def test_a_stop_deletes_only_its_own_sandboxes_from_a_shared_registry(
        managers: ManagerFactory, backend: FakeBackend, registry: MemoryRegistry) -> None:
    first, second = await managers(), await managers()
    mine = await first.create("acme", "base")
    theirs = await second.create("acme", "base")
    await first.stop(delete_all=True)
    assert [r.sandbox_id for r in await registry.all()] == [theirs.sandbox_id]
    assert set(backend.sandboxes) == {theirs.sandbox_id} != {mine.sandbox_id}
