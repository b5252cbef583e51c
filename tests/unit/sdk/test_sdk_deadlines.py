"""Every SDK call carries a deadline, and a sandbox's timeout is told from the client's.

Calls go to a fake server: a real gRPC server on 127.0.0.1:0 in this process
that serves both SandboxService and SandboxRuntime, records the deadline each
call arrived with, and answers as the test tells it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from sandgate.sandbox.v1 import runtime_service_pb2 as rpb
from sandgate.sandbox.v1 import runtime_service_pb2_grpc as rpb_grpc
from sandgate.sandbox.v1 import sandbox_service_pb2 as pb
from sandgate.sandbox.v1 import sandbox_service_pb2_grpc as pb_grpc
from sandgate.sdk import AsyncSandbox, TimeoutException
from sandgate.sdk.deadlines import ACQUIRE_TIMEOUT_S, REQUEST_TIMEOUT_S


class FakeServer(pb_grpc.SandboxServiceServicer, rpb_grpc.SandboxRuntimeServicer):  # type: ignore[misc]
    """A fake of sandbox_svc and sandboxd at once: records deadlines, answers as told."""

    def __init__(self) -> None:
        self.deadlines: dict[str, float | None] = {}
        self.target = ""
        self.timed_out = False
        """Exec and RunCode end as if the sandbox's timeout hit."""
        self.stall = False
        """StatFile never answers."""

    def _seen(self, name: str, context: grpc.aio.ServicerContext) -> None:
        self.deadlines[name] = context.time_remaining()

    def _connected(self) -> dict[str, Any]:
        return {"sandbox": pb.Sandbox(sandbox_id="sbx-fake", template="base"),
                "connection": pb.SandboxConnection(target=self.target, token="t")}

    async def CreateSandbox(self, request: Any, context: Any) -> pb.CreateSandboxResponse:
        self._seen("CreateSandbox", context)
        return pb.CreateSandboxResponse(**self._connected())

    async def AcquireSandbox(self, request: Any, context: Any) -> pb.AcquireSandboxResponse:
        self._seen("AcquireSandbox", context)
        return pb.AcquireSandboxResponse(**self._connected())

    async def GetSandbox(self, request: Any, context: Any) -> pb.GetSandboxResponse:
        self._seen("GetSandbox", context)
        return pb.GetSandboxResponse(**self._connected())

    async def ListSandboxes(self, request: Any, context: Any) -> pb.ListSandboxesResponse:
        self._seen("ListSandboxes", context)
        return pb.ListSandboxesResponse()

    async def RenewSandbox(self, request: Any, context: Any) -> pb.RenewSandboxResponse:
        self._seen("RenewSandbox", context)
        return pb.RenewSandboxResponse()

    async def PauseSandbox(self, request: Any, context: Any) -> pb.PauseSandboxResponse:
        self._seen("PauseSandbox", context)
        return pb.PauseSandboxResponse()

    async def ResumeSandbox(self, request: Any, context: Any) -> pb.ResumeSandboxResponse:
        self._seen("ResumeSandbox", context)
        return pb.ResumeSandboxResponse()

    async def DeleteSandbox(self, request: Any, context: Any) -> pb.DeleteSandboxResponse:
        self._seen("DeleteSandbox", context)
        return pb.DeleteSandboxResponse()

    async def Exec(self, request: Any, context: Any) -> AsyncIterator[rpb.ExecResponse]:
        self._seen("Exec", context)
        yield rpb.ExecResponse(output=rpb.OutputChunk(stream=rpb.OUTPUT_STREAM_STDOUT,
                                                      data=b"started\n"))
        yield rpb.ExecResponse(exit=rpb.ExitStatus(
            exit_code=137 if self.timed_out else 0, signal=9 if self.timed_out else 0,
            timed_out=self.timed_out))

    async def RunCode(self, request: Any, context: Any) -> AsyncIterator[rpb.RunCodeResponse]:
        self._seen("RunCode", context)
        yield rpb.RunCodeResponse(stream=rpb.StreamText(stream=rpb.OUTPUT_STREAM_STDOUT,
                                                        text="working\n"))
        yield rpb.RunCodeResponse(result=rpb.CellResult(
            status=rpb.CELL_STATUS_TIMEOUT if self.timed_out else rpb.CELL_STATUS_OK,
            timed_out=self.timed_out))

    async def ReadFile(self, request: Any, context: Any) -> AsyncIterator[rpb.ReadFileResponse]:
        self._seen("ReadFile", context)
        yield rpb.ReadFileResponse(data=b"x")

    async def WriteFile(self, requests: Any, context: Any) -> rpb.WriteFileResponse:
        self._seen("WriteFile", context)
        async for _ in requests:
            pass
        return rpb.WriteFileResponse()

    async def ListDirectory(self, request: Any, context: Any) -> rpb.ListDirectoryResponse:
        self._seen("ListDirectory", context)
        return rpb.ListDirectoryResponse()

    async def StatFile(self, request: Any, context: Any) -> rpb.StatFileResponse:
        self._seen("StatFile", context)
        if self.stall:
            await asyncio.sleep(30)
        return rpb.StatFileResponse()

    async def MakeDirectory(self, request: Any, context: Any) -> rpb.MakeDirectoryResponse:
        self._seen("MakeDirectory", context)
        return rpb.MakeDirectoryResponse()

    async def MoveFile(self, request: Any, context: Any) -> rpb.MoveFileResponse:
        self._seen("MoveFile", context)
        return rpb.MoveFileResponse()

    async def RemoveFile(self, request: Any, context: Any) -> rpb.RemoveFileResponse:
        self._seen("RemoveFile", context)
        return rpb.RemoveFileResponse()

    async def BrowserAction(self, request: Any, context: Any) -> rpb.BrowserActionResponse:
        self._seen("BrowserAction", context)
        return rpb.BrowserActionResponse()


@pytest.fixture
async def fake() -> AsyncIterator[FakeServer]:
    servicer = FakeServer()
    server = grpc.aio.server()
    pb_grpc.add_SandboxServiceServicer_to_server(servicer, server)
    rpb_grpc.add_SandboxRuntimeServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    servicer.target = f"127.0.0.1:{port}"
    await server.start()
    yield servicer
    await server.stop(0)


async def test_every_call_carries_a_deadline_when_the_caller_gives_none(
        fake: FakeServer) -> None:
    async with asyncio.timeout(20):
        sbx = await AsyncSandbox.create(target=fake.target, api_key="")
        await sbx.commands.run("echo started", timeout=None)
        await sbx.run_code("1", timeout=None)
        await sbx.files.write("a", "x")
        await sbx.files.read("a")
        await sbx.files.list()
        await sbx.files.get_info("a")
        await sbx.files.make_dir("d")
        await sbx.files.rename("a", "b")
        await sbx.files.remove("b")
        await sbx.browser.call("browser_snapshot")
        await sbx.get_info()
        await sbx.set_timeout(60)
        await sbx.pause()
        await sbx.resume()
        await sbx.kill()
        await AsyncSandbox.list(target=fake.target, api_key="")
        await (await AsyncSandbox.connect("sbx-fake", target=fake.target, api_key="")).close()
        await (await AsyncSandbox.acquire("s1", target=fake.target, api_key="")).close()
    assert len(fake.deadlines) == 18
    unbounded = [name for name, left in fake.deadlines.items() if left is None]
    assert unbounded == []
    # The defaults (a second's leeway: gRPC rounds the deadline it sends).
    assert fake.deadlines["AcquireSandbox"] <= ACQUIRE_TIMEOUT_S + 1  # type: ignore[operator]
    assert fake.deadlines["StatFile"] <= REQUEST_TIMEOUT_S + 1  # type: ignore[operator]


async def test_a_command_past_the_sandboxs_timeout_raises_with_the_timed_out_partial_result(
        fake: FakeServer) -> None:
    fake.timed_out = True
    sbx = await AsyncSandbox.connect("sbx-fake", target=fake.target, api_key="")
    try:
        with pytest.raises(TimeoutException) as command:
            await sbx.commands.run("echo started; sleep 9", timeout=1)
        with pytest.raises(TimeoutException) as cell:
            await sbx.run_code("import time; time.sleep(9)", timeout=1)
    finally:
        await sbx.close()
    assert command.value.sandbox_timeout and command.value.code is None
    partial = command.value.partial
    assert (partial.stdout, partial.exit_code, partial.timed_out) == (  # type: ignore[union-attr]
        "started\n", 137, True)
    assert "timed out after 1 s" in str(command.value)
    assert cell.value.sandbox_timeout
    assert cell.value.partial.stdout == ["working\n"]  # type: ignore[union-attr]


async def test_the_clients_own_deadline_is_a_timeout_without_a_timed_out_result(
        fake: FakeServer) -> None:
    fake.stall = True
    sbx = await AsyncSandbox.connect("sbx-fake", target=fake.target, api_key="",
                                     request_timeout=0.2)
    try:
        with pytest.raises(TimeoutException) as waited:
            await sbx.files.get_info("a")
    finally:
        await sbx.close()
    assert waited.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert not waited.value.sandbox_timeout
