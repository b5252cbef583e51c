"""Fixtures: a real sandbox_svc (bwrap sandboxes), a real gateway, official MCP clients."""

from __future__ import annotations

import contextlib
import faulthandler
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from gateway.server import RunningGateway, build_gateway
from gateway.settings import GatewaySettings
from sandbox_svc.server import RunningService, build_server
from tests.integration.conftest import make_settings

SERVICE_KEY = "svc-key-for-tests"
ROOT = Path(__file__).resolve().parents[3]
ClientFactory = Callable[[str], AbstractAsyncContextManager[Client]]
"""Opens an MCP client whose tool calls run in the named session."""


WATCHDOG_S = 180
WATCHDOG_LOG = Path(tempfile.gettempdir()) / "sandgate-gateway-tests-watchdog.log"


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


@pytest.fixture
async def sandbox_service(state_dir: Path, tmp_path: Path) -> AsyncIterator[RunningService]:
    """sandbox_svc with a service key (so the gateway acts for its tenants) and a small pool.

    The browser pool stays empty: these tests drive no browser, and warm Chromium
    sandboxes would only take the CPU from the ones they do drive.
    """
    templates = tmp_path / "templates.yaml"
    templates.write_text("templates:\n  - {name: filesystem, tool_groups: [base, filesystem], "
                         "pool_size: 2}\n  - {name: browser, tool_groups: [base, filesystem, "
                         "browser], network: true, memory_mb: 2048, max_pids: 1024, "
                         "cpu_millis: 2000, pool_size: 0}\n  - {name: base, pool_size: 0}\n")
    running = await build_server(make_settings(state_dir, pool_size=None, max_sandboxes=40,
                                               templates_file=templates,
                                               bearer_token=SERVICE_KEY))
    yield running
    # Bounded: a stop that hangs (cgroups that will not go away under load) fails the
    # test instead of the whole run.
    with anyio.fail_after(60):
        await running.stop(grace=0.5)


@contextlib.asynccontextmanager
async def run_gateway(service: RunningService, **overrides: object
                      ) -> AsyncIterator[RunningGateway]:
    values: dict[str, object] = dict(port=0, grpc_port=0, sandbox_target=service.address,
                                     sandbox_key=SERVICE_KEY, progress_interval_s=0.3)
    values.update(overrides)
    running = await build_gateway(GatewaySettings(**values))  # type: ignore[arg-type]
    try:
        yield running
    finally:
        with anyio.fail_after(30):
            await running.stop(grace=0.5)


@pytest.fixture
async def gateway(sandbox_service: RunningService) -> AsyncIterator[RunningGateway]:
    """A gateway without tenant keys (loopback only)."""
    async with run_gateway(sandbox_service) as running:
        yield running


@contextlib.asynccontextmanager
async def mcp_client(url: str, headers: Mapping[str, str] | None = None, *,
                     mode: str = "auto") -> AsyncIterator[Client]:
    """The official MCP client over streamable HTTP, with per-client headers."""
    async with create_mcp_http_client(headers=dict(headers or {})) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            yield client


def sandgate_mcp(*args: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    """``sandgate mcp`` as a stdio server the official client launches."""
    return StdioServerParameters(command=sys.executable,
                                 args=["-m", "sandgate.cli.main", "mcp", *args],
                                 cwd=str(ROOT), env=env)


@pytest.fixture(params=["http", "stdio"])
def connect(request: pytest.FixtureRequest, gateway: RunningGateway,
            sandbox_service: RunningService) -> ClientFactory:
    """An MCP client over streamable HTTP (the gateway) or stdio (``sandgate mcp``)."""
    if request.param == "http":
        return lambda session: mcp_client(gateway.mcp_url, {"X-Sandgate-Session": session})

    @contextlib.asynccontextmanager
    async def stdio(session: str) -> AsyncIterator[Client]:
        params = sandgate_mcp("--target", sandbox_service.address, "--api-key", SERVICE_KEY,
                              "--session", session)
        async with Client(params) as client:
            yield client

    return stdio
