"""The gRPC error boundary, on a real server (127.0.0.1:0) with a fake SandboxRuntime."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from operator import attrgetter
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sandgate.sandbox.v1 import runtime_service_pb2 as pb
from sandgate.sandbox.v1 import runtime_service_pb2_grpc as pb_grpc
from sandgate.service.assembly import create_grpc_server
from sandgate.service.boundary import ErrorBoundary, StatusTable, status_for
from sandgate.service.keys import Authenticator, UnauthenticatedError

RUNTIME = pb.DESCRIPTOR.services_by_name["SandboxRuntime"].full_name
TOKEN = (("authorization", "Bearer tok"),)


class ThingError(Exception):
    """Base of the fake domain's errors (unmapped itself)."""


class ThingMissingError(ThingError):
    pass


class ThingGoneError(ThingMissingError):
    """Mapped through its parent."""


class ThingBusyError(ThingError):
    """Carries its own status, like the gateway's errors."""

    code = grpc.StatusCode.UNAVAILABLE


STATUSES: StatusTable = {
    ThingMissingError: grpc.StatusCode.NOT_FOUND,
    ThingBusyError: attrgetter("code"),
    UnauthenticatedError: grpc.StatusCode.UNAUTHENTICATED,
}


async def act(what: str, context: Any) -> None:
    """Fail as the request asks."""
    if what == "missing":
        raise ThingMissingError("no thing at 'missing'; create it first")
    if what == "gone":
        raise ThingGoneError("the thing is gone")
    if what == "busy":
        raise ThingBusyError("busy; retry")
    if what == "abort":
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, "the handler said no")
    if what == "boom":
        raise RuntimeError("secret /etc/shadow")
    if what == "unmapped":
        raise ThingError("an unclassified domain error")


class FakeRuntime(pb_grpc.SandboxRuntimeServicer):  # type: ignore[misc]
    """A fake SandboxRuntime: StatFile, Exec and WriteFile fail as their request asks."""

    def __init__(self) -> None:
        self.exec_closed = asyncio.Event()
        self.write_started = False

    async def StatFile(self, request: pb.StatFileRequest, context: Any) -> pb.StatFileResponse:
        await act(request.path, context)
        return pb.StatFileResponse(info=pb.FileInfo(path=request.path))

    async def Exec(self, request: pb.ExecRequest, context: Any
                   ) -> AsyncIterator[pb.ExecResponse]:
        try:
            yield pb.ExecResponse(output=pb.OutputChunk(data=b"first"))
            if request.command == "wait":
                await asyncio.Event().wait()
            await act(request.command, context)
            yield pb.ExecResponse(exit=pb.ExitStatus(exit_code=0))
        finally:
            self.exec_closed.set()

    async def WriteFile(self, requests: AsyncIterator[pb.WriteFileRequest], context: Any
                        ) -> pb.WriteFileResponse:
        self.write_started = True
        async for _ in requests:
            pass
        return pb.WriteFileResponse()


@asynccontextmanager
async def serving(boundary: ErrorBoundary, servicer: FakeRuntime | None = None
                  ) -> AsyncIterator[grpc.aio.Channel]:
    servicer = servicer or FakeRuntime()
    server = await create_grpc_server(
        "127.0.0.1:0", lambda s: pb_grpc.add_SandboxRuntimeServicer_to_server(servicer, s),
        boundary=boundary, services=[RUNTIME])
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            yield channel
    finally:
        await server.stop(0)


async def stat(channel: grpc.aio.Channel, path: str,
               metadata: tuple[tuple[str, str], ...] = ()) -> grpc.aio.AioRpcError | None:
    try:
        async with asyncio.timeout(10):
            await pb_grpc.SandboxRuntimeStub(channel).StatFile(
                pb.StatFileRequest(path=path), metadata=metadata)
    except grpc.aio.AioRpcError as exc:
        return exc
    return None


@pytest.mark.parametrize(("path", "code"), [
    ("missing", grpc.StatusCode.NOT_FOUND),
    ("gone", grpc.StatusCode.NOT_FOUND),
    ("busy", grpc.StatusCode.UNAVAILABLE),
    ("abort", grpc.StatusCode.PERMISSION_DENIED),
])
async def test_a_domain_error_answers_its_tables_status_with_its_message(
        path: str, code: grpc.StatusCode) -> None:
    async with serving(ErrorBoundary(STATUSES, server="fake")) as channel:
        error = await stat(channel, path)
        assert await stat(channel, "fine") is None
    assert error is not None and error.code() == code
    expected = {"missing": "no thing at 'missing'; create it first", "gone": "the thing is gone",
                "busy": "busy; retry", "abort": "the handler said no"}[path]
    assert error.details() == expected


@pytest.mark.parametrize("path", ["boom", "unmapped"])
async def test_anything_else_is_internal_with_a_logged_request_id_and_nothing_leaked(
        path: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, "sandgate.service.boundary"):
        async with serving(ErrorBoundary(STATUSES, server="fake")) as channel:
            error = await stat(channel, path)
    assert error is not None and error.code() == grpc.StatusCode.INTERNAL
    details = error.details() or ""
    match = re.fullmatch(r"internal error in fake \(request id ([0-9a-f]{8})\)", details)
    assert match, details
    [record] = caplog.records
    assert match[1] in record.getMessage() and "StatFile" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] in (RuntimeError, ThingError)


async def test_a_streaming_call_sends_what_it_yielded_then_the_status() -> None:
    async with serving(ErrorBoundary(STATUSES, server="fake")) as channel:
        stub = pb_grpc.SandboxRuntimeStub(channel)
        received: list[pb.ExecResponse] = []
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async with asyncio.timeout(10):
                async for reply in stub.Exec(pb.ExecRequest(command="missing")):
                    received.append(reply)
        async with asyncio.timeout(10):
            ok = [r async for r in stub.Exec(pb.ExecRequest(command="fine"))]
    assert [r.output.data for r in received] == [b"first"]
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert ok[-1].exit.exit_code == 0


async def test_a_cancelled_stream_closes_the_handlers_generator() -> None:
    servicer = FakeRuntime()
    async with serving(ErrorBoundary(STATUSES, server="fake"), servicer) as channel:
        call = pb_grpc.SandboxRuntimeStub(channel).Exec(pb.ExecRequest(command="wait"))
        async with asyncio.timeout(10):
            first = await call.read()
            call.cancel()
            await servicer.exec_closed.wait()
    assert first.output.data == b"first"


async def test_a_domain_error_can_carry_trailers() -> None:
    boundary = ErrorBoundary(STATUSES, server="fake",
                             trailers=lambda exc: [("retry-after", "2")]
                             if isinstance(exc, ThingBusyError) else [])
    async with serving(boundary) as channel:
        busy = await stat(channel, "busy")
        missing = await stat(channel, "missing")
    assert busy is not None and dict(busy.trailing_metadata() or ())["retry-after"] == "2"
    assert missing is not None and "retry-after" not in dict(missing.trailing_metadata() or ())


async def test_authentication_refuses_a_call_before_its_handler_reads_the_request() -> None:
    servicer = FakeRuntime()
    boundary = ErrorBoundary(
        STATUSES, server="fake",
        authenticate=Authenticator({"tok": "sandbox"}).authenticate_metadata,
        open_methods=("/grpc.health.v1.Health/",))

    async def chunks() -> AsyncIterator[pb.WriteFileRequest]:
        yield pb.WriteFileRequest(data=b"x")

    async with serving(boundary, servicer) as channel:
        stub = pb_grpc.SandboxRuntimeStub(channel)
        anonymous = await stat(channel, "fine")
        wrong = await stat(channel, "fine", (("authorization", "Bearer nope"),))
        allowed = await stat(channel, "fine", TOKEN)
        with pytest.raises(grpc.aio.AioRpcError) as write:
            async with asyncio.timeout(10):
                await stub.WriteFile(chunks())
        async with asyncio.timeout(10):
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=RUNTIME))
    assert anonymous is not None and anonymous.code() == grpc.StatusCode.UNAUTHENTICATED
    assert wrong is not None and wrong.code() == grpc.StatusCode.UNAUTHENTICATED
    assert allowed is None
    assert write.value.code() == grpc.StatusCode.UNAUTHENTICATED and not servicer.write_started
    assert health.status == health_pb2.HealthCheckResponse.SERVING


class FakeContext:
    """A fake grpc.aio.ServicerContext that records aborts."""

    def __init__(self) -> None:
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted = (code, details)
        raise grpc.aio.AbortError()


async def test_cancellation_is_never_turned_into_a_status() -> None:
    async def cancelled(request: object, context: object) -> object:
        raise asyncio.CancelledError

    async def cancelled_stream(request: object, context: object) -> AsyncIterator[object]:
        yield b"one"
        raise asyncio.CancelledError

    boundary = ErrorBoundary(STATUSES, server="fake")
    unary = boundary.guard(grpc.unary_unary_rpc_method_handler(cancelled), "/x/Unary")
    stream = boundary.guard(grpc.unary_stream_rpc_method_handler(cancelled_stream), "/x/Stream")
    context = FakeContext()
    with pytest.raises(asyncio.CancelledError):
        await unary.unary_unary(None, context)
    with pytest.raises(asyncio.CancelledError):
        async for _ in stream.unary_stream(None, context):
            pass
    assert context.aborted is None


def test_the_table_is_looked_up_along_the_mro() -> None:
    assert status_for(STATUSES, ThingGoneError("x")) == grpc.StatusCode.NOT_FOUND
    assert status_for(STATUSES, ThingBusyError("x")) == grpc.StatusCode.UNAVAILABLE
    assert status_for(STATUSES, ThingError("x")) is None
    assert status_for(STATUSES, ValueError("x")) is None
