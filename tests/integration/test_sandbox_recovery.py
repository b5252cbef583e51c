"""Nothing is lost: restarts re-adopt live sandboxes and reap dead ones.

The create/delete leak check (200 cycles in `make test`, 1000 in `make soak`) lives
in tests/faults/test_soak.py."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from sandbox_svc.server import RunningService
from sandgate.sdk import AsyncSandbox

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_service(state_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, SANDGATE_STATE_DIR=str(state_dir), SANDGATE_SANDBOX_PORT=str(port),
               SANDGATE_POOL_SIZE="0", SANDGATE_AUTO_CLEANUP="false", SANDGATE_API_KEYS="",
               BEARER_TOKEN="")
    with open(state_dir / "service.log", "ab") as log:  # read it when a test fails
        return subprocess.Popen([sys.executable, "-m", "sandbox_svc"], cwd=ROOT, env=env,
                                stdout=log, stderr=log)


async def _wait_serving(target: str) -> None:
    async with asyncio.timeout(30):
        while True:
            try:
                await AsyncSandbox.list(target=target)
                return
            except Exception:
                await asyncio.sleep(0.1)


async def test_a_live_sandbox_stays_usable_across_a_crash_of_sandbox_svc(
        state_dir: Path) -> None:
    port = _free_port()
    target = f"127.0.0.1:{port}"
    first = _start_service(state_dir, port)
    second = None
    try:
        await _wait_serving(target)
        sbx = await AsyncSandbox.create("base", target=target)
        await sbx.files.write("kept.txt", "before")
        await sbx.run_code("state = 'kernel state kept'")
        await sbx.close()
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)

        second = _start_service(state_dir, port)
        await _wait_serving(target)
        again = await AsyncSandbox.connect(sbx.sandbox_id, target=target)
        assert await again.files.read("kept.txt") == "before"
        assert (await again.run_code("state")).text == "'kernel state kept'"
        await again.kill()
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
    cleanup = _start_service(state_dir, port)  # reaps anything a failed assert left
    await _wait_serving(target)
    cleanup.send_signal(signal.SIGTERM)
    cleanup.wait(timeout=30)


async def test_a_restart_reaps_sandboxes_whose_processes_died(service: RunningService) -> None:
    sbx = await AsyncSandbox.create("base", target=service.address)
    backend = service.manager.backend  # the real LocalBackend of this service
    await backend.destroy(sbx.sandbox_id)  # processes gone behind the manager's back
    assert await service.manager.reap_once() == [sbx.sandbox_id]
    await sbx.close()
