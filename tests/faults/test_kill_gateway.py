"""The gateway killed with SIGKILL under load, then started again."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.faults.conftest import Deployment
from tests.faults.workload import Fleet, Outcome, Phases

pytestmark = pytest.mark.faults

SESSIONS = 32


async def test_every_session_finds_its_sandbox_and_files_again_after_a_gateway_kill(
        deployment: Deployment, report_line: Callable[[str], None]) -> None:
    phases = Phases("binding")
    fleet = Fleet(deployment.mcp_url, [f"s{i:02}" for i in range(SESSIONS)], phases)
    await fleet.bind()
    phases.current = "steady"
    fleet.start()
    try:
        await fleet.rounds(2)
        bound = {name: s.sandbox for name, s in fleet.sessions.items()}
        phases.current = "outage"
        deployment.gateway.kill()
        await fleet.rounds(1)  # every session tried (and failed) at least once meanwhile
        phases.current = "restart"
        await deployment.gateway.start()
        phases.current = "recovered"
        # Three more rounds, of which the first may have begun before the
        # restart: at least two whole rounds of every session follow it.
        await fleet.rounds(3)
    finally:
        await fleet.stop()
    counts = await fleet.counts("gateway SIGKILL + restart")
    report_line(counts.line())
    report_line(f"  phases (s): {phases.log}")

    assert (counts.lost, counts.silent_changes, counts.told_writes) == (0, 0, 0), counts
    failed = fleet.failed(outside={"binding"})
    # Only calls that met the dead gateway failed, and only as a broken connection.
    assert {c.outcome for c in failed} <= {Outcome.TRANSPORT}, fleet.describe(failed)
    assert all(c.started_in in {"steady", "outage", "restart"} for c in failed), \
        fleet.describe(failed)
    assert {name: s.sandbox for name, s in fleet.sessions.items()} == bound
    recovered = [c for c in fleet.calls() if c.within == "recovered"]
    assert len(recovered) >= 2 * 3 * SESSIONS
    assert all(c.outcome is Outcome.OK for c in recovered)
    leftovers = deployment.shutdown()
    report_line(f"gateway SIGKILL + restart, leftovers after stop: {leftovers.summary()}")
    assert leftovers.total == 0, leftovers
