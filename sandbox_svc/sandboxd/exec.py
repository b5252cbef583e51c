"""Shell commands: ``/bin/sh -c`` in its own process group, output streamed.

A command gets a clean environment, a working directory inside the workspace,
its stdin bytes (then EOF), a timeout that kills its whole process group (the
run then ends with an exit event marked ``timed_out``, after the output so
far), and an output cap past which output is dropped (but still drained, so the
command never blocks on a full pipe) with one visible marker.

When the shell exits while processes it started still hold its output pipes,
they are given a short grace, then the process group is killed: such a
process would die of a broken pipe on its next write anyway, and a fork bomb's
leftovers must not starve the next command. Background processes whose output
is redirected (``server > log 2>&1 &``) keep running, and ``setsid`` detaches
a process from the group entirely.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import os
import signal
import subprocess
import sys
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing, suppress
from dataclasses import dataclass, field

from .errors import (
    InvalidInputError,
    ProcessLimitError,
    TooManyCommandsError,
)
from .limits import Limits, resolve_timeout
from .oom import OomCounter, killed_for_memory
from .paths import Workspace

__all__ = [
    "CommandRunner",
    "CommandSpec",
    "ExitEvent",
    "OutputEvent",
    "StreamName",
    "base_environment",
    "truncation_marker",
]

_PIPE_GRACE_S = 0.25
"""How long pipes may stay open after the shell exited before the group is killed."""
_KILL_DRAIN_S = 1.0
"""How long to collect output still buffered in the pipes after a kill."""
_MAX_COMMAND_BYTES = 128 * 1024 - 1
"""Linux refuses one exec argument of 128 KiB (MAX_ARG_STRLEN, NUL included)."""


class StreamName(enum.Enum):
    STDOUT = 1
    STDERR = 2


@dataclass(frozen=True)
class CommandSpec:
    command: str
    cwd: str = ""
    """Inside the workspace; empty means the workspace root."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Overlaid on the clean base environment."""
    stdin: bytes = b""
    timeout_s: float | None = None
    """None means the server default."""
    max_output_bytes: int = 0
    """0 means the server default."""


@dataclass(frozen=True)
class OutputEvent:
    stream: StreamName
    data: bytes


@dataclass(frozen=True)
class ExitEvent:
    exit_code: int
    """128 + signal number when killed by a signal."""
    signal: int
    truncated: bool
    duration_s: float
    oom_killed: bool = False
    """The sandbox's memory limit killed the command."""
    timed_out: bool = False
    """The command ran past its timeout and its process group was killed."""


def truncation_marker(cap: int) -> bytes:
    return f"\n[sandgate: output truncated after {cap} bytes]\n".encode()


def base_environment(home: str) -> dict[str, str]:
    """The environment every command and the kernel start from."""
    python_bin = os.path.dirname(sys.executable)
    path = ":".join(dict.fromkeys([python_bin, "/usr/local/bin", "/usr/bin", "/bin"]))
    return {"PATH": path, "HOME": home, "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}


class _Done(enum.Enum):
    EOF = enum.auto()
    EXITED = enum.auto()


_Item = OutputEvent | _Done


class _CommandProtocol(asyncio.SubprocessProtocol):
    """Queues output as it arrives, keeping at most ``cap`` bytes."""

    def __init__(self, cap: int) -> None:
        self.queue: asyncio.Queue[_Item] = asyncio.Queue()
        self.cap = cap
        self.kept = 0
        self.truncated = False
        self.exited = asyncio.Event()

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        assert isinstance(data, bytes)
        stream = StreamName.STDOUT if fd == 1 else StreamName.STDERR
        room = self.cap - self.kept
        if room > 0:
            piece = data[:room]
            self.kept += len(piece)
            self.queue.put_nowait(OutputEvent(stream, piece))
        if len(data) > room and not self.truncated:
            self.truncated = True
            self.queue.put_nowait(OutputEvent(stream, truncation_marker(self.cap)))

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd in (1, 2):
            self.queue.put_nowait(_Done.EOF)

    def process_exited(self) -> None:
        self.exited.set()
        self.queue.put_nowait(_Done.EXITED)


class CommandRunner:
    """Runs commands inside the workspace, at most ``max_concurrent_commands`` at once."""

    def __init__(
        self, workspace: Workspace, limits: Limits, *, oom: OomCounter | None = None
    ) -> None:
        self._ws = workspace
        self._limits = limits
        self._oom = oom or OomCounter(None)
        self._running = 0

    @property
    def running(self) -> int:
        return self._running

    async def run(self, spec: CommandSpec) -> AsyncGenerator[OutputEvent | ExitEvent, None]:
        """Run ``spec``; yield its output as it arrives, then one ExitEvent.

        A command that runs past its timeout has its process group killed; its
        ExitEvent then has ``timed_out`` set.

        Raises:
            InvalidInputError: bad command, cwd, env, timeout or output cap.
            TooManyCommandsError: the concurrency limit is reached.
            ProcessLimitError: the sandbox's process limit stops the fork.
        """
        timeout = resolve_timeout(spec.timeout_s, self._limits)
        cap = self._output_cap(spec.max_output_bytes)
        env = self._environment(spec.env)
        if not spec.command.strip() or "\x00" in spec.command:
            raise InvalidInputError("command is empty or contains a NUL byte; give a shell command")
        if (size := len(spec.command.encode(errors="surrogateescape"))) > _MAX_COMMAND_BYTES:
            raise InvalidInputError(
                f"command is {size} bytes; at most {_MAX_COMMAND_BYTES} fit in one command "
                "line: write a longer script to a file and run that file")
        # The workspace root needs no look-up; a path does (a thread: it may stat a lot).
        cwd = (os.fspath(self._ws.root) if not spec.cwd
               else await asyncio.to_thread(self._resolve_cwd, spec.cwd))
        if self._running >= self._limits.max_concurrent_commands:
            raise TooManyCommandsError(self._limits.max_concurrent_commands)
        self._running += 1
        try:
            async with aclosing(self._spawn(spec, cwd, env, cap, timeout)) as events:
                async for event in events:
                    yield event
        finally:
            self._running -= 1

    async def _spawn(
        self, spec: CommandSpec, cwd: str, env: dict[str, str], cap: int, timeout: float
    ) -> AsyncGenerator[OutputEvent | ExitEvent, None]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + timeout
        ooms_before = self._oom.read()
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: _CommandProtocol(cap),
                "/bin/sh",
                "-c",
                spec.command,
                stdin=subprocess.PIPE if spec.stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        except BlockingIOError as exc:  # EAGAIN from fork: pids.max reached
            raise ProcessLimitError() from exc
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise InvalidInputError(
                f"cwd {self._ws.display(cwd)} disappeared before the command started"
            ) from exc
        except OSError as exc:
            if exc.errno != errno.E2BIG:
                raise
            raise InvalidInputError(
                "command and environment together are too long to start a program (E2BIG); "
                "pass large data through a file or stdin instead") from exc
        pid = transport.get_pid()
        exited = False
        try:
            if spec.stdin:
                stdin = transport.get_pipe_transport(0)
                assert isinstance(stdin, asyncio.WriteTransport)
                stdin.write(spec.stdin)
                stdin.close()  # flushes what is buffered, then EOF
            eofs = 0
            exited_at = 0.0
            timed_out = False
            while not (exited and eofs == 2):
                now = loop.time()
                if now >= deadline:
                    timed_out = True
                    break
                if exited and now >= exited_at + _PIPE_GRACE_S:
                    _kill_group(pid)  # leftovers still attached to our pipes
                    break
                until = min(deadline, exited_at + _PIPE_GRACE_S) if exited else deadline
                try:
                    async with asyncio.timeout_at(until):
                        item = await protocol.queue.get()
                except TimeoutError:
                    continue
                if item is _Done.EOF:
                    eofs += 1
                elif item is _Done.EXITED:
                    exited, exited_at = True, loop.time()
                else:
                    yield item
            if timed_out:
                _kill_group(pid)
                drain_until = loop.time() + _KILL_DRAIN_S
                while not (exited and eofs == 2) and loop.time() < drain_until:
                    try:
                        async with asyncio.timeout_at(drain_until):
                            item = await protocol.queue.get()
                    except TimeoutError:
                        break
                    if item is _Done.EOF:
                        eofs += 1
                    elif item is _Done.EXITED:
                        exited = True
                    else:
                        yield item
            # A timed-out command's group was killed, whatever its shell had answered.
            returncode = -signal.SIGKILL if timed_out else transport.get_returncode()
            assert returncode is not None
            killed_by = -returncode if returncode < 0 else 0
            exit_code = 128 + killed_by if killed_by else returncode
            ooms_after = self._oom.read()
            yield ExitEvent(
                exit_code=exit_code,
                signal=killed_by,
                truncated=protocol.truncated,
                duration_s=loop.time() - started,
                oom_killed=killed_for_memory(ooms_before, ooms_after, exit_code, killed_by),
                timed_out=timed_out,
            )
        finally:
            if not exited:
                _kill_group(pid)  # timeout, or the caller went away
                # Reap it before closing: a child still unreaped when the transport
                # goes away is a zombie until sandboxd exits (and a ResourceWarning).
                with suppress(TimeoutError):
                    async with asyncio.timeout(_KILL_DRAIN_S):
                        await protocol.exited.wait()
            transport.close()

    def _output_cap(self, requested: int) -> int:
        if requested == 0:
            return self._limits.default_output_bytes
        if not 0 < requested <= self._limits.max_output_bytes:
            raise InvalidInputError(
                f"max_output_bytes {requested} is out of range; allowed: 1 to "
                f"{self._limits.max_output_bytes} (0 means {self._limits.default_output_bytes})"
            )
        return requested

    def _environment(self, overlay: Mapping[str, str]) -> dict[str, str]:
        env = base_environment(os.fspath(self._ws.root))
        for key, value in overlay.items():
            if not key or "=" in key or "\x00" in key or "\x00" in value:
                raise InvalidInputError(
                    f"environment variable {key!r} is invalid; names must be non-empty "
                    "without '=' or NUL, values without NUL"
                )
            env[key] = value
        return env

    def _resolve_cwd(self, cwd: str) -> str:
        real = self._ws.resolve(cwd)
        if not real.is_dir():
            raise InvalidInputError(
                f"cwd {self._ws.display(real)} is not an existing directory; "
                "give a directory inside /workspace (empty means /workspace)"
            )
        return os.fspath(real)


def _kill_group(pid: int | None) -> None:
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # already gone
