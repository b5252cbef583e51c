"""BrowserAction through the real sandboxd gRPC server and the real daemon process."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import struct
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from google.protobuf.duration_pb2 import Duration
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sandbox_svc.sandboxd.browser import BrowserSession, BrowserSettings
from sandbox_svc.sandboxd.kernel import KernelSession
from sandbox_svc.sandboxd.limits import Limits
from sandbox_svc.sandboxd.paths import Workspace
from sandbox_svc.sandboxd.server import build_server
from sandgate.sandbox.v1 import runtime_service_pb2 as pb
from sandgate.sandbox.v1 import runtime_service_pb2_grpc as pb_grpc

pytestmark = pytest.mark.asyncio(loop_scope="module")

CHROMIUM = Path("/usr/bin/chromium")
if not os.access(CHROMIUM, os.X_OK):  # pragma: no cover - the platform provides it
    pytest.skip("Debian's Chromium is not installed", allow_module_level=True)

REPO = Path(__file__).resolve().parents[3]
TOKEN = "browser-test-token"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
PAGE = (
    "data:text/html,<title>Over gRPC</title><h1>Hi</h1>"
    "<button onclick=\"this.textContent='Pressed'\">Press</button>"
)


@dataclass
class Daemon:
    stub: pb_grpc.SandboxRuntimeStub
    workspace: Path


@pytest.fixture(scope="module")
def sock_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sgb-"))  # AF_UNIX paths stay short
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def serve(
    sock_dir: Path, workspace: Path, name: str, browser: BrowserSession | None
) -> AsyncIterator[Daemon]:
    kernel = KernelSession(workspace=workspace, limits=Limits())
    server = await build_server(
        workspace=workspace,
        token=TOKEN,
        listen=f"unix:{sock_dir}/{name}.sock",
        kernel=kernel,
        browser=browser,
    )
    channel = grpc.aio.insecure_channel(server.address)
    try:
        yield Daemon(pb_grpc.SandboxRuntimeStub(channel), workspace)
    finally:
        async with asyncio.timeout(30):
            await channel.close()
            await server.stop(0.5)
            await kernel.shutdown()
            if browser is not None:
                await browser.shutdown()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def daemon(sock_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Daemon]:
    workspace = tmp_path_factory.mktemp("ws")
    browser = BrowserSession(BrowserSettings(executable=CHROMIUM), Workspace(workspace))
    async for running in serve(sock_dir, workspace, "with-browser", browser):
        yield running


async def act(
    stub: pb_grpc.SandboxRuntimeStub,
    tool: str,
    timeout: Duration | None = None,
    **arguments: object,
) -> pb.BrowserActionResponse:
    request = pb.BrowserActionRequest(tool=tool, arguments_json=json.dumps(arguments))
    if timeout is not None:
        request.timeout.CopyFrom(timeout)
    reply: pb.BrowserActionResponse = await stub.BrowserAction(request, metadata=AUTH, timeout=60)
    return reply


def text_of(reply: pb.BrowserActionResponse) -> str:
    return "\n".join(c.text for c in reply.content if c.WhichOneof("block") == "text")


async def status_of(stub: pb_grpc.SandboxRuntimeStub, request: pb.BrowserActionRequest) -> object:
    try:
        await stub.BrowserAction(request, metadata=AUTH, timeout=60)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def test_browser_action_navigates_clicks_and_answers_with_content_blocks(
    daemon: Daemon,
) -> None:
    page = await act(daemon.stub, "browser_navigate", url=PAGE)
    assert not page.is_error
    text = text_of(page)
    assert "- Page Title: Over gRPC" in text and 'button "Press" [ref=' in text
    ref = text.split('button "Press" [ref=', 1)[1].split("]", 1)[0]
    clicked = await act(daemon.stub, "browser_click", ref=ref, element="Press button")
    assert 'button "Pressed"' in text_of(clicked)

    shot = await act(daemon.stub, "browser_take_screenshot", type="png")
    images = [c.image for c in shot.content if c.WhichOneof("block") == "image"]
    assert len(images) == 1 and images[0].mime_type == "image/png"
    assert images[0].data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", images[0].data[16:24]) == (1280, 720)


async def test_tool_failures_are_results_with_is_error_not_statuses(daemon: Daemon) -> None:
    await act(daemon.stub, "browser_navigate", url=PAGE)
    stale = await act(daemon.stub, "browser_click", target="e4242")
    assert stale.is_error and "browser_snapshot" in text_of(stale)
    no_dialog = await act(daemon.stub, "browser_handle_dialog", accept=True)
    assert no_dialog.is_error


async def test_bad_requests_are_invalid_argument(daemon: Daemon) -> None:
    stub = daemon.stub
    bad = [
        pb.BrowserActionRequest(tool="browser_fly", arguments_json="{}"),
        pb.BrowserActionRequest(tool="browser_navigate", arguments_json="{not json"),
        pb.BrowserActionRequest(tool="browser_navigate", arguments_json="[1, 2]"),
        pb.BrowserActionRequest(tool="browser_navigate", arguments_json="{}"),
        pb.BrowserActionRequest(tool="browser_resize", arguments_json='{"width": "wide"}'),
        pb.BrowserActionRequest(tool="browser_snapshot", timeout=Duration(seconds=100_000)),
    ]
    for request in bad:
        assert await status_of(stub, request) == grpc.StatusCode.INVALID_ARGUMENT, request
    empty_arguments = pb.BrowserActionRequest(tool="browser_snapshot", timeout=Duration(seconds=5))
    assert await status_of(stub, empty_arguments) == grpc.StatusCode.OK


async def test_a_sandbox_without_a_usable_browser_answers_unavailable(
    sock_dir: Path, tmp_path: Path
) -> None:
    request = pb.BrowserActionRequest(tool="browser_snapshot")
    async for daemon in serve(sock_dir, tmp_path, "no-browser", None):
        assert await status_of(daemon.stub, request) == grpc.StatusCode.UNAVAILABLE
    missing = BrowserSession(
        BrowserSettings(executable=tmp_path / "no-chromium"), Workspace(tmp_path)
    )
    async for daemon in serve(sock_dir, tmp_path, "missing-browser", missing):
        assert await status_of(daemon.stub, request) == grpc.StatusCode.UNAVAILABLE


# --- the daemon process: --browser-warm and SIGTERM ------------------------------------


def descendants(root: int) -> list[int]:
    """Every process below ``root`` (by parent pid)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def is_chromium(pid: int) -> bool:
    try:
        return b"chromium" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return False


async def test_the_daemon_with_browser_warm_has_chromium_up_before_the_first_call(
    tmp_path: Path,
) -> None:
    run_dir = Path(tempfile.mkdtemp(prefix="sgw-"))
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (run_dir / "token").write_text(TOKEN)
    env = {k: v for k, v in os.environ.items() if k != "SANDGATE_SANDBOXD_TOKEN"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox_svc.sandboxd",
        "--listen",
        f"unix:{run_dir}/sandboxd.sock",
        "--workspace",
        str(workspace),
        "--token-file",
        str(run_dir / "token"),
        "--browser-warm",
        "--browser-executable",
        str(CHROMIUM),
        cwd=REPO,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    options = [("grpc.initial_reconnect_backoff_ms", 20), ("grpc.max_reconnect_backoff_ms", 100)]
    try:
        async with grpc.aio.insecure_channel(
            f"unix:{run_dir}/sandboxd.sock", options=options
        ) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(
                health_pb2.HealthCheckRequest(), timeout=30, wait_for_ready=True
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            browsers = [pid for pid in descendants(process.pid) if is_chromium(pid)]
            assert browsers, "--browser-warm starts Chromium before the daemon serves"

            page = await act(pb_grpc.SandboxRuntimeStub(channel), "browser_navigate", url=PAGE)
            assert not page.is_error and "Over gRPC" in text_of(page)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            await process.communicate()
        assert process.returncode == 0
        async with asyncio.timeout(10):  # the browser goes with the daemon
            while [pid for pid in browsers if is_chromium(pid)]:
                await asyncio.sleep(0.05)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        shutil.rmtree(run_dir, ignore_errors=True)
