"""``make bench``: measure Sandgate on this machine and print one JSON object.

Every metric is a median (and p99 where named) over repeated runs against a
real SandboxService with real bwrap sandboxes; floors are measured in the same
run so ratios compare like with like. Keys are listed in DESIGN.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc

from bench.agent import run_agent_bench
from bench.agent_turn import run_agent_turn_bench
from bench.gateway import run_gateway_bench
from sandbox_svc.local.backend import LocalBackend
from sandbox_svc.local.bwrap import SandboxLayout, bwrap_argv
from sandbox_svc.server import build_server
from sandbox_svc.settings import SandboxServiceSettings
from sandgate.sandbox.v1 import runtime_service_pb2 as rpb
from sandgate.sandbox.v1 import runtime_service_pb2_grpc as rpb_grpc
from sandgate.sandbox.v1 import sandbox_service_pb2 as pb
from sandgate.sandbox.v1 import sandbox_service_pb2_grpc as pb_grpc
from sandgate.sdk import AsyncSandbox

TARGETS: dict[str, tuple[str, float]] = {
    "warm_acquire_ms_p50": ("<=", 5.0), "warm_acquire_ms_p99": ("<=", 15.0),
    "cold_start_ms_p50": ("<=", 80.0), "sdk_create_ms_p50": ("<=", 15.0),
    "first_cell_over_floor": ("<=", 2.0), "exec_ms_p50": ("<=", 3.0),
    "python_cell_ms_p50": ("<=", 10.0), "idle_sandbox_pss_mb": ("<=", 18.0),
    "browser_nav_snapshot_ms_p50": ("<=", 80.0), "browser_warm_acquire_ms_p50": ("<=", 20.0),
    "mcp_call_over_floor": ("<=", 1.3), "calls_over_floor_c32": (">=", 1.0),
    "process_rps_c16": (">=", 500.0), "process_first_event_ms_p50": ("<=", 10.0),
}
"""The issues' targets on 2 cores."""


def _met(value: float, target: tuple[str, float]) -> bool:
    op, bound = target
    return value <= bound if op == "<=" else value >= bound


def _progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _ms(samples: list[float], q: float = 0.5) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index] * 1000 if q != 0.5 else statistics.median(ordered) * 1000, 2)


async def _timed(n: int, fn: Callable[[], Awaitable[None]]) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - start)
    return samples


def bwrap_floor(state: Path, n: int) -> list[float]:
    """``bwrap`` with the sandbox's namespaces and binds running /bin/true (no cgroup, no
    privilege drop): what any bwrap-based sandbox pays at least."""
    work = state / "floor"
    (work / "ws").mkdir(parents=True)
    (work / "run").mkdir()
    layout = SandboxLayout(workspace=work / "ws", run_dir=work / "run", etc_dir=state / "etc",
                           venv=Path(sys.prefix), packages=())
    return time_runs(bwrap_argv(layout, ["/bin/true"], {}), n)


def time_runs(argv: list[str], n: int) -> list[float]:
    """Seconds of each of ``n`` runs of ``argv`` to its exit (it must succeed)."""
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(argv, check=True)
        samples.append(time.perf_counter() - start)
    return samples


async def _exec_true(target: str, token: str) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = rpb_grpc.SandboxRuntimeStub(channel)
        async for _ in stub.Exec(rpb.ExecRequest(command="true"),
                                 metadata=(("authorization", f"Bearer {token}"),)):
            pass


async def _warm_acquire(control: pb_grpc.SandboxServiceStub, template: str,
                        first_call: Callable[[str, str], Awaitable[None]],
                        pool_ready: Callable[[], Awaitable[None]], count: int) -> list[float]:
    """Seconds from AcquireSandbox (pool hit, one control channel) to the first
    successful call on a fresh channel to the sandbox."""
    samples = []
    for i in range(count):
        await pool_ready()
        start = time.perf_counter()
        reply = await control.AcquireSandbox(pb.AcquireSandboxRequest(
            template=template, session=pb.SessionKey(session_id=f"bench-{template}-{i}")))
        await first_call(reply.connection.target, reply.connection.token)
        samples.append(time.perf_counter() - start)
        assert reply.pool_hit, f"the {template} pool was empty; the sample would be a cold start"
        await control.DeleteSandbox(pb.DeleteSandboxRequest(sandbox_id=reply.sandbox.sandbox_id))
    return samples


async def _first_browser_call(target: str, token: str) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = rpb_grpc.SandboxRuntimeStub(channel)
        reply = await stub.BrowserAction(
            rpb.BrowserActionRequest(tool="browser_tabs", arguments_json='{"action": "list"}'),
            metadata=(("authorization", f"Bearer {token}"),))
        assert not reply.is_error, reply


async def _browser_bench(target: str, control: pb_grpc.SandboxServiceStub,
                         pool_ready: Callable[[], Awaitable[None]], n: int) -> dict[str, float]:
    """Warm acquire of a browser sandbox to its first browser call (measured like
    warm_acquire_ms: one control channel, a fresh channel to the sandbox), then
    navigate+snapshot of a page served inside the sandbox."""
    samples = max(n // 3, 5)
    _progress(f"browser warm acquire to first browser call ({samples} runs)")
    warm = await _warm_acquire(control, "browser", _first_browser_call, pool_ready, samples)
    sbx = await AsyncSandbox.create("browser", target=target)
    await sbx.files.write("site/index.html", "<title>Bench</title><h1>Hello</h1>"
                          "<a href='#x'>a link</a><button>Press</button>")
    await sbx.commands.run("cd site && nohup python3 -m http.server 8000 --bind 127.0.0.1 "
                           ">/dev/null 2>&1 &")
    url = "http://127.0.0.1:8000/"
    async with asyncio.timeout(30):
        while (await sbx.browser.call("browser_navigate", {"url": url})).is_error:
            await asyncio.sleep(0.1)

    async def nav_snapshot() -> None:
        await sbx.browser.call("browser_navigate", {"url": url})
        await sbx.browser.call("browser_snapshot")

    async def nav_only() -> None:
        await sbx.browser.call("browser_navigate", {"url": url})

    _progress(f"browser navigate + snapshot ({n} runs)")
    both = await _timed(n, nav_snapshot)
    single = await _timed(n, nav_only)
    await sbx.kill()
    return {"browser_warm_acquire_ms_p50": _ms(warm),
            "browser_nav_snapshot_ms_p50": _ms(both),
            "browser_nav_with_snapshot_in_result_ms_p50": _ms(single)}


def _pss_mb(pids: list[int]) -> float:
    total_kb = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return round(total_kb / 1024, 1)


async def _sdk_creates(target: str, pool_ready: Callable[[], Awaitable[None]],
                       n: int) -> list[float]:
    """``Sandbox.create("base")`` (from the warm pool) to its first successful command."""
    samples = []
    for _ in range(n):
        await pool_ready()
        start = time.perf_counter()
        sbx = await AsyncSandbox.create("base", target=target)
        result = await sbx.commands.run("true")
        samples.append(time.perf_counter() - start)
        if result.exit_code != 0:
            raise RuntimeError(f"the first command failed: {result}")
        await sbx.kill()
    return samples


async def _idle_pss(pids: Callable[[str], list[int]], sandbox_id: str) -> float:
    """PSS (MB) of an idle sandbox once it stops growing (its kernel, if warm, is up)."""
    last = -1.0
    async with asyncio.timeout(20):
        while True:
            await asyncio.sleep(1.0)
            now = _pss_mb(pids(sandbox_id))
            if abs(now - last) < 0.5:
                return now
            last = now


async def run(quick: bool) -> dict[str, object]:
    n = 10 if quick else 30
    state = Path(tempfile.mkdtemp(prefix="sg-bench-", dir="/tmp"))
    state.chmod(0o711)
    # "cold" is base without a pool or a warm kernel: CreateSandbox of a template
    # with a pool takes a pooled sandbox, so a cold start needs one that has none.
    templates = state / "templates.yaml"
    templates.write_text("templates:\n  - {name: cold, pool_size: 0}\n")
    settings = SandboxServiceSettings(
        host="127.0.0.1", port=0, state_dir=state, pool_size=None, max_sandboxes=32,
        api_keys="", bearer_token="", auto_cleanup=True, reap_interval_s=3600.0,
        templates_file=templates)
    running = await build_server(settings)
    results: dict[str, object] = {}
    try:
        _progress(f"bwrap floor ({n} runs)")
        results["bwrap_floor_ms_p50"] = _ms(bwrap_floor(state, n))

        channel = grpc.aio.insecure_channel(running.address)
        control = pb_grpc.SandboxServiceStub(channel)

        async def pool_ready() -> None:
            # Wait for every pool to be full, so no sandbox start competes for the CPU.
            async with asyncio.timeout(120):
                while any(p.ready < p.target_size
                          for p in await running.manager.pool_status()):
                    await asyncio.sleep(0.01)

        _progress(f"warm acquire to first exec ({n} runs)")
        warm = await _warm_acquire(control, "base", _exec_true, pool_ready, n)
        results["warm_acquire_ms_p50"] = _ms(warm)
        results["warm_acquire_ms_p99"] = _ms(warm, 0.99)

        _progress(f"cold start to first exec ({n} runs)")
        cold = []
        for _ in range(n):
            start = time.perf_counter()
            reply_c = await control.CreateSandbox(pb.CreateSandboxRequest(template="cold"))
            await _exec_true(reply_c.connection.target, reply_c.connection.token)
            cold.append(time.perf_counter() - start)
            await control.DeleteSandbox(pb.DeleteSandboxRequest(
                sandbox_id=reply_c.sandbox.sandbox_id))
        results["cold_start_ms_p50"] = _ms(cold)

        browser_results = await _browser_bench(running.address, control, pool_ready, n)
        results.update(browser_results)

        _progress(f"SDK Sandbox.create() to the first command, pools warm ({n} runs)")
        results["sdk_create_ms_p50"] = _ms(await _sdk_creates(running.address, pool_ready, n))

        backend = running.manager.backend
        assert isinstance(backend, LocalBackend)
        _progress("idle sandbox memory, without and with a warm kernel")
        cold_sbx = await AsyncSandbox.create("cold", target=running.address)
        await pool_ready()
        results["idle_sandbox_pss_mb"] = await _idle_pss(backend.pids, cold_sbx.sandbox_id)
        # What the host pays once for all sandboxes: their sandboxd shares its pages.
        if backend.zygote_pid is not None:
            results["zygote_pss_mb"] = _pss_mb([backend.zygote_pid])
        await cold_sbx.kill()
        sbx = await AsyncSandbox.create("base", target=running.address)
        results["idle_sandbox_warm_kernel_pss_mb"] = await _idle_pss(backend.pids,
                                                                     sbx.sandbox_id)
        _progress(f"exec true on a live sandbox ({n * 5} runs)")

        async def exec_true() -> None:
            await sbx.commands.run("true")
        await exec_true()
        results["exec_ms_p50"] = _ms(await _timed(n * 5, exec_true))

        _progress(f"python cell 1+1 on a warm kernel ({n * 3} runs)")

        async def cell() -> None:
            await sbx.run_code("1+1")
        await cell()
        results["python_cell_ms_p50"] = _ms(await _timed(n * 3, cell))
        results["sdk_create_over_exec"] = round(
            float(results["sdk_create_ms_p50"]) / float(results["exec_ms_p50"]), 1)  # type: ignore[arg-type]
        await sbx.kill()
        await channel.close()
    finally:
        await running.stop(grace=0.5)
        shutil.rmtree(state, ignore_errors=True)

    results.update(await run_gateway_bench(quick))
    results.update(await run_agent_bench(quick))
    results.update(await run_agent_turn_bench(quick))
    results["cold_start_over_bwrap_floor"] = round(
        float(results["cold_start_ms_p50"]) / float(results["bwrap_floor_ms_p50"]), 1)  # type: ignore[arg-type]
    results["calls_over_floor_c32"] = round(
        float(results["calls_per_s_c32"]) / float(results["floor_calls_per_s_c32"]), 2)  # type: ignore[arg-type]
    results["targets"] = {k: f"{op} {bound:g}" for k, (op, bound) in TARGETS.items()}
    results["met"] = {k: _met(float(results[k]), v)  # type: ignore[arg-type]
                      for k, v in TARGETS.items()}
    results["samples_per_metric"] = n
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sandgate bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args.quick)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
