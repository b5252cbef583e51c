"""Every service entry point logs JSON lines when SANDGATE_LOG_FORMAT=json.

Each one is started on a busy port, so it logs its start-up, then fails and exits.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENTRY_POINTS = {
    "sandgate gateway-server": ["-m", "sandgate.cli.main", "gateway-server"],
    "python -m gateway": ["-m", "gateway"],
    "sandgate sandbox-server": ["-m", "sandgate.cli.main", "sandbox-server"],
    "python -m sandbox_svc": ["-m", "sandbox_svc"],
}


@pytest.mark.parametrize("entry_point", sorted(ENTRY_POINTS))
async def test_an_entry_point_logs_one_json_object_per_line(
        entry_point: str, state_dir: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        busy = str(squatter.getsockname()[1])
        env = dict(os.environ, SANDGATE_LOG_FORMAT="json", SANDGATE_STATE_DIR=str(state_dir),
                   SANDGATE_SANDBOX_PORT=busy, SANDGATE_GATEWAY_PORT=busy,
                   SANDGATE_GATEWAY_GRPC_PORT="0", SANDGATE_SANDBOX_TARGET="127.0.0.1:1",
                   SANDGATE_POOL_SIZE="0", SANDGATE_API_KEYS="", BEARER_TOKEN="")
        ran = await asyncio.to_thread(
            subprocess.run, [sys.executable, *ENTRY_POINTS[entry_point]], cwd=ROOT, env=env,
            capture_output=True, text=True, timeout=120)
    *logged, failure = ran.stderr.strip().splitlines()
    assert ran.returncode == 2 and f"127.0.0.1:{busy}" in failure  # printed, not logged
    events = [json.loads(line) for line in logged]  # every line is one JSON object
    assert events and all({"time", "level", "logger", "message"} <= set(e) for e in events)
    assert any("loopback only" in str(e["message"]) for e in events)
