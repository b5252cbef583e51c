"""Escapes fail and limits hold, from inside real sandboxes.

Every test runs twice: with sandboxd forked from the zygote into the sandbox
(the default) and with sandboxd started afresh by bwrap (``SANDGATE_ZYGOTE=false``).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox_svc.server import RunningService, build_server
from sandgate.sdk import AsyncSandbox

from .conftest import make_settings

TIGHT = """
templates:
  - {name: tight, memory_mb: 64, max_pids: 32, cpu_millis: 200, pool_size: 0}
"""


@pytest.fixture(params=[True, False], ids=["zygote", "fresh"])
def zygote(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
async def tight_service(state_dir: Path, tmp_path: Path,
                        zygote: bool) -> AsyncIterator[RunningService]:
    (tmp_path / "templates.yaml").write_text(TIGHT)
    running = await build_server(make_settings(
        state_dir, templates_file=tmp_path / "templates.yaml", zygote=zygote))
    yield running
    await running.stop(grace=0.5)


@pytest.fixture
async def pair(service: RunningService) -> AsyncIterator[tuple[AsyncSandbox, AsyncSandbox]]:
    a, b = await asyncio.gather(AsyncSandbox.create("base", target=service.address),
                                AsyncSandbox.create("base", target=service.address))
    yield a, b
    await asyncio.gather(a.kill(), b.kill())


async def test_host_files_outside_the_binds_are_invisible(
        pair: tuple[AsyncSandbox, AsyncSandbox], service: RunningService) -> None:
    a, b = pair
    await b.files.write("secret.txt", "b's data")
    other = service.settings.state_dir / "sb" / b.sandbox_id / "workspace" / "secret.txt"
    assert other.exists()
    for command in ("ls /root", f"cat {other}", "cat /etc/shadow", "ls /home",
                    f"ls {service.settings.state_dir}"):
        result = await a.commands.run(command)
        assert result.exit_code != 0, f"{command!r} succeeded: {result.stdout!r}"
    assert "b's data" not in (await a.commands.run("cat /workspace/* 2>&1; true")).stdout


async def test_system_paths_are_read_only(pair: tuple[AsyncSandbox, AsyncSandbox]) -> None:
    a, _ = pair
    result = await a.commands.run("touch /usr/evil; echo x > /etc/passwd; touch /evil")
    assert result.exit_code != 0
    assert "Read-only file system" in result.stderr
    assert not Path("/usr/evil").exists()


async def test_host_processes_cannot_be_seen_or_signalled(
        pair: tuple[AsyncSandbox, AsyncSandbox]) -> None:
    a, _ = pair
    me = os.getpid()
    listing = await a.commands.run("ls /proc | grep -E '^[0-9]+$' | wc -l; "
                                   f"cat /proc/{me}/cmdline")
    assert listing.exit_code != 0 and int(listing.stdout.split()[0]) < 10
    killed = await a.commands.run(f"kill -9 {me} 1")
    assert killed.exit_code != 0
    os.kill(me, 0)  # still alive


async def test_host_loopback_is_unreachable(pair: tuple[AsyncSandbox, AsyncSandbox]) -> None:
    a, _ = pair
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.5)
        port = server.getsockname()[1]
        result = await a.commands.run(
            "python3 -c \"import socket; socket.create_connection(('127.0.0.1', "
            f"{port}), timeout=2)\"")
        assert result.exit_code != 0
        assert "ConnectionRefusedError" in result.stderr
        with pytest.raises(TimeoutError):
            server.accept()
    interfaces = await a.commands.run("cat /proc/net/dev")
    names = {line.split(":")[0].strip() for line in interfaces.stdout.splitlines()[2:]}
    assert names == {"lo"}


async def test_no_capabilities_inside(pair: tuple[AsyncSandbox, AsyncSandbox]) -> None:
    a, _ = pair
    status = await a.commands.run("grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status")
    assert {line.split()[1] for line in status.stdout.splitlines()} == {"0000000000000000"}


async def test_a_fork_bomb_is_stopped_by_the_pids_limit(
        tight_service: RunningService) -> None:
    sbx = await AsyncSandbox.create("tight", target=tight_service.address)
    bomb = ("import os, time\nn = 0\nfor _ in range(300):\n    try:\n        pid = os.fork()\n"
            "    except OSError:\n        break\n    if pid == 0:\n        time.sleep(30)\n"
            "        os._exit(0)\n    n += 1\nprint(n)\n")
    await sbx.files.write("bomb.py", bomb)
    result = await sbx.commands.run("python3 bomb.py", timeout=30)
    assert 0 < int(result.stdout) < 32
    assert (await sbx.commands.run("echo still usable")).stdout.strip() == "still usable"
    await sbx.kill()


async def test_a_memory_bomb_is_killed_and_reported_out_of_memory(
        tight_service: RunningService) -> None:
    sbx = await AsyncSandbox.create("tight", target=tight_service.address)
    result = await sbx.commands.run(
        "python3 -c \"b = []\nfor _ in range(64): b.append(bytearray(16 << 20))\"", timeout=30)
    assert result.exit_code == 137 and result.oom_killed
    assert (await sbx.commands.run("echo alive")).stdout.strip() == "alive"
    await sbx.kill()


async def test_the_cpu_limit_holds(tight_service: RunningService) -> None:
    sbx = await AsyncSandbox.create("tight", target=tight_service.address)
    spin = ("import time\nend = time.monotonic() + 1.5\nwhile time.monotonic() < end:\n"
            "    pass\nprint(time.process_time())\n")
    await sbx.files.write("spin.py", spin)
    result = await sbx.commands.run("python3 spin.py", timeout=30)
    # 200 millicores for 1.5 s of wall time allows about 0.3 s of CPU.
    assert float(result.stdout) < 0.6
    await sbx.kill()
