"""One session's sandbox killed (every process of it, sandboxd included) under load."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.conftest import Deployment
from tests.faults.workload import LOST_MARK, Fleet, Outcome, Phases
from tests.integration.gateway.conftest import mcp_client
from tests.leftovers import sandbox_pids

pytestmark = pytest.mark.faults

SESSIONS = 32


def _running(state_dir: Path, sandbox_id: str, program: str) -> bool:
    for pid in sandbox_pids(state_dir, sandbox_id):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().strip() == program:
                return True
    return False


def _started_at(pid: int) -> int:
    """The process's start time in clock ticks since boot (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[19])


def _kill_sandbox(state_dir: Path, sandbox_id: str) -> int:
    # Oldest first (by start time: pids wrap): sandboxd dies before its commands, so it
    # cannot answer a command's SIGKILL as an ordinary exit 137.
    pids = sorted(sandbox_pids(state_dir, sandbox_id), key=_started_at)
    for pid in pids:
        # A pid may exit between listing and killing (its parent died first).
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


async def test_a_killed_sandbox_fails_only_its_sessions_call_and_the_next_call_is_told(
        deployment: Deployment, report_line: Callable[[str], None]) -> None:
    phases = Phases("binding")
    fleet = Fleet(deployment.mcp_url, [f"s{i:02}" for i in range(SESSIONS)], phases)
    await fleet.bind()
    phases.current = "steady"
    fleet.start()
    victim = fleet.sessions["s00"]
    try:
        await fleet.rounds(2)
        bound = {name: s.sandbox for name, s in fleet.sessions.items()}
        async with mcp_client(deployment.mcp_url, victim.headers) as client:
            in_flight = asyncio.ensure_future(
                victim.call(client, "run_shell_command", {"command": "sleep 60"}))
            async with asyncio.timeout(30):
                while not _running(deployment.state_dir, bound["s00"], "sleep"):
                    await asyncio.sleep(0.05)
            phases.current = "killed"
            assert _kill_sandbox(deployment.state_dir, bound["s00"]) > 0
            died = await in_flight
        phases.current = "after"
        await fleet.rounds(2)
    finally:
        await fleet.stop()
    counts = await fleet.counts("one sandbox SIGKILL")
    report_line(counts.line())
    report_line(f"  phases (s): {phases.log}")

    assert died.outcome is Outcome.TOLD_LOST and LOST_MARK in died.text, died
    assert (counts.lost, counts.silent_changes) == (0, 0), counts
    assert counts.told_sessions == 1 and victim.notices >= 1
    # Only the victim's calls that were in flight when its sandbox died failed.
    failed = fleet.failed(outside={"binding"})
    assert {c.session for c in failed} == {"s00"}, fleet.describe(failed)
    assert all(c.told for c in failed), fleet.describe(failed)
    # Its first call in the fresh sandbox said so (it may fail: the files are gone); that
    # call may have started before the kill and waited while the gateway found out.
    replaced = [c for c in victim.calls if c.sandbox and c.sandbox != bound["s00"]
                and c.outcome is not Outcome.TOLD_LOST]
    assert replaced and replaced[0].fresh and not any(c.fresh for c in replaced[1:]), \
        replaced[:2]
    after = [c for c in victim.calls if c.started_in == "after" and not c.fresh]
    assert after and all(c.outcome is Outcome.OK for c in after), fleet.describe(after)
    # The others kept theirs.
    assert victim.sandbox != bound["s00"]
    assert {n: s.sandbox for n, s in fleet.sessions.items() if n != "s00"} == \
        {n: sandbox for n, sandbox in bound.items() if n != "s00"}
    leftovers = deployment.shutdown()
    report_line(f"one sandbox SIGKILL, leftovers after stop: {leftovers.summary()}")
    assert leftovers.total == 0, leftovers
