"""``sandgate gc`` removes what a killed service left, and never a live one's sandboxes.

Real services, real sandboxes, real cgroups. Every collection here is scoped
with --state-dir: other services on this host are not this test's to judge.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from sandbox_svc.local.statelock import DEFAULT_INDEX_DIR, cgroup_parent
from sandbox_svc.server import RunningService
from sandgate.sdk import AsyncSandbox

ROOT = Path(__file__).resolve().parents[3]
CGROUPS = Path("/sys/fs/cgroup")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _sandgate(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "sandgate.cli.main", *args], cwd=ROOT,
        capture_output=True, text=True, timeout=120)


def _start_service(state_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, SANDGATE_STATE_DIR=str(state_dir), SANDGATE_SANDBOX_PORT=str(port),
               SANDGATE_POOL_SIZE="0", SANDGATE_AUTO_CLEANUP="true", SANDGATE_API_KEYS="",
               BEARER_TOKEN="")
    with open(log, "ab") as out:  # outside the state dir: gc removes that whole
        return subprocess.Popen([sys.executable, "-m", "sandgate.cli.main", "sandbox-server"],
                                cwd=ROOT, env=env, stdout=out, stderr=out)


async def _killed_service_with_a_sandbox(state_dir: Path, log: Path) -> str:
    """Start a service, give it a sandbox, SIGKILL it: the sandbox lives on, unowned."""
    port = _free_port()
    service = _start_service(state_dir, port, log)
    try:
        async with asyncio.timeout(30):
            while True:
                try:
                    sbx = await AsyncSandbox.create("base", target=f"127.0.0.1:{port}")
                    break
                except Exception:
                    await asyncio.sleep(0.1)
        await sbx.commands.run("sleep 600 > /dev/null 2>&1 &")
        await sbx.close()
    finally:
        service.send_signal(signal.SIGKILL)
        service.wait(timeout=10)
    return sbx.sandbox_id


def _traces(state_dir: Path) -> dict[str, list[str]]:
    parent = cgroup_parent(state_dir)
    groups = [str(p) for p in CGROUPS.glob(f"*/{parent}")] + \
        [str(p) for p in CGROUPS.glob(parent)]
    pids: list[str] = []
    for group in [Path(g) for g in groups]:
        for procs in group.rglob("cgroup.procs"):
            pids += procs.read_text().split()
    index = [str(p) for p in DEFAULT_INDEX_DIR.glob(f"{parent}.json")]
    return {"cgroups": groups, "processes": pids, "index": index,
            "state dir": [str(state_dir)] if state_dir.exists() else []}


async def test_gc_lists_then_removes_what_a_killed_service_left(
        state_dir: Path, tmp_path: Path) -> None:
    sandbox_id = await _killed_service_with_a_sandbox(state_dir, tmp_path / "service.log")
    before = _traces(state_dir)
    assert before["cgroups"] and before["processes"] and before["index"]

    listed = await _sandgate("gc", "--dry-run", "--state-dir", str(state_dir))
    assert listed.returncode == 0, listed.stderr
    assert f"would remove sandbox {state_dir}/sb/{sandbox_id}" in listed.stdout
    assert "would remove process" in listed.stdout and "would remove cgroup" in listed.stdout
    assert f"would remove state dir {state_dir}" in listed.stdout
    assert _traces(state_dir) == before  # a dry run removes nothing

    removed = await _sandgate("gc", "--state-dir", str(state_dir))
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert f"removed sandbox {state_dir}/sb/{sandbox_id}" in removed.stdout
    assert f"removed registry row {sandbox_id}" in removed.stdout
    assert _traces(state_dir) == {"cgroups": [], "processes": [], "index": [], "state dir": []}


async def test_gc_finds_the_cgroups_of_a_killed_service_whose_state_dir_is_gone(
        state_dir: Path, tmp_path: Path) -> None:
    await _killed_service_with_a_sandbox(state_dir, tmp_path / "service.log")
    shutil.rmtree(state_dir)  # as a test run's tmp dir cleanup would
    removed = await _sandgate("gc", "--state-dir", str(state_dir))
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert "removed cgroup" in removed.stdout and "removed process" in removed.stdout
    assert _traces(state_dir) == {"cgroups": [], "processes": [], "index": [], "state dir": []}


async def test_gc_never_touches_a_live_instance(service: RunningService) -> None:
    sbx = await AsyncSandbox.create("base", target=service.address)
    await sbx.files.write("work.txt", "live")
    state_dir = service.settings.state_dir
    ran = await _sandgate("gc", "--state-dir", str(state_dir))
    assert ran.returncode == 0, ran.stderr
    assert f"kept {state_dir}: in use by a running Sandgate (pid {os.getpid()})" in ran.stdout
    assert "removed" not in ran.stdout.replace("gc: removed nothing", "")
    assert await sbx.files.read("work.txt") == "live"
    assert [r.sandbox_id for r in await service.registry.all()] == [sbx.sandbox_id]
    await sbx.kill()
