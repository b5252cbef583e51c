"""The local backend gives every sandbox its own host uid, from the workspace owners."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox_svc.backend import StartSpec
from sandbox_svc.errors import SandboxLimitError
from sandbox_svc.local.backend import LocalBackend
from sandbox_svc.templates import Template

from .conftest import opened_backend

UID_BASE = 231_000


@pytest.fixture
async def backend(state_dir: Path) -> AsyncIterator[LocalBackend]:
    async with opened_backend(state_dir, uid_base=UID_BASE, uid_count=2) as opened:
        yield opened


def _owner(state_dir: Path, sandbox_id: str) -> int:
    return (state_dir / "sb" / sandbox_id / "workspace").stat().st_uid


async def test_sandboxes_run_as_distinct_host_uids_until_the_range_is_used_up(
        backend: LocalBackend, state_dir: Path) -> None:
    base = Template("base")
    await asyncio.gather(*(backend.start(StartSpec(f"sbx-u{i}", base, "t")) for i in (1, 2)))
    assert {_owner(state_dir, "sbx-u1"), _owner(state_dir, "sbx-u2")} == {UID_BASE, UID_BASE + 1}
    with pytest.raises(SandboxLimitError):
        await backend.start(StartSpec("sbx-u3", base, "t"))
    assert "sbx-u3" not in await backend.leftovers()


async def test_a_restarted_backend_reuses_only_the_uids_freed(
        backend: LocalBackend, state_dir: Path) -> None:
    base = Template("base")
    await backend.start(StartSpec("sbx-u1", base, "t"))
    await backend.start(StartSpec("sbx-u2", base, "t"))
    freed = _owner(state_dir, "sbx-u1")
    await backend.destroy("sbx-u1")
    restarted = await asyncio.to_thread(LocalBackend.for_host, state_dir, uid_base=UID_BASE,
                                        uid_count=2)
    await restarted.start(StartSpec("sbx-u3", base, "t"))
    assert _owner(state_dir, "sbx-u3") == freed != _owner(state_dir, "sbx-u2")
    await restarted.destroy("sbx-u3")
    await restarted.close()
