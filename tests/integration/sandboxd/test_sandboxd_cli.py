"""``python -m sandbox_svc.sandboxd`` as the control plane launches it: a real process."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sandgate.sandbox.v1 import runtime_service_pb2 as pb
from sandgate.sandbox.v1 import runtime_service_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[3]
TOKEN_ENV = "SANDGATE_SANDBOXD_TOKEN"


@pytest.fixture
def run_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sgd-"))  # AF_UNIX paths stay short
    yield path
    shutil.rmtree(path, ignore_errors=True)


def daemon_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    env.update(extra)
    return env


async def spawn(run_dir: Path, *args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    (run_dir / "ws").mkdir(exist_ok=True)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox_svc.sandboxd",
        "--listen",
        f"unix:{run_dir}/sandboxd.sock",
        "--workspace",
        str(run_dir / "ws"),
        *args,
        cwd=REPO,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.fixture
async def channel(run_dir: Path) -> AsyncIterator[grpc.aio.Channel]:
    # The daemon is not listening yet when the channel first connects: retry fast.
    options = [("grpc.initial_reconnect_backoff_ms", 20), ("grpc.max_reconnect_backoff_ms", 100)]
    async with grpc.aio.insecure_channel(f"unix:{run_dir}/sandboxd.sock", options=options) as chan:
        yield chan


async def wait_serving(channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=15, wait_for_ready=True)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def stop(process: asyncio.subprocess.Process) -> int:
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(20):
        await process.communicate()
        return await process.wait()


async def test_without_a_token_the_daemon_refuses_to_start(run_dir: Path) -> None:
    process = await spawn(run_dir, env=daemon_env())
    async with asyncio.timeout(20):
        _, stderr = await process.communicate()
    assert process.returncode == 2
    assert TOKEN_ENV.encode() in stderr
    assert not (run_dir / "sandboxd.sock").exists()


async def test_a_token_file_is_consumed_and_sigterm_stops_daemon_and_kernel(
    run_dir: Path, channel: grpc.aio.Channel
) -> None:
    token_file = run_dir / "token"
    token_file.write_text("file-token\n")
    runtime_base = run_dir / "kernel"
    runtime_base.mkdir()
    process = await spawn(
        run_dir,
        "--token-file",
        str(token_file),
        "--kernel-runtime-dir",
        str(runtime_base),
        env=daemon_env(),
    )
    try:
        await wait_serving(channel)
        assert not token_file.exists()
        stub = pb_grpc.SandboxRuntimeStub(channel)
        auth = (("authorization", "Bearer file-token"),)
        async with asyncio.timeout(30):
            replies = [
                r async for r in stub.RunCode(pb.RunCodeRequest(code="6 * 7"), metadata=auth)
            ]
        assert replies[-1].result.status == pb.CELL_STATUS_OK
        assert [p.name[:16] for p in runtime_base.iterdir()] == ["sandgate-kernel-"]
    finally:
        returncode = await stop(process)
    assert returncode == 0
    assert list(runtime_base.iterdir()) == []  # kernel stopped, sockets and dir removed


async def test_an_environment_token_is_not_inherited_by_commands(
    run_dir: Path, channel: grpc.aio.Channel
) -> None:
    process = await spawn(run_dir, env=daemon_env(**{TOKEN_ENV: "env-token"}))
    try:
        await wait_serving(channel)
        stub = pb_grpc.SandboxRuntimeStub(channel)
        request = pb.ExecRequest(command=f"echo ${{{TOKEN_ENV}:-unset}}")
        auth = (("authorization", "Bearer env-token"),)
        async with asyncio.timeout(10):
            replies = [r async for r in stub.Exec(request, metadata=auth)]
        assert replies[0].output.data == b"unset\n"
    finally:
        assert await stop(process) == 0


async def spawn_tcp(run_dir: Path, listen: str, *args: str) -> asyncio.subprocess.Process:
    (run_dir / "ws").mkdir(exist_ok=True)
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sandbox_svc.sandboxd", "--listen", listen,
        "--workspace", str(run_dir / "ws"), *args,
        cwd=REPO, env=daemon_env(**{TOKEN_ENV: "tcp-token"}), stderr=asyncio.subprocess.PIPE,
    )


async def read_address(path: Path, process: asyncio.subprocess.Process) -> str:
    async with asyncio.timeout(20):
        while not path.exists():
            assert process.returncode is None, "sandboxd exited before serving"
            await asyncio.sleep(0.02)
    return path.read_text().strip()


async def test_over_tcp_the_daemon_announces_its_real_port_and_serves_with_the_token(
    run_dir: Path,
) -> None:
    address_file = run_dir / "address"
    process = await spawn_tcp(run_dir, "127.0.0.1:0", "--address-file", str(address_file))
    try:
        address = await read_address(address_file, process)
        host, _, port = address.rpartition(":")
        assert host == "127.0.0.1" and int(port) > 0
        async with grpc.aio.insecure_channel(address) as channel:
            await wait_serving(channel)
            stub = pb_grpc.SandboxRuntimeStub(channel)
            auth = (("authorization", "Bearer tcp-token"),)
            async with asyncio.timeout(10):
                replies = [r async for r in stub.Exec(pb.ExecRequest(command="echo tcp"),
                                                      metadata=auth)]
            assert replies[0].output.data == b"tcp\n"
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                async with asyncio.timeout(10):
                    _ = [r async for r in stub.Exec(pb.ExecRequest(command="true"))]
            assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        assert await stop(process) == 0


@pytest.mark.parametrize("listen", ["8080", "localhost:http", "127.0.0.1:70000", "unix:"])
async def test_a_listen_address_without_a_usable_port_or_path_is_refused(
    run_dir: Path, listen: str
) -> None:
    process = await spawn_tcp(run_dir, listen)
    async with asyncio.timeout(20):
        _, stderr = await process.communicate()
    assert process.returncode == 2
    assert b"--listen" in stderr


async def test_with_kernel_warm_the_kernel_is_up_before_the_daemon_serves(
    run_dir: Path, channel: grpc.aio.Channel
) -> None:
    (run_dir / "token").write_text("warm-token\n")
    runtime_base = run_dir / "kernel"
    runtime_base.mkdir()
    process = await spawn(
        run_dir,
        "--token-file",
        str(run_dir / "token"),
        "--kernel-runtime-dir",
        str(runtime_base),
        "--kernel-warm",
        env=daemon_env(),
    )
    try:
        await wait_serving(channel)
        # No cell has run: the daemon started the kernel itself, before serving.
        assert any((d / "kernel.json").exists() for d in runtime_base.iterdir())
        stub = pb_grpc.SandboxRuntimeStub(channel)
        auth = (("authorization", "Bearer warm-token"),)
        async with asyncio.timeout(30):
            replies = [
                r async for r in stub.RunCode(pb.RunCodeRequest(code="6 * 7"), metadata=auth)
            ]
        assert replies[-1].result.status == pb.CELL_STATUS_OK
        assert len(list(runtime_base.iterdir())) == 1  # the cell ran on the warm kernel
    finally:
        returncode = await stop(process)
    assert returncode == 0
    assert list(runtime_base.iterdir()) == []
