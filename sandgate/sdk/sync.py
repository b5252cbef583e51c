"""Sandbox and ToolGateway: blocking twins of AsyncSandbox and AsyncToolGateway.

Every call runs on one private event loop in a daemon thread, because
grpc.aio channels belong to the loop that created them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Mapping
from types import TracebackType
from typing import Any, TypeVar

from sandgate.sdk.code import Execution
from sandgate.sdk.commands import CommandResult
from sandgate.sdk.deadlines import REQUEST_TIMEOUT_S
from sandgate.sdk.files import EntryInfo
from sandgate.sdk.sandbox import AsyncSandbox, SandboxInfo
from sandgate.sdk.templates import TemplateInfo
from sandgate.sdk.tools import (
    DEFAULT_CALL_TIMEOUT_S,
    DEFAULT_LIST_TIMEOUT_S,
    AsyncToolGateway,
    ToolCallResult,
    ToolInfo,
    ToolProgress,
)

__all__ = ["Sandbox", "ToolGateway"]

T = TypeVar("T")
_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


def _run(coro: Coroutine[Any, Any, T]) -> T:
    global _loop
    with _lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="sandgate-sdk", daemon=True).start()
    return asyncio.run_coroutine_threadsafe(coro, _loop).result()


class _SyncCommands:
    def __init__(self, inner: AsyncSandbox) -> None:
        self._inner = inner

    def run(self, command: str, **kwargs: Any) -> CommandResult:
        return _run(self._inner.commands.run(command, **kwargs))


class _SyncFiles:
    def __init__(self, inner: AsyncSandbox) -> None:
        self._files = inner.files

    def read(self, path: str) -> str:
        return _run(self._files.read(path))

    def read_bytes(self, path: str) -> bytes:
        return _run(self._files.read_bytes(path))

    def write(self, path: str, data: str | bytes, **kwargs: Any) -> EntryInfo:
        return _run(self._files.write(path, data, **kwargs))

    def list(self, path: str = "/workspace", depth: int = 1) -> list[EntryInfo]:
        return _run(self._files.list(path, depth))

    def get_info(self, path: str) -> EntryInfo:
        return _run(self._files.get_info(path))

    def exists(self, path: str) -> bool:
        return _run(self._files.exists(path))

    def make_dir(self, path: str) -> EntryInfo:
        return _run(self._files.make_dir(path))

    def rename(self, source: str, destination: str) -> EntryInfo:
        return _run(self._files.rename(source, destination))

    def remove(self, path: str) -> None:
        _run(self._files.remove(path))


class Sandbox:
    """Blocking client: ``Sandbox.create()``, ``sbx.commands.run(...)``, ``sbx.kill()``."""

    def __init__(self, inner: AsyncSandbox) -> None:
        self._inner = inner
        self.commands = _SyncCommands(inner)
        self.files = _SyncFiles(inner)

    @property
    def sandbox_id(self) -> str:
        return self._inner.sandbox_id

    @classmethod
    def create(cls, template: str = "", *, timeout: float | None = None,
               labels: Mapping[str, str] | None = None, target: str | None = None,
               api_key: str | None = None, request_timeout: float = REQUEST_TIMEOUT_S,
               ) -> Sandbox:
        """Start a new sandbox (see ``AsyncSandbox.create``).

        Raises:
            SandgateError: as ``AsyncSandbox.create``.
        """
        return cls(_run(AsyncSandbox.create(template, timeout=timeout, labels=labels,
                                            target=target, api_key=api_key,
                                            request_timeout=request_timeout)))

    @classmethod
    def acquire(cls, session_id: str, template: str = "", **kwargs: Any) -> Sandbox:
        return cls(_run(AsyncSandbox.acquire(session_id, template, **kwargs)))

    @classmethod
    def connect(cls, sandbox_id: str, **kwargs: Any) -> Sandbox:
        return cls(_run(AsyncSandbox.connect(sandbox_id, **kwargs)))

    @staticmethod
    def list_templates(**kwargs: Any) -> list[TemplateInfo]:
        return _run(AsyncSandbox.list_templates(**kwargs))

    @staticmethod
    def list(template: str = "", **kwargs: Any) -> list[SandboxInfo]:
        return _run(AsyncSandbox.list(template, **kwargs))

    def run_code(self, code: str, *, timeout: float | None = 60.0) -> Execution:
        return _run(self._inner.run_code(code, timeout=timeout))

    def get_info(self) -> SandboxInfo:
        return _run(self._inner.get_info())

    def set_timeout(self, seconds: float) -> None:
        _run(self._inner.set_timeout(seconds))

    def pause(self) -> None:
        _run(self._inner.pause())

    def resume(self) -> None:
        _run(self._inner.resume())

    def kill(self) -> None:
        _run(self._inner.kill())

    def close(self) -> None:
        _run(self._inner.close())

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.kill()


class ToolGateway:
    """Blocking client of the gateway's tools; arguments as for AsyncToolGateway.

    ``on_progress`` callbacks run on the SDK's own thread.
    """

    def __init__(self, target: str | None = None, api_key: str | None = None, *,
                 session: str | None = None, user: str = "", tenant: str | None = None
                 ) -> None:
        self._inner = AsyncToolGateway(target, api_key, session=session, user=user,
                                       tenant=tenant)

    @property
    def session(self) -> str:
        return self._inner.session

    def list_tools(self, *, timeout: float = DEFAULT_LIST_TIMEOUT_S) -> list[ToolInfo]:
        return _run(self._inner.list_tools(timeout=timeout))

    def call_tool(self, name: str, arguments: Mapping[str, object] | None = None, *,
                  session: str | None = None, user: str | None = None,
                  on_progress: Callable[[ToolProgress], None] | None = None,
                  timeout: float = DEFAULT_CALL_TIMEOUT_S) -> ToolCallResult:
        return _run(self._inner.call_tool(name, arguments, session=session, user=user,
                                          on_progress=on_progress, timeout=timeout))

    def close(self) -> None:
        _run(self._inner.close())

    def __enter__(self) -> ToolGateway:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
