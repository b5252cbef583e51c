"""A second Sandgate on the same state dir refuses at once; a killed one's heir adopts.

Real services and real sandboxes: what a new user hits when they start
``sandgate up`` twice, or start it again after the first one was killed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox_svc.errors import StateDirInUseError
from sandbox_svc.server import RunningService, build_server
from sandgate.sdk import AsyncSandbox
from tests.integration.conftest import make_settings

ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(state_dir: Path, port: int) -> dict[str, str]:
    return dict(os.environ, SANDGATE_STATE_DIR=str(state_dir),
                SANDGATE_SANDBOX_PORT=str(port), SANDGATE_POOL_SIZE="0",
                SANDGATE_AUTO_CLEANUP="true", SANDGATE_API_KEYS="", BEARER_TOKEN="")


def _start_service(state_dir: Path, port: int) -> subprocess.Popen[bytes]:
    with open(state_dir / "service.log", "ab") as log:  # read it when a test fails
        return subprocess.Popen([sys.executable, "-m", "sandgate.cli.main", "sandbox-server"],
                                cwd=ROOT, env=_env(state_dir, port), stdout=log, stderr=log)


async def _sandbox_with_a_file(service: RunningService) -> AsyncSandbox:
    sbx = await AsyncSandbox.create("base", target=service.address)
    await sbx.files.write("work.txt", "the first instance's work")
    return sbx


async def _still_intact(service: RunningService, sbx: AsyncSandbox) -> None:
    assert [r.sandbox_id for r in await service.registry.all()] == [sbx.sandbox_id]
    assert await sbx.files.read("work.txt") == "the first instance's work"
    assert (await sbx.commands.run("echo alive")).stdout == "alive\n"


async def test_a_second_build_server_refuses_and_the_first_keeps_its_sandboxes_and_files(
        service: RunningService) -> None:
    sbx = await _sandbox_with_a_file(service)
    state = service.settings.state_dir
    with pytest.raises(StateDirInUseError) as refused:
        await build_server(make_settings(state))
    assert str(refused.value) == (f"another Sandgate (pid {os.getpid()}) is using {state}; "
                                  "stop it or set SANDGATE_STATE_DIR")
    await _still_intact(service, sbx)
    await sbx.close()


async def test_a_second_sandbox_server_process_exits_2_with_the_message_and_touches_nothing(
        service: RunningService) -> None:
    sbx = await _sandbox_with_a_file(service)
    state = service.settings.state_dir
    ran = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "sandgate.cli.main", "sandbox-server"],
        cwd=ROOT, env=_env(state, _free_port()), capture_output=True, text=True, timeout=60)
    assert ran.returncode == 2
    assert (f"another Sandgate (pid {os.getpid()}) is using {state}; stop it or set "
            "SANDGATE_STATE_DIR") in ran.stderr
    assert "Traceback" not in ran.stderr
    await _still_intact(service, sbx)
    await sbx.close()


async def test_after_a_sigkill_of_the_first_a_new_start_succeeds_and_adopts(
        state_dir: Path) -> None:
    port = _free_port()
    target = f"127.0.0.1:{port}"
    first = _start_service(state_dir, port)
    try:
        async with asyncio.timeout(30):
            while True:
                try:
                    sbx = await AsyncSandbox.create("base", target=target)
                    break
                except Exception:
                    await asyncio.sleep(0.1)
        await sbx.files.write("work.txt", "kept")
        await sbx.close()
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    heir = await build_server(make_settings(state_dir))
    try:
        adopted = await heir.manager.get("default", sbx.sandbox_id)
        again = await AsyncSandbox.connect(adopted.sandbox_id, target=heir.address)
        assert await again.files.read("work.txt") == "kept"
        await again.close()
    finally:
        await heir.stop(grace=0.5)
    assert not (state_dir / "sb" / sbx.sandbox_id).exists()  # the heir's stop cleaned up
