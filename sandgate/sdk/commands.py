"""``sbx.commands``: shell commands in the sandbox, streamed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import grpc
from google.protobuf.duration_pb2 import Duration

from sandgate.sandbox.v1 import runtime_service_pb2 as rpb
from sandgate.sandbox.v1 import runtime_service_pb2_grpc as rpb_grpc
from sandgate.sdk.errors import from_rpc_error

__all__ = ["CommandResult", "Commands"]


@dataclass(frozen=True)
class CommandResult:
    stdout: str
    stderr: str
    exit_code: int
    signal: int = 0
    truncated: bool = False
    oom_killed: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def duration(seconds: float) -> Duration:
    value = Duration()
    value.FromNanoseconds(int(seconds * 1e9))
    return value


class Commands:
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

        Raises TimeoutException (with ``partial`` set to a CommandResult) when
        ``timeout`` passes; the command's whole process group is killed.
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
        # The server enforces the timeout; the client deadline is only a backstop.
        deadline = None if timeout is None else timeout + 30.0
        try:
            async for event in self._stub.Exec(request, metadata=self._metadata,
                                               timeout=deadline):
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
        return CommandResult(
            stdout=b"".join(out).decode(errors="replace"),
            stderr=b"".join(err).decode(errors="replace"),
            exit_code=exit_status.exit_code, signal=exit_status.signal,
            truncated=exit_status.truncated, oom_killed=exit_status.oom_killed)
