"""Fixtures: sandbox_svc and the gateway as two processes on one fresh state dir."""

from __future__ import annotations

import faulthandler
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults.services import ServiceProcess, free_port, service_env
from tests.leftovers import Leftovers, find_leftovers

WATCHDOG_S = 300
WATCHDOG_LOG = Path(tempfile.gettempdir()) / "sandgate-fault-tests-watchdog.log"
MAX_SANDBOXES = 48
"""32 sessions, a few newcomers and replacements."""


@pytest.fixture(autouse=True)
def watchdog(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test stuck for minutes ends the run (stacks in WATCHDOG_LOG) instead of hanging it.

    A test module may set its own ``WATCHDOG_S``.
    """
    seconds = getattr(request.module, "WATCHDOG_S", WATCHDOG_S)
    with WATCHDOG_LOG.open("a") as log:
        faulthandler.dump_traceback_later(seconds, exit=True, file=log)
        yield
        faulthandler.cancel_dump_traceback_later()


LOG_DIR = Path(tempfile.gettempdir()) / "sandgate-fault-logs"
"""The services' logs of the last run of each test are kept here."""


@pytest.fixture
def state_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    # Short and world-searchable: sandboxes reach their sockets and workspaces
    # through it, and Unix socket paths must stay under 108 bytes.
    path = Path(tempfile.mkdtemp(prefix="sg-", dir="/tmp"))
    path.chmod(0o711)
    yield path
    kept = LOG_DIR / request.node.name
    shutil.rmtree(kept, ignore_errors=True)
    kept.mkdir(parents=True)
    for log in path.glob("*.log"):
        shutil.copy(log, kept / log.name)
    shutil.rmtree(path, ignore_errors=True)


@dataclass
class Deployment:
    """sandbox_svc and the gateway, each its own ``sandgate`` process."""

    state_dir: Path
    sandbox_svc: ServiceProcess
    gateway: ServiceProcess

    @property
    def sandbox_target(self) -> str:
        return self.sandbox_svc.address

    @property
    def mcp_url(self) -> str:
        return self.gateway.address

    async def start(self) -> None:
        await self.sandbox_svc.start()
        await self.gateway.start()

    def shutdown(self) -> Leftovers:
        """Stop both gracefully (sandbox_svc deletes its sandboxes); what is left."""
        self.gateway.stop()
        self.sandbox_svc.stop()
        return find_leftovers(self.state_dir)


def sandbox_server(state_dir: Path, *, max_sandboxes: int) -> ServiceProcess:
    """``sandgate sandbox-server`` on a free port: no keys, no warm pools, and a
    graceful stop deletes its sandboxes (a SIGKILL, of course, does not)."""
    port = free_port()
    target = f"127.0.0.1:{port}"
    return ServiceProcess("sandbox-server", service_env(
        SANDGATE_STATE_DIR=str(state_dir), SANDGATE_SANDBOX_PORT=str(port),
        SANDGATE_POOL_SIZE="0", SANDGATE_MAX_SANDBOXES=str(max_sandboxes),
        SANDGATE_AUTO_CLEANUP="true"), state_dir / "sandbox_svc.log", address=target,
        health=f"grpc:{target}")


@pytest.fixture
async def deployment(state_dir: Path) -> AsyncIterator[Deployment]:
    """A running deployment without API keys (loopback only) and without warm pools."""
    svc = sandbox_server(state_dir, max_sandboxes=MAX_SANDBOXES)
    http_port, grpc_port = free_port(), free_port()
    gateway = ServiceProcess("gateway-server", service_env(
        SANDGATE_GATEWAY_PORT=str(http_port), SANDGATE_GATEWAY_GRPC_PORT=str(grpc_port),
        SANDGATE_SANDBOX_TARGET=svc.address), state_dir / "gateway.log",
        address=f"http://127.0.0.1:{http_port}/mcp", health=f"http://127.0.0.1:{http_port}/healthz")
    running = Deployment(state_dir, svc, gateway)
    try:
        await running.start()
        yield running
    finally:
        try:
            if not svc.running:  # killed by a failed test: a restart re-adopts, a stop deletes
                await svc.start()
        finally:
            running.shutdown()
