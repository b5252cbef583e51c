"""Soak: many create/delete cycles leave nothing behind on the host.

``make test`` runs 200 cycles; ``make soak`` runs 1000 (``SANDGATE_SOAK_CYCLES``).
Each sandbox does some work first (a background process that outlives the
command, a file, every 50th a Python kernel), so a delete has something to
clean. The leftovers are counted from outside our code (tests/leftovers.py)
while the service still runs and again after it stopped.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from sandgate.sdk import AsyncSandbox
from tests.faults.conftest import sandbox_server
from tests.faults.services import ServiceProcess
from tests.leftovers import find_leftovers

CYCLES = int(os.environ.get("SANDGATE_SOAK_CYCLES", "200"))
CONCURRENCY = 4
WATCHDOG_S = 300 + 3 * CYCLES


@pytest.fixture
async def sandbox_svc(state_dir: Path) -> AsyncIterator[ServiceProcess]:
    service = sandbox_server(state_dir, max_sandboxes=16)
    await service.start()
    try:
        yield service
    finally:
        service.stop()


async def _cycle(target: str, number: int) -> str:
    sbx = await AsyncSandbox.create("base", target=target)
    try:
        await sbx.files.write("work.txt", f"cycle {number}")
        # Outlives the command: one in its process group, one detached from it.
        result = await sbx.commands.run(
            "sleep 600 >/dev/null 2>&1 & setsid sleep 600 >/dev/null 2>&1 & cat work.txt")
        assert result.stdout == f"cycle {number}"
        if number % 50 == 0:
            assert (await sbx.run_code("6 * 7")).text == "42"
    finally:
        await sbx.kill()
        await sbx.close()
    return sbx.sandbox_id


async def test_create_delete_cycles_leave_no_process_cgroup_mount_dir_uid_or_row(
        sandbox_svc: ServiceProcess, state_dir: Path,
        report_line: Callable[[str], None]) -> None:
    target = sandbox_svc.address
    created: set[str] = set()
    for start in range(0, CYCLES, CONCURRENCY):
        async with asyncio.timeout(120):
            created |= set(await asyncio.gather(*(
                _cycle(target, n) for n in range(start, min(CYCLES, start + CONCURRENCY)))))
    assert len(created) == CYCLES
    running = find_leftovers(state_dir)
    report_line(f"soak: {CYCLES} create/delete cycles, leftovers while running: "
                f"{running.summary()}")
    sandbox_svc.stop()
    stopped = find_leftovers(state_dir)
    report_line(f"soak: leftovers after stop: {stopped.summary()}")
    assert running.total == 0, running
    assert stopped.total == 0, stopped
