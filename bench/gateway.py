"""Gateway benchmarks: MCP tool calls through the gateway, against a bare MCP floor.

``run_gateway_bench(quick)`` starts ``sandgate up`` (SandboxService and the
gateway, real bwrap sandboxes) and, for the floor, a bare ``MCPServer`` whose
tool runs ``echo hi`` itself, each in its own process, and measures both with
the same official MCP client (streamable HTTP, 2026-07-28 protocol):

- ``mcp_call_ms_p50``: ``run_shell_command("echo hi")`` through the gateway;
- ``mcp_floor_ms_p50``: the same call against the bare server;
- ``calls_per_s_c32``: calls per second with 32 concurrent sessions (each its own
  sandbox), driven from two client processes so the client is not the bottleneck;
- ``mcp_browser_nav_snapshot_ms_p50``: ``browser_navigate`` then ``browser_snapshot``
  through the gateway, to a page served inside the session's (warm) browser sandbox;
- ``first_cell_ms_p50``: a new session's first ``run_ipython_cell`` (pools warm,
  their kernels up), beside ``first_cell_floor_ms_p50``: a cell on a warm kernel,
  the same session's next one, and their ratio ``first_cell_over_floor``.

``python -m bench.gateway [--quick] [--workers N]`` prints the numbers as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import grpc
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import MCPServer
from mcp.shared._httpx_utils import create_mcp_http_client

from gateway.mcp_server import SANDBOX_META
from sandgate.sandbox.v1 import sandbox_service_pb2 as pb
from sandgate.sandbox.v1 import sandbox_service_pb2_grpc as pb_grpc
from sandgate.sdk import AsyncSandbox

__all__ = ["run_gateway_bench"]

ROOT = Path(__file__).resolve().parent.parent
SESSIONS = 32
CLIENT_PROCESSES = 2
_URL = re.compile(r"MCP \(streamable HTTP\)\s+(http://\S+/mcp)")
_CONTROL = re.compile(r"SandboxService \(gRPC\)\s+(\S+)")
_KERNEL_WARM_S = 2.0
"""Time a pooled sandbox's kernel gets after the pool is full: it starts in ~0.6 s."""
PAGE = ("<title>Bench</title><h1>Hello</h1><a href='#x'>a link</a><button>Press</button>")
"""The page bench.run's browser_nav_snapshot_ms_p50 uses, so the two compare."""


def _progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


@contextlib.asynccontextmanager
async def _client(url: str, headers: Mapping[str, str] | None = None) -> AsyncIterator[Client]:
    async with create_mcp_http_client(headers=dict(headers or {})) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            yield client


async def _echo(client: Client, tool: str) -> None:
    result = await client.call_tool(tool, {"command": "echo hi"})
    if result.is_error:
        raise RuntimeError(f"{tool} failed: {result.content}")


async def _latency_ms(url: str, tool: str, n: int) -> float:
    async with _client(url, {"X-Sandgate-Session": "latency"}) as client:
        for _ in range(20):  # warm: sandbox bound, connections open, caches hot
            await _echo(client, tool)
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            await _echo(client, tool)
            samples.append(time.perf_counter() - start)
    return round(statistics.median(samples) * 1000, 2)


async def _pools_full(control_target: str) -> None:
    """Wait until no pool is refilling, so no sandbox start (Chromium!) competes for the CPU."""
    async with grpc.aio.insecure_channel(control_target) as channel:
        stub = pb_grpc.SandboxServiceStub(channel)
        async with asyncio.timeout(120):
            while any(p.ready < p.target_size or p.starting for p in
                      (await stub.GetPoolStatus(pb.GetPoolStatusRequest(), timeout=10)).pools):
                await asyncio.sleep(0.05)


async def _browser_ms(url: str, control_target: str, n: int) -> float:
    """navigate + snapshot through MCP, to a page the browser sandbox serves itself."""
    async with _client(url, {"X-Sandgate-Session": "browser"}) as client:
        first = await client.call_tool("browser_tabs", {"action": "list"})  # binds from the pool
        if first.is_error or first.meta is None:
            raise RuntimeError(f"browser_tabs failed: {first.content}")
        # Shell tools go to another template by default: start the site with the SDK.
        sbx = await AsyncSandbox.connect(str(first.meta[SANDBOX_META]), target=control_target)
        try:
            await sbx.files.write("site/index.html", PAGE)
            await sbx.commands.run("cd site && nohup python3 -m http.server 8000 "
                                   "--bind 127.0.0.1 >/dev/null 2>&1 &")
        finally:
            await sbx.close()
        page = {"url": "http://127.0.0.1:8000/"}
        async with asyncio.timeout(30):
            while (await client.call_tool("browser_navigate", page)).is_error:
                await asyncio.sleep(0.1)
        await _pools_full(control_target)
        samples = []
        for i in range(n + 5):  # the first few warm caches and connections
            start = time.perf_counter()
            navigated = await client.call_tool("browser_navigate", page)
            snapshot = await client.call_tool("browser_snapshot", {})
            if i >= 5:
                samples.append(time.perf_counter() - start)
            if navigated.is_error or snapshot.is_error:
                raise RuntimeError(f"browsing failed: {navigated.content} {snapshot.content}")
        await client.call_tool("sandbox_release", {})
    return round(statistics.median(samples) * 1000, 2)


async def _first_cells(url: str, control_target: str, n: int) -> tuple[float, float]:
    """Medians (ms) of a new session's first cell and of its second (the floor)."""
    firsts: list[float] = []
    floors: list[float] = []
    for i in range(n):
        await _pools_full(control_target)
        await asyncio.sleep(_KERNEL_WARM_S)  # the pooled sandbox's kernel starts once it is ready
        async with _client(url, {"X-Sandgate-Session": f"first-cell-{i}"}) as client:
            for samples in (firsts, floors):
                start = time.perf_counter()
                result = await client.call_tool("run_ipython_cell", {"code": "1+1"})
                samples.append(time.perf_counter() - start)
                if result.is_error:
                    raise RuntimeError(f"run_ipython_cell failed: {result.content}")
            await client.call_tool("sandbox_release", {})
    return (round(statistics.median(firsts) * 1000, 2),
            round(statistics.median(floors) * 1000, 2))


async def _drive(url: str, tool: str, sessions: list[str], seconds: float) -> int:
    """Each session calls in a loop for ``seconds`` after a warm-up; return calls made."""
    done = 0
    ready = asyncio.Event()
    warmed = 0
    stop_at = 0.0

    async def session(name: str) -> None:
        nonlocal done, warmed
        async with _client(url, {"X-Sandgate-Session": name}) as client:
            await _echo(client, tool)  # binds the sandbox (cold start, not measured)
            warmed += 1
            if warmed == len(sessions):
                ready.set()
            await ready.wait()
            while time.perf_counter() < stop_at:
                await _echo(client, tool)
                done += 1

    async def timer() -> None:
        nonlocal stop_at
        await ready.wait()
        stop_at = time.perf_counter() + seconds

    stop_at = float("inf")
    await asyncio.gather(timer(), *(session(s) for s in sessions))
    return done


async def _throughput(url: str, tool: str, seconds: float) -> float:
    """Calls/s of SESSIONS concurrent sessions spread over CLIENT_PROCESSES processes."""
    names = [f"c32-{i}" for i in range(SESSIONS)]
    shares = [names[i::CLIENT_PROCESSES] for i in range(CLIENT_PROCESSES)]
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.gateway", "--drive", url, "--tool", tool,
        "--seconds", str(seconds), *share, cwd=ROOT, stdout=asyncio.subprocess.PIPE)
        for share in shares]
    outputs = await asyncio.gather(*(p.communicate() for p in procs))
    if any(p.returncode for p in procs):
        raise RuntimeError("a benchmark client process failed")
    return round(sum(int(out) for out, _ in outputs) / seconds, 1)


async def _start(argv: list[str], env: Mapping[str, str], pattern: re.Pattern[str],
                 log: Path) -> tuple[asyncio.subprocess.Process, str, str]:
    """Start a server; return it, ``pattern``'s group 1 and what it printed until then."""
    printed = ""
    with log.open("wb") as errors:
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=ROOT, env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE,
            stderr=errors)
    assert proc.stdout is not None
    async with asyncio.timeout(60):
        while line := (await proc.stdout.readline()).decode():
            printed += line
            if match := pattern.search(line):
                # Keep draining stdout so the server never blocks on a full pipe.
                asyncio.get_running_loop().create_task(proc.stdout.read())
                return proc, match.group(1), printed
    raise RuntimeError(f"{argv[2:]} did not start; see {log}")


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(2)  # SIGINT: a graceful stop deletes the sandboxes
        try:
            async with asyncio.timeout(20):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def run_gateway_bench(quick: bool, workers: int = 1) -> dict[str, float]:
    """Measure the gateway (``workers`` processes) against the bare-MCP floor; see the
    module docstring."""
    n = 100 if quick else 300
    seconds = 3.0 if quick else 8.0
    state = Path(tempfile.mkdtemp(prefix="sg-bgw-", dir="/tmp"))
    state.chmod(0o711)
    # Pools only where the bench draws from them: an idle warm Chromium still
    # takes CPU from the sandboxes being measured.
    templates = state / "templates.yaml"
    templates.write_text("templates:\n  - {name: base, pool_size: 0}\n"
                         "  - {name: filesystem, tool_groups: [base, filesystem], pool_size: 2, "
                         "warm_kernel: true}\n"
                         "  - {name: browser, tool_groups: [base, filesystem, browser], "
                         "network: true, memory_mb: 2048, max_pids: 1024, cpu_millis: 2000, "
                         "pool_size: 1}\n")
    env = {"SANDGATE_STATE_DIR": str(state), "SANDGATE_SANDBOX_PORT": "0",
           "SANDGATE_GATEWAY_PORT": "0", "SANDGATE_GATEWAY_GRPC_PORT": "0",
           "SANDGATE_TEMPLATES_FILE": str(templates), "SANDGATE_MAX_SANDBOXES": "96",
           "SANDGATE_API_KEYS": "", "BEARER_TOKEN": "", "SANDGATE_BEARER_TOKEN": "",
           "SANDGATE_RATE_LIMIT": "0", "SANDGATE_GATEWAY_WORKERS": str(workers),
           "SANDGATE_GATEWAY_LEGACY_SESSIONS": "true" if workers == 1 else "false"}
    gateway, url, banner = await _start([sys.executable, "-m", "sandgate.cli.main", "up"], env,
                                        _URL, state / "gateway.log")
    control = _CONTROL.search(banner)
    if control is None:
        raise RuntimeError(f"sandgate up did not print the SandboxService address: {banner}")
    floor, floor_url, _ = await _start([sys.executable, "-m", "bench.gateway", "--floor-server"],
                                    {}, re.compile(r"^(http://\S+/mcp)"), state / "floor.log")
    results: dict[str, float] = {}
    try:
        _progress(f"MCP call through the gateway vs the bare MCP floor (2 x {n} calls each)")
        # Interleaved rounds, best median of each: both sides get the same treatment
        # when something else on the machine disturbs one round.
        floors, calls = [], []
        for _ in range(2):
            floors.append(await _latency_ms(floor_url, "echo", n))
            calls.append(await _latency_ms(url, "run_shell_command", n))
        results["mcp_floor_ms_p50"] = min(floors)
        results["mcp_call_ms_p50"] = min(calls)
        _progress(f"a new session's first python cell through the gateway ({n // 30} runs)")
        results["first_cell_ms_p50"], results["first_cell_floor_ms_p50"] = await _first_cells(
            url, control.group(1), n // 30)
        _progress(f"browser navigate + snapshot through the gateway ({n // 3} runs)")
        results["mcp_browser_nav_snapshot_ms_p50"] = await _browser_ms(url, control.group(1),
                                                                       n // 3)
        _progress(f"{SESSIONS} concurrent sessions for {seconds:g} s")
        results["calls_per_s_c32"] = await _throughput(url, "run_shell_command", seconds)
        results["floor_calls_per_s_c32"] = await _throughput(floor_url, "echo", seconds)
    finally:
        await _stop(floor)
        await _stop(gateway)
        shutil.rmtree(state, ignore_errors=True)
    results["gateway_workers"] = workers
    results["mcp_call_over_floor"] = round(results["mcp_call_ms_p50"]
                                           / results["mcp_floor_ms_p50"], 2)
    results["first_cell_over_floor"] = round(results["first_cell_ms_p50"]
                                             / results["first_cell_floor_ms_p50"], 2)
    return results


async def _floor_server() -> None:
    """The bare floor: an MCPServer whose tool runs `echo hi` itself."""
    server = MCPServer("floor", log_level="WARNING")

    @server.tool()
    async def echo(command: str) -> str:
        """Run the command with /bin/sh, as the sandbox does."""
        proc = await asyncio.create_subprocess_shell(command, stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        return out.decode()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    print(f"http://127.0.0.1:{sock.getsockname()[1]}/mcp", flush=True)
    config = uvicorn.Config(server.streamable_http_app(), log_level="warning")
    await uvicorn.Server(config).serve(sockets=[sock])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument("--workers", type=int, default=1,
                        help="gateway worker processes (SANDGATE_GATEWAY_WORKERS)")
    parser.add_argument("--floor-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--drive", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--tool", default="run_shell_command", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=5.0, help=argparse.SUPPRESS)
    parser.add_argument("sessions", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor_server:
        asyncio.run(_floor_server())
    elif args.drive:
        print(asyncio.run(_drive(args.drive, args.tool, args.sessions, args.seconds)))
    else:
        print(json.dumps(asyncio.run(run_gateway_bench(args.quick, args.workers)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
