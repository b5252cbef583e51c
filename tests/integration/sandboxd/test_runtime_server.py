"""sandboxd end to end: the real server on a Unix socket, a real grpc.aio client."""

from __future__ import annotations

import asyncio
import shutil
import struct
import tempfile
import zlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from sandbox_svc.sandboxd.kernel import CellEvent, KernelSession
from sandbox_svc.sandboxd.limits import Limits
from sandbox_svc.sandboxd.server import build_server
from sandgate.sandbox.v1 import runtime_service_pb2 as pb
from sandgate.sandbox.v1 import runtime_service_pb2_grpc as pb_grpc

TOKEN = "per-sandbox-test-token"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
LIMITS = Limits(max_file_bytes=256 * 1024)


@dataclass
class Daemon:
    stub: pb_grpc.SandboxRuntimeStub
    channel: grpc.aio.Channel
    workspace: Path


class BrokenKernel(KernelSession):
    """A kernel whose cells fail in a way the domain does not know."""

    async def run(self, code: str, *, timeout_s: float | None = None) -> AsyncIterator[CellEvent]:
        raise RuntimeError("secret internals /etc/shadow")
        yield  # pragma: no cover - makes this an async generator


@pytest.fixture
def kernel_class() -> type[KernelSession]:
    return KernelSession


@pytest.fixture
async def daemon(tmp_path: Path, kernel_class: type[KernelSession]) -> AsyncIterator[Daemon]:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("s3cret")
    (tmp_path / "memory.events").write_text("oom 0\noom_kill 0\n")
    sock_dir = Path(tempfile.mkdtemp(prefix="sgd-"))  # AF_UNIX paths stay short
    kernel = kernel_class(workspace=workspace, limits=LIMITS)
    server = await build_server(
        workspace=workspace,
        token=TOKEN,
        listen=f"unix:{sock_dir}/sandboxd.sock",
        kernel=kernel,
        limits=LIMITS,
        oom_file=tmp_path / "memory.events",
    )
    channel = grpc.aio.insecure_channel(server.address)
    try:
        yield Daemon(pb_grpc.SandboxRuntimeStub(channel), channel, workspace)
    finally:
        async with asyncio.timeout(30):
            await channel.close()
            await server.stop(0.5)
            await kernel.shutdown()
        shutil.rmtree(sock_dir, ignore_errors=True)


async def status_of(call: object) -> grpc.StatusCode:
    """The status code a call (unary or streaming) ends with."""
    try:
        async with asyncio.timeout(30):
            if hasattr(call, "__aiter__"):
                async for _ in call:  # type: ignore[attr-defined]
                    pass
            else:
                await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def responses(call: object) -> tuple[list[object], grpc.aio.AioRpcError | None]:
    """Every message of a server stream, then the error it ended with (if any)."""
    got: list[object] = []
    try:
        async with asyncio.timeout(30):
            async for message in call:  # type: ignore[attr-defined]
                got.append(message)
    except grpc.aio.AioRpcError as exc:
        return got, exc
    return got, None


async def write_requests(
    path: str, *parts: bytes, **header: object
) -> AsyncIterator[pb.WriteFileRequest]:
    yield pb.WriteFileRequest(header=pb.WriteFileHeader(path=path, **header))  # type: ignore[arg-type]
    for part in parts:
        yield pb.WriteFileRequest(data=part)


def stdout_of(messages: Sequence[object]) -> bytes:
    return b"".join(
        m.output.data  # type: ignore[attr-defined]
        for m in messages
        if m.WhichOneof("event") == "output"  # type: ignore[attr-defined]
        and m.output.stream == pb.OUTPUT_STREAM_STDOUT  # type: ignore[attr-defined]
    )


# --- authentication -----------------------------------------------------------


async def test_calls_without_the_right_token_are_unauthenticated(daemon: Daemon) -> None:
    stub = daemon.stub
    wrong = (("authorization", "Bearer not-the-token"),)
    request = pb.StatFileRequest(path="")
    assert await status_of(stub.StatFile(request)) == grpc.StatusCode.UNAUTHENTICATED
    assert (
        await status_of(stub.StatFile(request, metadata=wrong)) == grpc.StatusCode.UNAUTHENTICATED
    )
    exec_call = stub.Exec(pb.ExecRequest(command="touch pwned"), metadata=wrong)
    assert await status_of(exec_call) == grpc.StatusCode.UNAUTHENTICATED
    write = stub.WriteFile(write_requests("pwned", b"x"), metadata=wrong)
    assert await status_of(write) == grpc.StatusCode.UNAUTHENTICATED
    assert list(daemon.workspace.iterdir()) == []
    assert await status_of(stub.StatFile(request, metadata=AUTH)) == grpc.StatusCode.OK


async def test_health_answers_without_a_token_and_reflection_lists_the_service(
    daemon: Daemon,
) -> None:
    health = health_pb2_grpc.HealthStub(daemon.channel)
    for service in ("", "sandgate.sandbox.v1.SandboxRuntime"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

    reflection = reflection_pb2_grpc.ServerReflectionStub(daemon.channel)
    call = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), metadata=AUTH
    )
    async with asyncio.timeout(5):
        reply = await call.read()
    call.cancel()
    names = {s.name for s in reply.list_services_response.service}
    assert "sandgate.sandbox.v1.SandboxRuntime" in names


# --- files --------------------------------------------------------------------


async def test_files_round_trip_through_every_file_rpc(daemon: Daemon) -> None:
    stub, ws = daemon.stub, daemon.workspace
    payload = bytes(range(256)) * 1000  # 256 000 bytes: several read chunks
    written = await stub.WriteFile(
        write_requests(
            "/workspace/data/blob.bin", payload[:100_000], payload[100_000:], make_parents=True
        ),
        metadata=AUTH,
    )
    assert written.info.path == "/workspace/data/blob.bin" and written.info.size == len(payload)

    chunks, error = await responses(
        stub.ReadFile(pb.ReadFileRequest(path="data/blob.bin"), metadata=AUTH)
    )
    assert error is None and len(chunks) > 1
    assert chunks[0].HasField("info") and not chunks[1].HasField("info")  # type: ignore[attr-defined]
    assert b"".join(c.data for c in chunks) == payload  # type: ignore[attr-defined]

    stat = await stub.StatFile(pb.StatFileRequest(path="data"), metadata=AUTH)
    assert stat.info.type == pb.FILE_TYPE_DIRECTORY

    made = await stub.MakeDirectory(
        pb.MakeDirectoryRequest(path="a/b", parents=True), metadata=AUTH
    )
    assert made.info.path == "/workspace/a/b"

    moved = await stub.MoveFile(
        pb.MoveFileRequest(source="data/blob.bin", destination="a/b/blob.bin"), metadata=AUTH
    )
    assert moved.info.path == "/workspace/a/b/blob.bin"

    listing = await stub.ListDirectory(pb.ListDirectoryRequest(path="", depth=3), metadata=AUTH)
    assert [e.path for e in listing.entries] == [
        "/workspace/a",
        "/workspace/a/b",
        "/workspace/a/b/blob.bin",
        "/workspace/data",
    ]

    (ws / "app.py").write_text("DEBUG = True\nPORT = 80\n")
    edited = await stub.EditFile(
        pb.EditFileRequest(
            path="app.py", edits=[pb.TextEdit(old_text="PORT = 80", new_text="PORT = 8080")]
        ),
        metadata=AUTH,
    )
    assert "+PORT = 8080" in edited.diff
    assert (ws / "app.py").read_text() == "DEBUG = True\nPORT = 8080\n"

    found = await stub.SearchFiles(pb.SearchFilesRequest(path="", pattern="*.bin"), metadata=AUTH)
    assert list(found.paths) == ["/workspace/a/b/blob.bin"] and not found.truncated

    await stub.RemoveFile(pb.RemoveFileRequest(path="a", recursive=True), metadata=AUTH)
    assert not (ws / "a").exists()


async def test_file_errors_map_to_their_status_codes(daemon: Daemon) -> None:
    stub, ws = daemon.stub, daemon.workspace
    (ws / "dir").mkdir()
    (ws / "dir" / "f").write_text("x")
    (ws / "g").write_text("y")
    (ws / "escape").symlink_to(ws.parent / "outside")
    code = grpc.StatusCode
    cases = [
        (
            stub.ReadFile(pb.ReadFileRequest(path="../outside/secret"), metadata=AUTH),
            code.INVALID_ARGUMENT,
        ),
        (
            stub.ReadFile(pb.ReadFileRequest(path="escape/secret"), metadata=AUTH),
            code.INVALID_ARGUMENT,
        ),
        (
            stub.StatFile(pb.StatFileRequest(path="/etc/passwd"), metadata=AUTH),
            code.INVALID_ARGUMENT,
        ),
        (stub.ReadFile(pb.ReadFileRequest(path="missing"), metadata=AUTH), code.NOT_FOUND),
        (stub.ReadFile(pb.ReadFileRequest(path="dir"), metadata=AUTH), code.FAILED_PRECONDITION),
        (
            stub.RemoveFile(pb.RemoveFileRequest(path="dir"), metadata=AUTH),
            code.FAILED_PRECONDITION,
        ),
        (
            stub.RemoveFile(pb.RemoveFileRequest(path="/workspace", recursive=True), metadata=AUTH),
            code.INVALID_ARGUMENT,
        ),
        (
            stub.MoveFile(pb.MoveFileRequest(source="g", destination="dir/f"), metadata=AUTH),
            code.ALREADY_EXISTS,
        ),
        (
            stub.EditFile(
                pb.EditFileRequest(path="g", edits=[pb.TextEdit(old_text="nope")]), metadata=AUTH
            ),
            code.INVALID_ARGUMENT,
        ),
        (stub.WriteFile(write_requests("new/x", b"1"), metadata=AUTH), code.NOT_FOUND),
        (
            stub.WriteFile(iter([pb.WriteFileRequest(data=b"no header")]), metadata=AUTH),
            code.INVALID_ARGUMENT,
        ),
    ]
    for call, expected in cases:
        assert await status_of(call) == expected
    assert (ws.parent / "outside" / "secret").read_text() == "s3cret"


async def test_a_write_past_the_size_limit_is_resource_exhausted(daemon: Daemon) -> None:
    call = daemon.stub.WriteFile(
        write_requests("big.bin", b"x" * 200_000, b"x" * 200_000), metadata=AUTH
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async with asyncio.timeout(10):
            await call
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(LIMITS.max_file_bytes) in (caught.value.details() or "")
    assert not (daemon.workspace / "big.bin").exists()


# --- exec ---------------------------------------------------------------------


async def test_exec_feeds_stdin_with_env_and_cwd_and_ends_with_the_exit_status(
    daemon: Daemon,
) -> None:
    (daemon.workspace / "sub").mkdir()
    request = pb.ExecRequest(
        command='read line; echo "$line/$NAME/$(basename "$PWD")"; echo oops >&2; exit 7',
        cwd="/workspace/sub",
        env={"NAME": "sandgate"},
        stdin=b"hello\n",
    )
    messages, error = await responses(daemon.stub.Exec(request, metadata=AUTH))
    assert error is None
    assert stdout_of(messages) == b"hello/sandgate/sub\n"
    last = messages[-1]
    assert last.WhichOneof("event") == "exit" and last.exit.exit_code == 7  # type: ignore[attr-defined]
    assert not last.exit.truncated  # type: ignore[attr-defined]


async def test_exec_timeout_streams_partial_output_then_a_timed_out_exit_status(
        daemon: Daemon) -> None:
    request = pb.ExecRequest(command="echo started; sleep 30", timeout=timedelta(seconds=1))
    messages, error = await responses(daemon.stub.Exec(request, metadata=AUTH))
    assert error is None  # the sandbox's timeout is a result; a status would be the caller's
    assert stdout_of(messages) == b"started\n"
    exit_ = messages[-1].exit  # type: ignore[attr-defined]
    assert (exit_.timed_out, exit_.exit_code, exit_.signal) == (True, 137, 9)


async def test_a_command_within_its_timeout_is_not_timed_out(daemon: Daemon) -> None:
    request = pb.ExecRequest(command="true", timeout=timedelta(seconds=30))
    messages, error = await responses(daemon.stub.Exec(request, metadata=AUTH))
    assert error is None and not messages[-1].exit.timed_out  # type: ignore[attr-defined]


async def test_exec_output_past_the_cap_ends_with_a_marker_and_truncated(daemon: Daemon) -> None:
    request = pb.ExecRequest(command="yes | head -c 50000", max_output_bytes=1024)
    messages, error = await responses(daemon.stub.Exec(request, metadata=AUTH))
    assert error is None
    out = stdout_of(messages)
    assert out.endswith(b"\n[sandgate: output truncated after 1024 bytes]\n")
    assert messages[-1].exit.truncated  # type: ignore[attr-defined]


async def test_a_cancelled_exec_kills_the_command(daemon: Daemon) -> None:
    request = pb.ExecRequest(command="sleep 30 & echo $! > bg.pid; echo started; sleep 30")
    call = daemon.stub.Exec(request, metadata=AUTH)
    async with asyncio.timeout(10):
        first = await call.read()
    assert first.output.data == b"started\n"  # type: ignore[union-attr]
    call.cancel()
    pid = int((daemon.workspace / "bg.pid").read_text())
    async with asyncio.timeout(10):
        while Path(f"/proc/{pid}").exists() and "Z" not in _proc_state(pid):
            await asyncio.sleep(0.02)


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"  # gone


async def test_exec_reports_a_command_killed_for_memory(daemon: Daemon) -> None:
    events = daemon.workspace.parent / "memory.events"
    # What the kernel does when the sandbox's memory limit kills the command.
    command = f"printf 'oom 1\\noom_kill 1\\n' > {events}; kill -KILL $$"
    messages, error = await responses(
        daemon.stub.Exec(pb.ExecRequest(command=command), metadata=AUTH)
    )
    assert error is None
    status = messages[-1].exit  # type: ignore[attr-defined]
    assert status.oom_killed and status.exit_code == 137 and status.signal == 9


async def test_exec_rejects_bad_input(daemon: Daemon) -> None:
    stub = daemon.stub
    for request in [
        pb.ExecRequest(command=""),
        pb.ExecRequest(command="true", cwd="../"),
        pb.ExecRequest(command="true", timeout=timedelta(hours=2)),
    ]:
        assert (
            await status_of(stub.Exec(request, metadata=AUTH)) == grpc.StatusCode.INVALID_ARGUMENT
        )


# --- run code -----------------------------------------------------------------


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff"))
        + chunk(b"IEND", b"")
    )


async def run_code(
    daemon: Daemon, code: str, timeout: timedelta | None = None
) -> tuple[list[pb.RunCodeResponse], grpc.aio.AioRpcError | None]:
    request = (
        pb.RunCodeRequest(code=code, timeout=timeout) if timeout else pb.RunCodeRequest(code=code)
    )
    messages, error = await responses(daemon.stub.RunCode(request, metadata=AUTH))
    return messages, error  # type: ignore[return-value]


def printed(messages: list[pb.RunCodeResponse]) -> str:
    return "".join(m.stream.text for m in messages if m.WhichOneof("event") == "stream")


async def test_run_code_keeps_state_and_streams_png_and_errors(daemon: Daemon) -> None:
    messages, error = await run_code(daemon, "counter = 1")
    assert error is None and messages[-1].result.status == pb.CELL_STATUS_OK

    png = tiny_png()
    messages, error = await run_code(
        daemon,
        "from IPython.display import Image, display\n"
        f"display(Image(data={png!r}))\n"
        "counter += 1\nprint(counter)",
    )
    assert error is None and printed(messages) == "2\n"
    rich = [m.rich for m in messages if m.WhichOneof("event") == "rich"]
    assert [(d.mime_type, d.data) for d in rich[0].data if d.mime_type == "image/png"] == [
        ("image/png", png)
    ]

    messages, error = await run_code(daemon, "counter / 0")
    assert error is None
    errors = [m.error for m in messages if m.WhichOneof("event") == "error"]
    assert errors[0].name == "ZeroDivisionError"
    assert messages[-1].result.status == pb.CELL_STATUS_ERROR


async def test_run_code_timeout_keeps_state_and_a_crash_is_reported_as_restart(
    daemon: Daemon,
) -> None:
    await run_code(daemon, "kept = 'yes'")
    messages, error = await run_code(
        daemon,
        "print('working', flush=True)\nimport time\ntime.sleep(30)",
        timeout=timedelta(seconds=1),
    )
    assert error is None and printed(messages) == "working\n"
    result = messages[-1].result
    assert (result.status, result.timed_out, result.kernel_restarted) == (
        pb.CELL_STATUS_TIMEOUT, True, False)

    messages, error = await run_code(daemon, "print(kept)")
    assert error is None and printed(messages) == "yes\n"

    messages, error = await run_code(daemon, "import os; os._exit(1)")
    assert error is None
    result = messages[-1].result
    assert result.status == pb.CELL_STATUS_KERNEL_RESTARTED and result.kernel_restarted

    messages, error = await run_code(daemon, "print('kept' in dir())")
    assert error is None and printed(messages) == "False\n"
    assert messages[-1].result.status == pb.CELL_STATUS_OK


async def test_run_code_rejects_empty_code(daemon: Daemon) -> None:
    _, error = await run_code(daemon, "   ")
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("kernel_class", [BrokenKernel])
async def test_an_unexpected_failure_is_internal_with_a_request_id_and_no_details(
    daemon: Daemon,
) -> None:
    _, error = await run_code(daemon, "1 + 1")
    assert error is not None and error.code() == grpc.StatusCode.INTERNAL
    details = error.details() or ""
    assert "request id" in details
    assert "secret" not in details and "Traceback" not in details
