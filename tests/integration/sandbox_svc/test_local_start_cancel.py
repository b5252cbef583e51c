"""A start cancelled at any moment leaves no process, cgroup or directory behind.

The launch runs in a thread that a cancelled ``await`` does not stop; the clean-up
must wait for it, or the launcher joins its cgroup after the clean-up emptied it.
Both ways sandboxd comes in: forked from the zygote, and started afresh by bwrap.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox_svc.backend import StartSpec
from sandbox_svc.local.backend import LocalBackend
from sandbox_svc.templates import Template

from .conftest import opened_backend

UID_BASE = 232_000
DELAYS_S = (0.0, 0.001, 0.002, 0.004, 0.008, 0.016, 0.03, 0.06, 0.12)


@pytest.fixture(params=[True, False], ids=["zygote", "fresh"])
async def backend(state_dir: Path, request: pytest.FixtureRequest,
                  ) -> AsyncIterator[LocalBackend]:
    async with opened_backend(state_dir, uid_base=UID_BASE, uid_count=1,
                              zygote=request.param) as opened:
        yield opened


def _processes_of(uid: int) -> list[str]:
    """Live processes of ``uid``, and zombies we should have reaped (our own children).

    A zombie handed to init is init's to reap: that is not a leak of ours.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            stat = (entry / "stat").read_text()
        except FileNotFoundError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if state != "Z" or int(ppid) == os.getpid():
            found.append(stat[:60])
    return found


@pytest.mark.parametrize("delay_s", DELAYS_S)
async def test_a_start_cancelled_after_any_delay_leaves_nothing(
        backend: LocalBackend, delay_s: float) -> None:
    sandbox_id = f"sbx-cancel{int(delay_s * 1000)}"
    start = asyncio.create_task(backend.start(StartSpec(sandbox_id, Template("base"), "t")))
    await asyncio.sleep(delay_s)
    if start.done():  # a zygote start can beat the longest delays: then delete it
        await start
        await backend.destroy(sandbox_id)
    else:
        start.cancel()
        with pytest.raises(asyncio.CancelledError):
            await start
    assert await backend.leftovers() == set()
    assert _processes_of(UID_BASE) == [], "a process outlived its cancelled start"
