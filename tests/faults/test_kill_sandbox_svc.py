"""sandbox_svc killed with SIGKILL under load, then started again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from sandgate.sdk import AsyncSandbox
from tests.faults.conftest import Deployment
from tests.faults.workload import Fleet, Outcome, Phases, Session

pytestmark = pytest.mark.faults

SESSIONS = 32
NEWCOMERS = 4


async def _until_ok(session: Session, *, timeout: float = 60.0) -> None:
    """Rounds until one acknowledges its write (a newcomer after the restart)."""
    async with asyncio.timeout(timeout):
        while not session.acknowledged:
            await session.round()
            await asyncio.sleep(0.2)


async def test_bound_sessions_keep_working_through_a_sandbox_svc_kill_and_nothing_is_lost(
        deployment: Deployment, report_line: Callable[[str], None]) -> None:
    phases = Phases("binding")
    fleet = Fleet(deployment.mcp_url, [f"s{i:02}" for i in range(SESSIONS)], phases)
    # Some new sessions are acquiring their sandbox when the kill comes, some come after.
    caught = [Session(f"caught{i}", deployment.mcp_url, phases) for i in range(NEWCOMERS)]
    late = [Session(f"late{i}", deployment.mcp_url, phases) for i in range(NEWCOMERS)]
    newcomers = caught + late
    await fleet.bind()
    phases.current = "steady"
    fleet.start()
    try:
        await fleet.rounds(2)
        bound = {name: s.sandbox for name, s in fleet.sessions.items()}
        acquiring = [asyncio.ensure_future(s.round()) for s in caught]
        await asyncio.sleep(0.3)
        phases.current = "outage"
        deployment.sandbox_svc.kill()
        # Three more rounds, of which the first may have begun before the kill:
        # at least two whole rounds of every session fall inside the outage.
        await fleet.rounds(3)
        # Their first call waits or gets a retryable error.
        await asyncio.gather(*acquiring, *(s.round() for s in late))
        phases.current = "restart"
        await deployment.sandbox_svc.start()
        phases.current = "recovered"
        await asyncio.gather(*(_until_ok(s) for s in newcomers))
        phases.current = "newcomers bound"
        await fleet.rounds(2)
    finally:
        await fleet.stop()
    counts = await fleet.counts("sandbox_svc SIGKILL + restart")
    report_line(counts.line())
    first_tries = [s.calls[0] for s in newcomers]
    outage = [c for c in fleet.calls() if c.within == "outage"]
    report_line(f"  calls of bound sessions while sandbox_svc was down: {len(outage)}, "
                f"{sum(c.outcome is Outcome.OK for c in outage)} ok")
    report_line(f"  new sessions at and after the kill: "
                f"{sum(c.outcome is Outcome.RETRYABLE for c in first_tries)} of "
                f"{len(newcomers)} told to retry, all bound after the restart; "
                f"phases (s): {phases.log}")

    assert (counts.lost, counts.silent_changes, counts.told_writes) == (0, 0, 0), counts
    # Bound sessions never noticed: the gateway talks to sandboxd directly.
    failed = fleet.failed(outside={"binding"})
    assert not failed, fleet.describe(failed)
    assert len(outage) >= 2 * 3 * SESSIONS
    assert {name: s.sandbox for name, s in fleet.sessions.items()} == bound
    assert {c.outcome for c in first_tries} <= {Outcome.OK, Outcome.RETRYABLE}, first_tries
    # The restarted service re-adopted every live sandbox.
    listed = {row.sandbox_id for row in await AsyncSandbox.list(target=deployment.sandbox_target)}
    assert set(bound.values()) <= listed
    leftovers = deployment.shutdown()
    report_line(f"sandbox_svc SIGKILL + restart, leftovers after stop: {leftovers.summary()}")
    assert leftovers.total == 0, leftovers
