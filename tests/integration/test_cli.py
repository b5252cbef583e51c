"""The ``sandgate sandbox`` commands against a running SandboxService."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from sandbox_svc.server import RunningService


async def _sandgate(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "sandgate.cli.main", *args],
        capture_output=True, text=True, timeout=60)


async def test_create_exec_list_and_remove_from_the_command_line(
        service: RunningService) -> None:
    target = ("--target", service.address)
    created = await _sandgate("sandbox", "create", "--template", "base", *target)
    assert created.returncode == 0, created.stderr
    sandbox_id = created.stdout.strip()
    listed = await _sandgate("sandbox", "ls", *target)
    assert sandbox_id in listed.stdout
    ran = await _sandgate("sandbox", "exec", sandbox_id, *target, "--", "echo hi; exit 3")
    assert (ran.returncode, ran.stdout) == (3, "hi\n")
    late = await _sandgate("sandbox", "exec", sandbox_id, *target, "--timeout", "1", "--",
                           "echo started; sleep 30")
    assert (late.returncode, late.stdout) == (124, "started\n")  # as timeout(1) exits
    assert "timed out after 1 s" in late.stderr
    assert (await _sandgate("sandbox", "rm", sandbox_id, *target)).returncode == 0
    gone = await _sandgate("sandbox", "rm", sandbox_id, *target)
    assert gone.returncode == 2 and "not found" in gone.stderr


async def test_help_lists_every_command() -> None:
    helped = await _sandgate("--help")
    for command in ("up", "sandbox-server", "sandbox", "gc", "bench"):
        assert command in helped.stdout
