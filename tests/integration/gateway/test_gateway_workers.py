"""``python -m gateway`` with several worker processes on one port, against a real sandbox_svc."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx2
import mcp_types as types
import pytest

from sandbox_svc.server import RunningService
from tests.integration.gateway.conftest import ROOT, SERVICE_KEY, mcp_client

_URL = re.compile(r"gateway: MCP (http://\S+/mcp), gRPC")
CLIENTS = 6
CALLS_EACH = 3


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose: it serves nothing and holds no socket.
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"


class _Gateway:
    def __init__(self, proc: asyncio.subprocess.Process, url: str, log: list[str]) -> None:
        self.proc = proc
        self.url = url
        self.log = log


def _env(service: RunningService, tmp_path: Path, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SANDGATE_") and k != "BEARER_TOKEN"}
    env.update({"SANDGATE_GATEWAY_PORT": "0", "SANDGATE_GATEWAY_GRPC_PORT": "0",
                "SANDGATE_SANDBOX_TARGET": service.address, "SANDGATE_SANDBOX_KEY": SERVICE_KEY,
                "SANDGATE_AUDIT_LOG": str(tmp_path / "audit.jsonl"), **more})
    return env


@contextlib.asynccontextmanager
async def _gateway(env: dict[str, str], *args: str) -> AsyncIterator[_Gateway]:
    """``python -m gateway`` in a process of its own; killed with its group if a test fails."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    log: list[str] = []
    drain: asyncio.Task[None] | None = None
    try:
        with anyio.fail_after(90):
            while line := (await proc.stderr.readline()).decode():
                log.append(line)
                if match := _URL.search(line):
                    break
            else:
                raise AssertionError("the gateway did not start:\n" + "".join(log))

        async def keep_draining() -> None:
            assert proc.stderr is not None
            while line := (await proc.stderr.readline()).decode():
                log.append(line)

        drain = asyncio.create_task(keep_draining())
        yield _Gateway(proc, match.group(1), log)
    finally:
        workers = _children(proc.pid)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if drain is not None:
            with anyio.fail_after(10):
                await drain


async def _stopped(gateway: _Gateway, signum: int | None = signal.SIGTERM) -> int:
    if signum is not None:
        gateway.proc.send_signal(signum)
    with anyio.fail_after(30):
        return await gateway.proc.wait()


async def test_two_workers_serve_calls_of_many_clients_and_sigterm_stops_both(
        sandbox_service: RunningService, tmp_path: Path) -> None:
    env = _env(sandbox_service, tmp_path, SANDGATE_GATEWAY_WORKERS="2",
               SANDGATE_GATEWAY_LEGACY_SESSIONS="false")
    async with _gateway(env) as gateway:
        workers = _children(gateway.proc.pid)
        assert len(workers) == 1  # worker 0 is the gateway process itself

        async def client(n: int, calls: int = CALLS_EACH) -> list[str]:
            texts = []
            async with mcp_client(gateway.url, {"X-Sandgate-Session": f"w-{n}"}) as mcp:
                for i in range(calls):
                    result = await mcp.call_tool("run_shell_command",
                                                 {"command": f"echo c{n}-{i}"})
                    assert not result.is_error, result.content
                    assert isinstance(result.content[0], types.TextContent)
                    texts.append(result.content[0].text)
            return texts

        def served_by() -> set[int]:
            audit = (tmp_path / "audit.jsonl").read_text().splitlines()
            return {json.loads(line)["pid"] for line in audit}

        with anyio.fail_after(120):
            answers = await asyncio.gather(*(client(n) for n in range(CLIENTS)))
            # The kernel spreads connections by a hash of their ports; more clients
            # (one call each) until both workers have served one: 2^-32 to miss.
            for n in range(CLIENTS, CLIENTS + 32):
                if served_by() == {gateway.proc.pid, *workers}:
                    break
                await client(n, 1)
        assert answers == [[f"c{n}-{i}\n" for i in range(CALLS_EACH)] for n in range(CLIENTS)]
        assert served_by() == {gateway.proc.pid, *workers}
        assert await _stopped(gateway) == 0
        assert not any(_alive(pid) for pid in workers)
    outcomes = [json.loads(line)["outcome"]
                for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert len(outcomes) >= CLIENTS * CALLS_EACH and set(outcomes) == {"ok"}


async def test_a_worker_that_dies_stops_the_gateway_with_an_error(
        sandbox_service: RunningService, tmp_path: Path) -> None:
    env = _env(sandbox_service, tmp_path, SANDGATE_GATEWAY_LEGACY_SESSIONS="false")
    async with _gateway(env, "--workers", "3") as gateway:
        workers = _children(gateway.proc.pid)
        assert len(workers) == 2
        victim, survivor = sorted(workers)
        os.kill(victim, signal.SIGKILL)
        assert await _stopped(gateway, None) == 1
        assert not _alive(survivor)
        assert any(f"pid {victim}) exited" in line for line in gateway.log)


async def _refused(env: dict[str, str]) -> tuple[int | None, bytes]:
    """``python -m gateway`` that should not start: its exit status and stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    with anyio.fail_after(60):
        _, err = await proc.communicate()
    return proc.returncode, err


async def test_several_workers_with_legacy_sessions_refuse_to_start(
        sandbox_service: RunningService, tmp_path: Path) -> None:
    env = _env(sandbox_service, tmp_path, SANDGATE_GATEWAY_WORKERS="2")
    returncode, err = await _refused(env)
    assert returncode == 2
    assert b"SANDGATE_GATEWAY_LEGACY_SESSIONS=false" in err


async def test_several_workers_on_a_busy_port_fail_at_start(
        sandbox_service: RunningService, tmp_path: Path) -> None:
    with socket.socket() as busy:
        # Another server that shares its port: SO_REUSEPORT alone would let ours join it.
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = _env(sandbox_service, tmp_path, SANDGATE_GATEWAY_WORKERS="2",
                   SANDGATE_GATEWAY_LEGACY_SESSIONS="false", SANDGATE_GATEWAY_PORT=str(port))
        returncode, err = await _refused(env)
    assert returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}".encode() in err


@pytest.mark.parametrize("workers", [1, 2])
async def test_the_health_endpoint_names_the_worker_that_answered(
        sandbox_service: RunningService, tmp_path: Path, workers: int) -> None:
    env = _env(sandbox_service, tmp_path, SANDGATE_GATEWAY_WORKERS=str(workers),
               SANDGATE_GATEWAY_LEGACY_SESSIONS="false")
    async with _gateway(env) as gateway:
        pids = {gateway.proc.pid, *_children(gateway.proc.pid)}
        seen: set[int] = set()
        with anyio.fail_after(30):
            for _ in range(64):  # a new connection each time: the kernel picks a worker
                async with httpx2.AsyncClient() as http:
                    reply = await http.get(gateway.url.replace("/mcp", "/healthz"))
                seen.add(reply.json()["worker_pid"])
                if seen == pids:
                    break
        assert seen == pids
        assert await _stopped(gateway) == 0
