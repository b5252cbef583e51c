"""``sbx.files``: files inside the sandbox's /workspace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TypeVar

from sandgate.sandbox.v1 import runtime_service_pb2 as rpb
from sandgate.sandbox.v1 import runtime_service_pb2_grpc as rpb_grpc
from sandgate.sdk.deadlines import REQUEST_TIMEOUT_S
from sandgate.sdk.errors import NotFoundError, translated

__all__ = ["EntryInfo", "Files"]

T = TypeVar("T")
_CHUNK = 64 * 1024

_TYPES = {rpb.FILE_TYPE_FILE: "file", rpb.FILE_TYPE_DIRECTORY: "dir",
          rpb.FILE_TYPE_SYMLINK: "symlink", rpb.FILE_TYPE_OTHER: "other"}


@dataclass(frozen=True)
class EntryInfo:
    path: str
    name: str
    type: str
    """"file", "dir", "symlink" or "other"."""
    size: int
    mode: int
    modified_at: float


def _entry(info: rpb.FileInfo) -> EntryInfo:
    return EntryInfo(info.path, info.name, _TYPES.get(info.type, "other"), info.size,
                     info.mode, info.modified_at.ToNanoseconds() / 1e9)


class Files:
    """Files under the sandbox's /workspace; every call waits at most ``request_timeout``.

    Every method raises the SDK's errors: ``NotFoundError`` (no such path),
    ``InvalidArgumentError`` (a path outside /workspace), ``StateError`` (a
    directory where a file is needed, or the reverse), ``LimitExceededError``
    (a file too large), ``TimeoutException`` (the deadline passed).
    """

    def __init__(self, stub: rpb_grpc.SandboxRuntimeStub,
                 metadata: tuple[tuple[str, str], ...],
                 request_timeout: float = REQUEST_TIMEOUT_S) -> None:
        self._stub = stub
        self._opts: dict[str, object] = {"metadata": metadata, "timeout": request_timeout}

    async def read_bytes(self, path: str) -> bytes:
        async def call() -> bytes:
            parts = []
            async for chunk in self._stub.ReadFile(rpb.ReadFileRequest(path=path), **self._opts):
                parts.append(chunk.data)
            return b"".join(parts)
        return await translated(call)

    async def read(self, path: str) -> str:
        return (await self.read_bytes(path)).decode()

    async def write(self, path: str, data: str | bytes, *, make_parents: bool = True,
                    mode: int = 0) -> EntryInfo:
        payload = data.encode() if isinstance(data, str) else data

        async def parts() -> AsyncIterator[rpb.WriteFileRequest]:
            yield rpb.WriteFileRequest(header=rpb.WriteFileHeader(
                path=path, make_parents=make_parents, mode=mode))
            for start in range(0, len(payload), _CHUNK):
                yield rpb.WriteFileRequest(data=payload[start:start + _CHUNK])

        async def call() -> EntryInfo:
            reply = await self._stub.WriteFile(parts(), **self._opts)
            return _entry(reply.info)
        return await translated(call)

    async def list(self, path: str = "/workspace", depth: int = 1) -> list[EntryInfo]:
        async def call() -> list[EntryInfo]:
            reply = await self._stub.ListDirectory(
                rpb.ListDirectoryRequest(path=path, depth=depth), **self._opts)
            return [_entry(e) for e in reply.entries]
        return await translated(call)

    async def get_info(self, path: str) -> EntryInfo:
        async def call() -> EntryInfo:
            reply = await self._stub.StatFile(rpb.StatFileRequest(path=path), **self._opts)
            return _entry(reply.info)
        return await translated(call)

    async def exists(self, path: str) -> bool:
        try:
            await self.get_info(path)
        except NotFoundError:
            return False
        return True

    async def make_dir(self, path: str) -> EntryInfo:
        async def call() -> EntryInfo:
            reply = await self._stub.MakeDirectory(
                rpb.MakeDirectoryRequest(path=path, parents=True), **self._opts)
            return _entry(reply.info)
        return await translated(call)

    async def rename(self, source: str, destination: str) -> EntryInfo:
        async def call() -> EntryInfo:
            reply = await self._stub.MoveFile(
                rpb.MoveFileRequest(source=source, destination=destination), **self._opts)
            return _entry(reply.info)
        return await translated(call)

    async def remove(self, path: str) -> None:
        async def call() -> None:
            await self._stub.RemoveFile(rpb.RemoveFileRequest(path=path, recursive=True),
                                        **self._opts)
        await translated(call)
