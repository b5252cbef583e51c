"""gRPC face of sandboxd: proto <-> domain, and the one error mapping.

Handlers translate requests into domain calls and domain values into protos;
they hold no logic. ``STATUS_CODES`` is the only place where domain errors
become gRPC status codes; the server's error boundary (sandgate.service.boundary)
applies it to every handler and answers any other exception as INTERNAL with a
short request id, never with a stack trace or its message.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from functools import cache
from typing import TYPE_CHECKING

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from sandgate.sandbox.v1 import runtime_service_pb2 as pb
from sandgate.service.boundary import StatusTable
from sandgate.service.keys import UnauthenticatedError

from .browser.errors import BrowserUnavailableError
from .errors import (
    InvalidInputError,
    KernelUnavailableError,
    LimitExceededError,
    PathAccessDeniedError,
    PathAlreadyExistsError,
    PathNotFoundError,
    PathStateError,
)
from .exec import CommandRunner, CommandSpec, ExitEvent, StreamName
from .lazy import Lazy

if TYPE_CHECKING:  # imported on first use: only Exec is on the path of a sandbox's first call
    from .browser import BrowserContent, BrowserSession
    from .fileinfo import FileInfo, FileKind
    from .files import WorkspaceFiles
    from .kernel import CellStatus, KernelSession

__all__ = ["STATUS_CODES", "SandboxRuntimeServicer"]

STATUS_CODES: StatusTable = {
    InvalidInputError: grpc.StatusCode.INVALID_ARGUMENT,
    PathNotFoundError: grpc.StatusCode.NOT_FOUND,
    PathAlreadyExistsError: grpc.StatusCode.ALREADY_EXISTS,
    PathStateError: grpc.StatusCode.FAILED_PRECONDITION,
    PathAccessDeniedError: grpc.StatusCode.PERMISSION_DENIED,
    LimitExceededError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    KernelUnavailableError: grpc.StatusCode.UNAVAILABLE,
    BrowserUnavailableError: grpc.StatusCode.UNAVAILABLE,
    UnauthenticatedError: grpc.StatusCode.UNAUTHENTICATED,
}
"""Domain error -> status of SandboxRuntime (each RPC's comment lists them)."""

_STREAM = {StreamName.STDOUT: pb.OUTPUT_STREAM_STDOUT, StreamName.STDERR: pb.OUTPUT_STREAM_STDERR}


@cache
def _file_types() -> dict[FileKind, pb.FileType]:
    from .fileinfo import FileKind

    return {
        FileKind.FILE: pb.FILE_TYPE_FILE,
        FileKind.DIRECTORY: pb.FILE_TYPE_DIRECTORY,
        FileKind.SYMLINK: pb.FILE_TYPE_SYMLINK,
        FileKind.OTHER: pb.FILE_TYPE_OTHER,
    }


@cache
def _cell_statuses() -> dict[CellStatus, pb.CellStatus]:
    from .kernel import CellStatus

    return {
        CellStatus.OK: pb.CELL_STATUS_OK,
        CellStatus.ERROR: pb.CELL_STATUS_ERROR,
        CellStatus.TIMEOUT: pb.CELL_STATUS_TIMEOUT,
        CellStatus.KERNEL_RESTARTED: pb.CELL_STATUS_KERNEL_RESTARTED,
    }


class SandboxRuntimeServicer:
    """``sandgate.sandbox.v1.SandboxRuntime`` over the domain objects.

    Registered with ``add_SandboxRuntimeServicer_to_server``; it implements
    every RPC, so it does not inherit the generated UNIMPLEMENTED base. The
    files, the kernel and the browser are :class:`~.lazy.Lazy`: made (and their
    modules imported) by the first call that needs them.
    """

    def __init__(
        self,
        *,
        files: Lazy[WorkspaceFiles],
        commands: CommandRunner,
        kernel: Lazy[KernelSession],
        browser: Lazy[BrowserSession] | None = None,
    ) -> None:
        self._lazy_files = files
        self._commands = commands
        self._lazy_kernel = kernel
        self._lazy_browser = browser

    @property
    def _files(self) -> WorkspaceFiles:
        return self._lazy_files.get()

    async def Exec(
        self, request: pb.ExecRequest, context: grpc.aio.ServicerContext
    ) -> AsyncGenerator[pb.ExecResponse, None]:
        spec = CommandSpec(
            command=request.command,
            cwd=request.cwd,
            env=dict(request.env),
            stdin=request.stdin,
            timeout_s=_seconds(request.timeout) if request.HasField("timeout") else None,
            max_output_bytes=request.max_output_bytes,
        )
        async with aclosing(self._commands.run(spec)) as events:
            async for event in events:
                if isinstance(event, ExitEvent):
                    yield pb.ExecResponse(
                        exit=pb.ExitStatus(
                            exit_code=event.exit_code,
                            signal=event.signal,
                            truncated=event.truncated,
                            duration=_duration(event.duration_s),
                            oom_killed=event.oom_killed,
                            timed_out=event.timed_out,
                        )
                    )
                else:
                    yield pb.ExecResponse(
                        output=pb.OutputChunk(stream=_STREAM[event.stream], data=event.data)
                    )

    async def RunCode(
        self, request: pb.RunCodeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncGenerator[pb.RunCodeResponse, None]:
        from .kernel import CellResult, CellStatus, CodeError, RichOutput, StreamText

        timeout = _seconds(request.timeout) if request.HasField("timeout") else None
        cell = self._lazy_kernel.get().run(request.code, timeout_s=timeout)
        async with aclosing(cell) as events:
            async for event in events:
                if isinstance(event, StreamText):
                    yield pb.RunCodeResponse(
                        stream=pb.StreamText(stream=_STREAM[event.stream], text=event.text)
                    )
                elif isinstance(event, RichOutput):
                    data = [pb.MimeData(mime_type=m, data=d) for m, d in event.data]
                    rich = pb.RichOutput(data=data, is_result=event.is_result)
                    yield pb.RunCodeResponse(rich=rich)
                elif isinstance(event, CodeError):
                    yield pb.RunCodeResponse(
                        error=pb.CodeError(
                            name=event.name, value=event.value, traceback=list(event.traceback)
                        )
                    )
                elif isinstance(event, CellResult):
                    yield pb.RunCodeResponse(
                        result=pb.CellResult(
                            status=_cell_statuses()[event.status],
                            execution_count=event.execution_count,
                            kernel_restarted=event.kernel_restarted,
                            duration=_duration(event.duration_s),
                            timed_out=event.status is CellStatus.TIMEOUT,
                        )
                    )

    async def ReadFile(
        self, request: pb.ReadFileRequest, context: grpc.aio.ServicerContext
    ) -> AsyncGenerator[pb.ReadFileResponse, None]:
        chunks = self._files.read(request.path, offset=request.offset, limit=request.limit)
        async with aclosing(chunks) as events:
            async for chunk in events:
                if chunk.info is None:
                    yield pb.ReadFileResponse(data=chunk.data)
                else:
                    yield pb.ReadFileResponse(info=_file_info(chunk.info), data=chunk.data)

    async def WriteFile(
        self,
        request_iterator: AsyncIterator[pb.WriteFileRequest],
        context: grpc.aio.ServicerContext,
    ) -> pb.WriteFileResponse:
        first = await anext(request_iterator, None)
        if first is None or first.WhichOneof("part") != "header":
            raise InvalidInputError(
                "the first WriteFile message must be a header naming the path; "
                "data chunks follow it"
            )
        header = first.header
        info = await self._files.write(
            header.path,
            _data_chunks(request_iterator),
            mode=header.mode,
            append=header.append,
            make_parents=header.make_parents,
        )
        return pb.WriteFileResponse(info=_file_info(info))

    async def ListDirectory(
        self,
        request: pb.ListDirectoryRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.ListDirectoryResponse:
        listing = await self._files.list_directory(request.path, depth=request.depth)
        return pb.ListDirectoryResponse(
            entries=[_file_info(e) for e in listing.entries], truncated=listing.truncated
        )

    async def StatFile(
        self, request: pb.StatFileRequest, context: grpc.aio.ServicerContext
    ) -> pb.StatFileResponse:
        return pb.StatFileResponse(info=_file_info(await self._files.stat(request.path)))

    async def MakeDirectory(
        self,
        request: pb.MakeDirectoryRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.MakeDirectoryResponse:
        info = await self._files.make_directory(request.path, parents=request.parents)
        return pb.MakeDirectoryResponse(info=_file_info(info))

    async def MoveFile(
        self, request: pb.MoveFileRequest, context: grpc.aio.ServicerContext
    ) -> pb.MoveFileResponse:
        info = await self._files.move(
            request.source, request.destination, overwrite=request.overwrite
        )
        return pb.MoveFileResponse(info=_file_info(info))

    async def RemoveFile(
        self,
        request: pb.RemoveFileRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.RemoveFileResponse:
        await self._files.remove(request.path, recursive=request.recursive)
        return pb.RemoveFileResponse()

    async def EditFile(
        self, request: pb.EditFileRequest, context: grpc.aio.ServicerContext
    ) -> pb.EditFileResponse:
        from .files import TextEdit

        edits = [TextEdit(old_text=e.old_text, new_text=e.new_text) for e in request.edits]
        result = await self._files.edit(request.path, edits, dry_run=request.dry_run)
        return pb.EditFileResponse(diff=result.diff, info=_file_info(result.info))

    async def SearchFiles(
        self,
        request: pb.SearchFilesRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.SearchFilesResponse:
        result = await self._files.search(
            request.path,
            request.pattern,
            exclude_patterns=list(request.exclude_patterns),
            max_results=request.max_results,
        )
        return pb.SearchFilesResponse(paths=result.paths, truncated=result.truncated)

    async def BrowserAction(
        self,
        request: pb.BrowserActionRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.BrowserActionResponse:
        from .browser import parse_arguments

        if self._lazy_browser is None:
            raise BrowserUnavailableError("this sandbox has no browser")
        result = await self._lazy_browser.get().call(
            request.tool,
            parse_arguments(request.arguments_json),
            timeout_s=_seconds(request.timeout) if request.HasField("timeout") else None,
        )
        return pb.BrowserActionResponse(
            content=[_browser_content(c) for c in result.content], is_error=result.is_error
        )


async def _data_chunks(
    requests: AsyncIterator[pb.WriteFileRequest],
) -> AsyncGenerator[bytes, None]:
    async for request in requests:
        if request.WhichOneof("part") == "header":
            raise InvalidInputError("only the first WriteFile message may be a header")
        yield request.data


def _seconds(duration: Duration) -> float:
    return duration.seconds + duration.nanos / 1e9


def _duration(seconds: float) -> Duration:
    out = Duration()
    out.FromNanoseconds(int(seconds * 1e9))
    return out


def _timestamp(seconds: float) -> Timestamp:
    out = Timestamp()
    out.FromNanoseconds(int(seconds * 1e9))
    return out


def _file_info(info: FileInfo) -> pb.FileInfo:
    return pb.FileInfo(
        path=info.path,
        name=info.name,
        type=_file_types()[info.kind],
        size=info.size,
        mode=info.mode,
        modified_at=_timestamp(info.modified_at),
        accessed_at=_timestamp(info.accessed_at),
    )


def _browser_content(block: BrowserContent) -> pb.BrowserContent:
    from .browser import ImageContent

    if isinstance(block, ImageContent):
        return pb.BrowserContent(image=pb.BrowserImage(data=block.data, mime_type=block.mime_type))
    return pb.BrowserContent(text=block.text)
