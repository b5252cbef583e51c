"""``sandgate up``: every service that exists so far, in the foreground."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from sandbox_svc.server import build_server
from sandbox_svc.settings import SandboxServiceSettings

__all__ = ["run_up"]

logger = logging.getLogger("sandgate.up")


def _say(line: str) -> None:
    print(line, flush=True)


async def run_up(config: Path | None) -> int:
    settings = SandboxServiceSettings.load(config)
    _say(f"sandgate: starting SandboxService (state {settings.state_dir}, "
         f"warm pools filling in the background)")
    running = await build_server(settings)
    pools = await running.manager.pool_status()
    keys = settings.tenant_keys()
    _say("")
    _say(f"  SandboxService (gRPC)  {running.address}"
         f"   [{'auth: bearer keys' if keys else 'no API key: loopback only'}]")
    _say("  templates              " + ", ".join(
        f"{p.template} (pool {p.target_size})" for p in pools))
    _say("")
    _say("  try it:")
    target = f" --target {running.address}" if running.port != 8002 else ""
    _say(f"    .venv/bin/sandgate sandbox create --template base{target}")
    _say(f"    .venv/bin/sandgate sandbox exec <id>{target} -- uname -a")
    _say("    .venv/bin/python -c \"from sandgate import Sandbox; "
         "s = Sandbox.create(); print(s.commands.run('echo hi').stdout); s.kill()\"")
    _say("")
    _say("  Ctrl-C stops Sandgate" + (" and deletes its sandboxes" if settings.auto_cleanup
                                      else " (sandboxes kept: AUTO_CLEANUP=false)"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    _say("sandgate: stopping")
    await running.stop()
    return 0
