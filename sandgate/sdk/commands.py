"""``sbx.commands``: shell commands in the sandbox, streamed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import grpc

from sandgate.sandbox.v1 import runtime_service_pb2 as rpb
from sandgate.sandbox.v1 import runtime_service_pb2_grpc as rpb_grpc
from sandgate.sdk.deadlines import duration, work_deadline
from sandgate.sdk.errors import TimeoutException, from_rpc_error

__all__ = ["CommandResult", "Commands"]


@dataclass(frozen=True)
class CommandResult:
    """What a command printed and how it ended."""

    stdout: str
    stderr: str
    exit_code: int
    """128 + the signal number when a signal killed it; -1 when the call failed."""
    signal: int = 0
    truncated: bool = False
    """Output past ``max_output_bytes`` was dropped (a marker says where)."""
    oom_killed: bool = False
    """The sandbox's memory limit killed the command."""
    timed_out: bool = False
    """The command ran past its timeout and the sandbox killed it (only ever seen on
    ``TimeoutException.partial``)."""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class Commands:
    """Runs shell commands in one sandbox."""

    def __init__(self, stub: rpb_grpc.SandboxRuntimeStub,
                 metadata: tuple[tuple[str, str], ...]) -> None:
        self._stub = stub
        self._metadata = metadata

    async def run(self, command: str, *, timeout: float | None = 60.0, cwd: str = "",
                  envs: Mapping[str, str] | None = None, stdin: bytes | str = b"",
                  max_output_bytes: int = 0,
                  on_stdout: Callable[[str], None] | None = None,
                  on_stderr: Callable[[str], None] | None = None) -> CommandResult:
        """Run ``command`` with /bin/sh and wait for it; output streams to the callbacks.

        Args:
            command: the command line.
            timeout: seconds the sandbox lets it run (None: the server's default, 60 s;
                at most 3600). The call's own deadline is this plus a slack.
            cwd: working directory inside /workspace (empty: /workspace).
            envs: environment variables on top of a clean environment.
            stdin: bytes fed to the command, then EOF.
            max_output_bytes: cap on stdout + stderr kept (0: the server's default).
            on_stdout: called with each piece of stdout as it arrives.
            on_stderr: called with each piece of stderr as it arrives.

        Returns:
            The result, also for a non-zero exit code.

        Raises:
            TimeoutException: the command ran past ``timeout``: its whole process group
                was killed and ``partial`` is its CommandResult with ``timed_out`` set
                (as E2B raises). Also when the call's own deadline passed
                (``partial.timed_out`` False then).
            InvalidArgumentError: empty command, bad cwd, timeout out of range.
            LimitExceededError: too many commands at once, or the process limit.
            SandgateError: another failure of the call.
        """
        request = rpb.ExecRequest(
            command=command, cwd=cwd, env=dict(envs or {}),
            stdin=stdin.encode() if isinstance(stdin, str) else stdin,
            max_output_bytes=max_output_bytes)
        if timeout is not None:
            request.timeout.CopyFrom(duration(timeout))
        out: list[bytes] = []
        err: list[bytes] = []
        exit_status = rpb.ExitStatus()
        try:
            async for event in self._stub.Exec(request, metadata=self._metadata,
                                               timeout=work_deadline(timeout)):
                if event.HasField("output"):
                    chunk = event.output
                    if chunk.stream == rpb.OUTPUT_STREAM_STDERR:
                        err.append(chunk.data)
                        if on_stderr:
                            on_stderr(chunk.data.decode(errors="replace"))
                    else:
                        out.append(chunk.data)
                        if on_stdout:
                            on_stdout(chunk.data.decode(errors="replace"))
                elif event.HasField("exit"):
                    exit_status = event.exit
        except grpc.aio.AioRpcError as exc:
            partial = CommandResult(b"".join(out).decode(errors="replace"),
                                    b"".join(err).decode(errors="replace"), -1)
            raise from_rpc_error(exc, partial) from None
        result = CommandResult(
            stdout=b"".join(out).decode(errors="replace"),
            stderr=b"".join(err).decode(errors="replace"),
            exit_code=exit_status.exit_code, signal=exit_status.signal,
            truncated=exit_status.truncated, oom_killed=exit_status.oom_killed,
            timed_out=exit_status.timed_out)
        if result.timed_out:
            limit = f"{timeout:g} s" if timeout is not None else "the server's default timeout"
            raise TimeoutException(
                f"command timed out after {limit} and its processes were killed; pass a "
                "longer timeout (at most 3600 s)", partial=result)
        return result
