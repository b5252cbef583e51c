"""``sbx.run_code``: cells in the sandbox's persistent IPython kernel."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc

from sandgate.sandbox.v1 import runtime_service_pb2 as rpb
from sandgate.sandbox.v1 import runtime_service_pb2_grpc as rpb_grpc
from sandgate.sdk.deadlines import duration, work_deadline
from sandgate.sdk.errors import TimeoutException, from_rpc_error

__all__ = ["Execution", "ExecutionError", "Result", "run_code"]


@dataclass(frozen=True)
class Result:
    """One rich output: mime type -> data (text as str, binary such as PNG as bytes)."""

    formats: dict[str, str | bytes]
    is_main_result: bool = False

    @property
    def text(self) -> str | None:
        value = self.formats.get("text/plain")
        return value if isinstance(value, str) else None

    @property
    def png(self) -> bytes | None:
        value = self.formats.get("image/png")
        return value if isinstance(value, bytes) else None


@dataclass(frozen=True)
class ExecutionError:
    name: str
    value: str
    traceback: list[str]


@dataclass
class Execution:
    """What a cell printed, displayed and returned, and how it ended."""

    results: list[Result] = field(default_factory=list)
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    error: ExecutionError | None = None
    execution_count: int = 0
    kernel_restarted: bool = False
    """The kernel had died (or would not stop at the timeout) and was restarted:
    variables of earlier cells are gone."""
    timed_out: bool = False
    """The cell ran past its timeout and was interrupted (only ever seen on
    ``TimeoutException.partial``)."""

    @property
    def text(self) -> str | None:
        """The cell's own value as text (like the ``Out[n]`` of a notebook)."""
        for result in self.results:
            if result.is_main_result:
                return result.text
        return None


_TEXT_MIME_PREFIXES = ("text/", "application/json", "image/svg+xml")


def _formats(rich: rpb.RichOutput) -> dict[str, str | bytes]:
    formats: dict[str, str | bytes] = {}
    for item in rich.data:
        if item.mime_type.startswith(_TEXT_MIME_PREFIXES):
            formats[item.mime_type] = item.data.decode(errors="replace")
        else:
            formats[item.mime_type] = item.data
    return formats


async def run_code(stub: rpb_grpc.SandboxRuntimeStub, metadata: tuple[tuple[str, str], ...],
                   code: str, timeout: float | None) -> Execution:
    """Run one cell in the sandbox's kernel (see ``AsyncSandbox.run_code``).

    Raises:
        TimeoutException: the cell ran past ``timeout`` and was interrupted
            (``partial.timed_out``), or the call's own deadline passed.
        InvalidArgumentError: empty code, or timeout out of range.
        UnavailableError: the kernel could not be started.
        SandgateError: another failure of the call.
    """
    request = rpb.RunCodeRequest(code=code)
    if timeout is not None:
        request.timeout.CopyFrom(duration(timeout))
    execution = Execution()
    # A cold kernel takes up to a minute to start before the cell's own clock runs.
    deadline = work_deadline(timeout) + 60.0
    try:
        async for event in stub.RunCode(request, metadata=metadata, timeout=deadline):
            kind = event.WhichOneof("event")
            if kind == "stream":
                target = (execution.stderr if event.stream.stream == rpb.OUTPUT_STREAM_STDERR
                          else execution.stdout)
                target.append(event.stream.text)
            elif kind == "rich":
                execution.results.append(Result(_formats(event.rich), event.rich.is_result))
            elif kind == "error":
                execution.error = ExecutionError(event.error.name, event.error.value,
                                                 list(event.error.traceback))
            elif kind == "result":
                execution.execution_count = event.result.execution_count
                execution.kernel_restarted = event.result.kernel_restarted
                execution.timed_out = event.result.timed_out
    except grpc.aio.AioRpcError as exc:
        raise from_rpc_error(exc, execution) from None
    if execution.timed_out:
        limit = f"{timeout:g} s" if timeout is not None else "the server's default timeout"
        kept = ("the kernel was restarted and its state is lost" if execution.kernel_restarted
                else "the kernel and its state are kept")
        raise TimeoutException(f"cell timed out after {limit} and was interrupted; {kept}",
                               partial=execution)
    return execution
