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
    assert (await _sandgate("sandbox", "rm", sandbox_id, *target)).returncode == 0
    gone = await _sandgate("sandbox", "rm", sandbox_id, *target)
    assert gone.returncode == 2 and "not found" in gone.stderr


async def test_create_prints_only_the_id_on_stdout_and_the_isolation_on_stderr(
        service: RunningService) -> None:
    target = ("--target", service.address)
    created = await _sandgate("sandbox", "create", "--template", "base", *target)
    assert created.returncode == 0, created.stderr
    sandbox_id, = created.stdout.split()
    isolation = [line for line in created.stderr.splitlines() if line.startswith("isolation:")]
    assert isolation == ["isolation: bubblewrap; namespaces user,mount,pid,net,ipc,uts,cgroup; "
                         "uid 65534; seccomp default; user namespaces disabled; network none"]
    assert (await _sandgate("sandbox", "rm", sandbox_id, *target)).returncode == 0


async def test_templates_lists_each_template_with_its_isolation(
        service: RunningService) -> None:
    listed = await _sandgate("sandbox", "templates", "--target", service.address)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    names = [line.split()[0] for line in lines[1:] if not line.startswith(" ")]
    assert names == ["base", "browser", "filesystem"]
    browser = lines[lines.index(next(x for x in lines if x.startswith("browser"))) + 1]
    assert "seccomp browser" in browser and "network egress" in browser
    assert "user namespaces disabled" in browser


async def test_help_lists_every_command() -> None:
    helped = await _sandgate("--help")
    for command in ("up", "sandbox-server", "sandbox", "bench"):
        assert command in helped.stdout
