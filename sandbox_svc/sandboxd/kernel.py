"""A persistent IPython kernel: a real ipykernel driven by jupyter_client.

The kernel talks ZeroMQ over the ``ipc`` transport; its connection file and
socket files live in a private runtime directory (removed on shutdown). It is
started on the first cell (once, even when the first cells race), runs one cell
at a time, and works in the workspace. A timeout interrupts the cell (SIGINT),
keeps the kernel's state and ends the cell with a TIMEOUT result; a kernel that
dies is restarted and the cell's result says so. jupyter_client is imported on
first use: it is slow to import and the daemon's start-up is on the sandbox's
cold path; for the same reason the stdlib modules needed only once cells run
are imported where they are used.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidInputError, KernelUnavailableError
from .exec import StreamName, base_environment
from .limits import Limits, resolve_timeout

if TYPE_CHECKING:
    from jupyter_client.asynchronous.client import AsyncKernelClient
    from jupyter_client.manager import AsyncKernelManager

__all__ = [
    "CellEvent",
    "CellResult",
    "CellStatus",
    "CodeError",
    "KernelSession",
    "RichOutput",
    "StreamText",
]

logger = logging.getLogger(__name__)

_POLL_S = 0.2
"""How often a quiet cell checks that the kernel is still alive."""
_REPLY_WAIT_S = 2.0
_MAX_SOCKET_PATH = 100  # AF_UNIX paths must stay under 108 bytes


@dataclass(frozen=True)
class StreamText:
    stream: StreamName
    text: str


@dataclass(frozen=True)
class RichOutput:
    data: tuple[tuple[str, bytes], ...]
    """(mime type, bytes): text as UTF-8, binary formats (image/png) decoded."""
    is_result: bool


@dataclass(frozen=True)
class CodeError:
    name: str
    value: str
    traceback: tuple[str, ...]


class CellStatus(enum.Enum):
    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    """The cell ran past its timeout and was interrupted."""
    KERNEL_RESTARTED = "kernel_restarted"


@dataclass(frozen=True)
class CellResult:
    status: CellStatus
    execution_count: int
    kernel_restarted: bool
    """The kernel had died (before or during the cell) and was restarted."""
    duration_s: float


CellEvent = StreamText | RichOutput | CodeError | CellResult


@dataclass
class _Kernel:
    manager: AsyncKernelManager
    client: AsyncKernelClient
    runtime_dir: Path


class KernelSession:
    """One IPython kernel for the sandbox's lifetime (restarted if it dies)."""

    def __init__(
        self,
        *,
        workspace: Path,
        limits: Limits,
        runtime_base: Path | None = None,
        start_timeout_s: float = 60.0,
        interrupt_grace_s: float = 5.0,
    ) -> None:
        """
        Args:
            workspace: The kernel's working directory.
            limits: Timeout range and the per-cell output budget.
            runtime_base: Where the private runtime directory is made (default:
                the system temporary directory).
            start_timeout_s: Bound on starting the kernel.
            interrupt_grace_s: How long an interrupted cell may take to stop
                before the kernel is restarted.
        """
        self._workspace = workspace
        self._limits = limits
        self._runtime_base = runtime_base
        self._start_timeout_s = start_timeout_s
        self._interrupt_grace_s = interrupt_grace_s
        self._kernel: _Kernel | None = None
        self._start_lock = asyncio.Lock()
        self._cell_lock = asyncio.Lock()
        self._closed = False
        self.starts = 0
        """How many kernels were started (observability and tests)."""

    @property
    def runtime_dir(self) -> Path | None:
        return self._kernel.runtime_dir if self._kernel else None

    async def start(self) -> None:
        """Start the kernel unless it runs; concurrent callers share one start."""
        await self._ensure_started()

    async def prime(self) -> None:
        """Start the kernel and run one silent no-op on it, so that the first real
        cell pays neither the start nor the kernel's first-execution set-up.

        Raises:
            KernelUnavailableError: the kernel could not be started.
        """
        async with self._cell_lock:
            kernel = await self._ensure_started()
            msg_id: str = kernel.client.execute(
                "pass", silent=True, store_history=False, allow_stdin=False)
            # Its iopub messages are skipped by the next cell (another msg_id).
            await _shell_reply(kernel.client, msg_id, _REPLY_WAIT_S)

    async def run(
        self, code: str, *, timeout_s: float | None = None
    ) -> AsyncGenerator[CellEvent, None]:
        """Run one cell; yield its output as it arrives, then one CellResult.

        A cell that runs past its timeout is interrupted; its CellResult then has
        status TIMEOUT (and ``kernel_restarted`` when it would not stop).

        Raises:
            InvalidInputError: empty code, or timeout out of range.
            KernelUnavailableError: the kernel could not be started.
        """
        timeout = resolve_timeout(timeout_s, self._limits)
        if not code.strip():
            raise InvalidInputError("code is empty; give the Python source of one cell")
        async with self._cell_lock:
            kernel = await self._ensure_started()
            restarted = False
            if not await kernel.manager.is_alive():
                logger.warning("kernel died between cells; restarting it")
                kernel = await self._restart()
                restarted = True
            async with aclosing(self._execute(kernel, code, timeout, restarted)) as events:
                async for event in events:
                    yield event

    async def shutdown(self) -> None:
        """Stop the kernel and remove its runtime directory; later cells fail."""
        async with self._start_lock:
            self._closed = True
            if self._kernel is not None:
                kernel, self._kernel = self._kernel, None
                await self._stop(kernel)

    # --- lifecycle --------------------------------------------------------

    async def _ensure_started(self) -> _Kernel:
        async with self._start_lock:
            if self._closed:
                raise KernelUnavailableError("the kernel is shut down; the daemon is stopping")
            if self._kernel is None:
                self._kernel = await self._start()
            return self._kernel

    async def _restart(self) -> _Kernel:
        async with self._start_lock:
            if self._kernel is not None:
                kernel, self._kernel = self._kernel, None
                await self._stop(kernel)
            if self._closed:
                raise KernelUnavailableError("the kernel is shut down; the daemon is stopping")
            self._kernel = await self._start()
            return self._kernel

    async def _start(self) -> _Kernel:
        import shutil
        import tempfile

        from jupyter_client.manager import AsyncKernelManager

        runtime_dir = Path(
            await asyncio.to_thread(
                tempfile.mkdtemp, prefix="sandgate-kernel-", dir=self._runtime_base
            )
        )
        if len(os.fspath(runtime_dir / "k-00000")) > _MAX_SOCKET_PATH:
            shutil.rmtree(runtime_dir, ignore_errors=True)
            raise KernelUnavailableError(
                f"kernel runtime directory {runtime_dir} is too long for a Unix socket path"
            )
        env = base_environment(os.fspath(self._workspace))
        env["IPYTHONDIR"] = os.fspath(runtime_dir / "ipython")
        env["JUPYTER_RUNTIME_DIR"] = os.fspath(runtime_dir)
        env["MPLCONFIGDIR"] = os.fspath(runtime_dir / "matplotlib")
        manager = AsyncKernelManager(
            kernel_name="python3",
            transport="ipc",
            ip=os.fspath(runtime_dir / "k"),
            connection_file=os.fspath(runtime_dir / "kernel.json"),
        )
        client = None
        try:
            async with asyncio.timeout(self._start_timeout_s):
                await manager.start_kernel(
                    cwd=os.fspath(self._workspace),
                    env=env,
                    extra_arguments=["--InteractiveShell.colors=nocolor"],
                )
                client = manager.client()
                client.start_channels()
                await client.wait_for_ready(timeout=self._start_timeout_s)
        except BaseException as exc:
            # Also on cancellation: a half-started kernel must not outlive its start.
            if client is not None:
                client.stop_channels()
            await self._stop_manager(manager)
            await asyncio.to_thread(shutil.rmtree, runtime_dir, True)
            if not isinstance(exc, Exception):
                raise
            # jupyter_client and zmq fail in many ways; all of them mean the same here.
            logger.error("kernel failed to start", exc_info=exc)
            raise KernelUnavailableError(
                f"the Python kernel could not be started ({type(exc).__name__}); retry the cell"
            ) from exc
        self.starts += 1
        return _Kernel(manager=manager, client=client, runtime_dir=runtime_dir)

    async def _stop(self, kernel: _Kernel) -> None:
        import shutil

        kernel.client.stop_channels()
        await self._stop_manager(kernel.manager)
        await asyncio.to_thread(shutil.rmtree, kernel.runtime_dir, True)

    @staticmethod
    async def _stop_manager(manager: AsyncKernelManager) -> None:
        try:
            async with asyncio.timeout(10.0):
                await manager.shutdown_kernel(now=True)
        except Exception:  # best effort: the process group is killed either way
            logger.exception("kernel did not shut down cleanly")

    # --- one cell ---------------------------------------------------------

    async def _execute(
        self, kernel: _Kernel, code: str, timeout: float, restarted: bool
    ) -> AsyncGenerator[CellEvent, None]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + timeout
        client = kernel.client
        msg_id: str = client.execute(code, store_history=True, allow_stdin=False)
        budget = _OutputBudget(self._limits.max_cell_output_bytes)
        count = 0
        failed = False
        settled = False
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    async with aclosing(self._interrupt(kernel, msg_id, budget)) as late:
                        async for event in late:
                            yield event
                    settled = True
                    yield CellResult(CellStatus.TIMEOUT, count,
                                     restarted or self._kernel is not kernel,
                                     loop.time() - started)
                    return
                msg = await _next_iopub(client, min(remaining, _POLL_S))
                if msg is None:
                    if await kernel.manager.is_alive():
                        continue
                    async with aclosing(_drain(client, msg_id, budget)) as last_words:
                        async for event in last_words:
                            yield event
                    logger.warning("kernel died during a cell; restarting it")
                    settled = True
                    await self._restart()
                    yield CellResult(
                        CellStatus.KERNEL_RESTARTED, count, True, loop.time() - started
                    )
                    return
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue  # left over from an interrupted cell
                kind, content = msg["msg_type"], msg["content"]
                if kind == "status" and content.get("execution_state") == "idle":
                    break
                if kind == "execute_input":
                    count = int(content.get("execution_count") or 0)
                failed = failed or kind == "error"
                for event in budget.admit(_to_event(kind, content)):
                    yield event
            settled = True
            reply = await _shell_reply(client, msg_id, _REPLY_WAIT_S)
            if reply is not None:
                count = int(reply["content"].get("execution_count") or count)
            status = CellStatus.ERROR if failed else CellStatus.OK
            yield CellResult(status, count, restarted, loop.time() - started)
        finally:
            if not settled:  # the caller went away mid-cell: stop the cell
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(1.0):
                        await kernel.manager.interrupt_kernel()

    async def _interrupt(
        self, kernel: _Kernel, msg_id: str, budget: _OutputBudget
    ) -> AsyncGenerator[CellEvent, None]:
        """Interrupt the cell and stream what it prints until idle; restart the
        kernel if it does not stop within the grace."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await kernel.manager.interrupt_kernel()
        until = loop.time() + self._interrupt_grace_s
        idle = False
        while not idle and (left := until - loop.time()) > 0:
            msg = await _next_iopub(kernel.client, min(left, _POLL_S))
            if msg is None:
                if not await kernel.manager.is_alive():
                    break
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content.get("execution_state") == "idle":
                idle = True
            elif not (kind == "error" and content.get("ename") == "KeyboardInterrupt"):
                for event in budget.admit(_to_event(kind, content)):
                    yield event
        if idle:
            await _shell_reply(kernel.client, msg_id, _REPLY_WAIT_S)
        else:
            logger.warning("interrupted cell did not stop; restarting the kernel")
            await self._restart()


class _OutputBudget:
    """Caps what one cell may send; past the cap, one marker then nothing."""

    def __init__(self, cap: int) -> None:
        self._left = cap
        self._cap = cap
        self._spent = False

    def admit(self, event: CellEvent | None) -> list[CellEvent]:
        if event is None or self._spent:
            return []
        size = _size(event)
        if size <= self._left:
            self._left -= size
            return [event]
        self._spent = True
        marker = f"\n[sandgate: cell output truncated after {self._cap} bytes]\n"
        return [StreamText(StreamName.STDERR, marker)]


def _size(event: CellEvent) -> int:
    if isinstance(event, StreamText):
        return len(event.text)
    if isinstance(event, RichOutput):
        return sum(len(data) for _, data in event.data)
    if isinstance(event, CodeError):
        return sum(len(line) for line in event.traceback) + len(event.value)
    return 0


def _to_event(kind: str, content: dict[str, Any]) -> CellEvent | None:
    if kind == "stream":
        name = StreamName.STDERR if content.get("name") == "stderr" else StreamName.STDOUT
        return StreamText(name, str(content.get("text", "")))
    if kind in ("display_data", "update_display_data", "execute_result"):
        data = content.get("data") or {}
        items = tuple((mime, _mime_bytes(mime, value)) for mime, value in sorted(data.items()))
        return RichOutput(items, is_result=kind == "execute_result")
    if kind == "error":
        return CodeError(
            name=str(content.get("ename", "")),
            value=str(content.get("evalue", "")),
            traceback=tuple(str(line) for line in content.get("traceback", [])),
        )
    return None


def _mime_bytes(mime: str, value: object) -> bytes:
    import base64
    import binascii
    import json

    if not isinstance(value, str):
        return json.dumps(value).encode()
    binary = mime in ("application/pdf", "application/octet-stream") or (
        mime.split("/")[0] in ("image", "audio", "video") and not mime.endswith("+xml")
    )
    if binary:
        try:
            return base64.b64decode(value, validate=False)
        except (binascii.Error, ValueError):
            pass
    return value.encode()


async def _next_iopub(client: AsyncKernelClient, timeout: float) -> dict[str, Any] | None:
    import queue

    try:
        msg: dict[str, Any] = await client.get_iopub_msg(timeout=timeout)
    except queue.Empty:
        return None
    return msg


async def _drain(
    client: AsyncKernelClient, msg_id: str, budget: _OutputBudget
) -> AsyncGenerator[CellEvent, None]:
    """What a dead kernel sent before it died."""
    while (msg := await _next_iopub(client, 0.05)) is not None:
        if msg["parent_header"].get("msg_id") == msg_id:
            for event in budget.admit(_to_event(msg["msg_type"], msg["content"])):
                yield event


async def _shell_reply(
    client: AsyncKernelClient, msg_id: str, wait_s: float
) -> dict[str, Any] | None:
    """The execute_reply of ``msg_id``, skipping replies of interrupted cells."""
    import queue

    loop = asyncio.get_running_loop()
    until = loop.time() + wait_s
    while (left := until - loop.time()) > 0:
        try:
            msg: dict[str, Any] = await client.get_shell_msg(timeout=left)
        except queue.Empty:
            return None
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg
    return None
