"""``python -m bench.cold_start``: where a sandbox's cold start goes, as one JSON object.

Measures ``cold_start_ms_p50`` and ``bwrap_floor_ms_p50`` as bench/run.py does
(template ``cold``: no pool, no warm kernel), the idle PSS of such a sandbox,
and a breakdown: bwrap running the sandbox's Python doing nothing
(``bwrap_python_ms_p50``) and importing what sandboxd imports before it serves
(``bwrap_python_imports_ms_p50``), each with sandboxd's interpreter flags. The
rest of a cold start is cgroups, the control plane, gRPC connects and the Exec
itself. ``cold_start_cpu_ms_p50`` is the CPU time the sandbox's processes
(bwrap, sandboxd and its threads) spent up to the first Exec's answer: on a
shared machine it moves much less with other load than the wall times do.
By default sandboxd is forked from the zygote, so the imports are paid once
(see sandbox_svc/local/zygote_main.py); ``--fresh`` starts each one afresh.
Quicker than ``make bench`` when working on start-up alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc

from bench.run import _exec_true, _idle_pss, _ms, bwrap_floor, time_runs
from sandbox_svc.local.backend import LocalBackend
from sandbox_svc.local.bwrap import (
    SANDBOX_SRC,
    SANDBOX_VENV,
    SandboxLayout,
    bwrap_argv,
    sandbox_env,
    sandboxd_command,
)
from sandbox_svc.server import build_server
from sandbox_svc.settings import SandboxServiceSettings
from sandgate.sandbox.v1 import sandbox_service_pb2 as pb
from sandgate.sandbox.v1 import sandbox_service_pb2_grpc as pb_grpc

_STARTUP_IMPORTS = ("from sandbox_svc.sandboxd.venv import enter_venv; enter_venv(); "
                    "import sandbox_svc.sandboxd.__main__, sandbox_svc.sandboxd.server")
"""What sandboxd imports before it serves (the kernel, files and browser load on first use)."""


def _cpu_ms(pids: list[int]) -> float:
    """CPU time (ms) of the processes ``pids`` and all their threads so far."""
    total_ns = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                total_ns += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue  # the thread or process is gone
    return total_ns / 1e6


def _bwrap_python(state: Path, code: str, n: int) -> list[float]:
    """bwrap with the sandbox's binds running the sandbox's Python on ``code``."""
    work = state / "py"
    (work / "ws").mkdir(parents=True, exist_ok=True)
    (work / "run").mkdir(exist_ok=True)
    root = Path(__file__).resolve().parents[1]
    layout = SandboxLayout(workspace=work / "ws", run_dir=work / "run", etc_dir=state / "etc",
                           venv=Path(sys.prefix),
                           packages=(root / "sandbox_svc", root / "sandgate"))
    python = sandboxd_command()[:sandboxd_command().index("-m")]
    assert python[0] == f"{SANDBOX_VENV}/bin/python" and SANDBOX_SRC in sandbox_env()["PYTHONPATH"]
    return time_runs(bwrap_argv(layout, [*python, "-c", code], sandbox_env()), n)


async def run(n: int, *, zygote: bool = True) -> dict[str, float]:
    state = Path(tempfile.mkdtemp(prefix="sg-cold-", dir="/tmp"))
    state.chmod(0o711)
    templates = state / "templates.yaml"
    templates.write_text("templates:\n  - {name: cold, pool_size: 0}\n")
    settings = SandboxServiceSettings(
        host="127.0.0.1", port=0, state_dir=state, pool_size=0, max_sandboxes=8,
        api_keys="", bearer_token="", auto_cleanup=True, reap_interval_s=3600.0,
        templates_file=templates, zygote=zygote)
    running = await build_server(settings)  # writes state/etc, which the bwrap runs bind
    results: dict[str, float] = {}
    try:
        results["bwrap_floor_ms_p50"] = _ms(bwrap_floor(state, n))
        results["bwrap_python_ms_p50"] = _ms(_bwrap_python(state, "pass", n))
        results["bwrap_python_imports_ms_p50"] = _ms(_bwrap_python(state, _STARTUP_IMPORTS, n))
        backend = running.manager.backend
        assert isinstance(backend, LocalBackend)
        async with grpc.aio.insecure_channel(running.address) as channel:
            control = pb_grpc.SandboxServiceStub(channel)
            cold, cpu = [], []
            for _ in range(n + 1):  # the first one warms the control plane's own paths
                start = time.perf_counter()
                reply = await control.CreateSandbox(pb.CreateSandboxRequest(template="cold"))
                await _exec_true(reply.connection.target, reply.connection.token)
                cold.append(time.perf_counter() - start)
                cpu.append(_cpu_ms(backend.pids(reply.sandbox.sandbox_id)))
                await control.DeleteSandbox(pb.DeleteSandboxRequest(
                    sandbox_id=reply.sandbox.sandbox_id))
            results["cold_start_ms_p50"] = _ms(cold[1:])
            results["cold_start_ms_min"] = round(min(cold[1:]) * 1000, 2)
            results["cold_start_cpu_ms_p50"] = round(statistics.median(cpu[1:]), 1)
            reply = await control.CreateSandbox(pb.CreateSandboxRequest(template="cold"))
            results["idle_sandbox_pss_mb"] = await _idle_pss(backend.pids,
                                                             reply.sandbox.sandbox_id)
            await control.DeleteSandbox(pb.DeleteSandboxRequest(
                sandbox_id=reply.sandbox.sandbox_id))
    finally:
        await running.stop(grace=0.5)
        shutil.rmtree(state, ignore_errors=True)
    results["cold_start_over_bwrap_floor"] = round(
        results["cold_start_ms_p50"] / results["bwrap_floor_ms_p50"], 1)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cold_start",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="samples per metric")
    parser.add_argument("--fresh", action="store_true",
                        help="start every sandboxd afresh instead of forking it from the "
                             "zygote (SANDGATE_ZYGOTE=false), to compare")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args.n, zygote=not args.fresh)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
