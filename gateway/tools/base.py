"""The base tools: ``run_shell_command`` and ``run_ipython_cell``.

Results follow AgentScope Runtime: text blocks for stdout, stderr (when there
is any) and the return code, labelled, with ``is_error`` when the command
failed. A cell's PNG (and other image) outputs become MCP image content.

A command or cell that runs past its timeout is an error result that says so
("timed out after N s"), after the output it produced until then; the sandbox
answers that as a result marked ``timed_out``, so it is never confused with the
gateway's own deadline on the call (a DEADLINE_EXCEEDED status).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration

from gateway.catalog import ToolSpec
from gateway.errors import Hop, failure_result
from gateway.results import ContentBlock, ImageBlock, TextBlock, ToolResult
from gateway.sessions import SandboxHandle
from gateway.tools.handler import ToolHandler
from sandgate.sandbox.v1 import runtime_service_pb2 as rpb

__all__ = ["BaseTools"]

_DEFAULT_TIMEOUT_S = 60.0
_MAX_TIMEOUT_S = 3600.0
_DEADLINE_SLACK_S = 30.0
"""sandboxd enforces the timeout; the gRPC deadline is a backstop."""
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")

_TIMEOUT_SCHEMA = {
    "type": "number", "exclusiveMinimum": 0, "maximum": _MAX_TIMEOUT_S,
    "description": f"Seconds to allow before the run is stopped (default "
                   f"{_DEFAULT_TIMEOUT_S:g}, at most {_MAX_TIMEOUT_S:g}).",
}

SPECS = (
    ToolSpec(
        name="run_shell_command",
        title="Run a shell command",
        description=(
            "Run a command line with /bin/sh in this session's sandbox and return its "
            "stdout, stderr and exit code (a non-zero exit code marks the result as an "
            "error). The working directory is /workspace; files persist across calls of "
            "the same session, shell variables and `cd` do not. There is no network access."),
        input_schema={
            "type": "object",
            "properties": {
                "command": {"type": "string", "minLength": 1,
                            "description": "The command line, for example "
                                           "`ls -la` or `python3 main.py > out.txt 2>&1`."},
                "timeout": _TIMEOUT_SCHEMA,
            },
            "required": ["command"],
        },
        group="base",
        destructive=True,
    ),
    ToolSpec(
        name="run_ipython_cell",
        title="Run Python code",
        description=(
            "Run Python code in this session's persistent IPython kernel: variables, imports "
            "and definitions stay available to later cells. Returns what the code printed, "
            "the value of its last expression, images it displayed (such as plots) as "
            "image content, and the traceback when it raised. The kernel's working "
            "directory is /workspace."),
        input_schema={
            "type": "object",
            "properties": {
                "code": {"type": "string", "minLength": 1,
                         "description": "Python source to run, as one notebook cell."},
                "timeout": _TIMEOUT_SCHEMA,
            },
            "required": ["code"],
        },
        group="base",
        destructive=True,
    ),
)


def _timeout(arguments: Mapping[str, Any]) -> float:
    return float(arguments.get("timeout") or _DEFAULT_TIMEOUT_S)


def _duration(seconds: float) -> Duration:
    value = Duration()
    value.FromNanoseconds(int(seconds * 1e9))
    return value


def _timed_out_block(what: str, timeout: float, after: str) -> TextBlock:
    return TextBlock(f"Error: the {what} timed out after {timeout:g} s and {after}; the "
                     "output above is what it produced until then. Pass a larger timeout "
                     f"(at most {_MAX_TIMEOUT_S:g} s), or split the work.", "error")


def _shell_blocks(stdout: bytes, stderr: bytes, code: int | None) -> list[ContentBlock]:
    blocks: list[ContentBlock] = [TextBlock(stdout.decode(errors="replace"), "stdout")]
    if stderr:
        blocks.append(TextBlock(stderr.decode(errors="replace"), "stderr"))
    if code is not None:
        blocks.append(TextBlock(str(code), "returncode"))
    return blocks


class BaseTools:
    """``base`` group."""

    name = "base"
    specs = SPECS

    def __init__(self, max_result_bytes: int) -> None:
        self._max_output = max_result_bytes

    def handler(self, name: str) -> ToolHandler:
        """The handler of ``run_shell_command`` or ``run_ipython_cell``.

        Raises:
            KeyError: another name.
        """
        return {"run_shell_command": self._shell, "run_ipython_cell": self._cell}[name]

    async def _shell(self, arguments: Mapping[str, Any], sandbox: SandboxHandle | None
                     ) -> ToolResult:
        assert sandbox is not None
        timeout = _timeout(arguments)
        request = rpb.ExecRequest(command=arguments["command"], timeout=_duration(timeout),
                                  max_output_bytes=self._max_output)
        out, err = bytearray(), bytearray()
        status: rpb.ExitStatus | None = None
        try:
            async for event in sandbox.stub.Exec(request, metadata=sandbox.metadata(),
                                                 timeout=timeout + _DEADLINE_SLACK_S):
                if event.HasField("output"):
                    target = err if event.output.stream == rpb.OUTPUT_STREAM_STDERR else out
                    target += event.output.data
                else:
                    status = event.exit
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
            # Our own deadline passed (the sandbox did not answer in time), or a sandboxd
            # older than ExitStatus.timed_out: keep what the command printed anyway.
            failed = failure_result(Hop.SANDBOX, exc.code(), exc.details() or "timed out",
                                    sandbox_id=sandbox.sandbox_id)
            return ToolResult((*_shell_blocks(bytes(out), bytes(err), None), *failed.content),
                              is_error=True, sandbox_id=sandbox.sandbox_id)
        if status is not None and status.timed_out:
            blocks = _shell_blocks(bytes(out), bytes(err), None)
            blocks.append(_timed_out_block("command", timeout, "its processes were killed"))
            return ToolResult(tuple(blocks), is_error=True, sandbox_id=sandbox.sandbox_id)
        code = status.exit_code if status is not None else -1
        blocks = _shell_blocks(bytes(out), bytes(err), code)
        if status is not None and status.oom_killed:
            blocks.append(TextBlock("The command was killed because the sandbox ran out of "
                                    "memory; use less memory or process the data in parts.",
                                    "note"))
        return ToolResult(tuple(blocks), is_error=code != 0, sandbox_id=sandbox.sandbox_id)

    async def _cell(self, arguments: Mapping[str, Any], sandbox: SandboxHandle | None
                    ) -> ToolResult:
        assert sandbox is not None
        timeout = _timeout(arguments)
        request = rpb.RunCodeRequest(code=arguments["code"], timeout=_duration(timeout))
        stdout: list[str] = []
        stderr: list[str] = []
        outputs: list[ContentBlock] = []
        error: list[ContentBlock] = []
        result = rpb.CellResult()
        try:
            async for event in sandbox.stub.RunCode(request, metadata=sandbox.metadata(),
                                                    timeout=timeout + _DEADLINE_SLACK_S):
                kind = event.WhichOneof("event")
                if kind == "stream":
                    (stderr if event.stream.stream == rpb.OUTPUT_STREAM_STDERR
                     else stdout).append(event.stream.text)
                elif kind == "rich":
                    outputs.extend(_rich_blocks(event.rich))
                elif kind == "error":
                    trace = "\n".join(event.error.traceback) or \
                        f"{event.error.name}: {event.error.value}"
                    error.append(TextBlock(_ANSI.sub("", trace), "error"))
                elif kind == "result":
                    result = event.result
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
            failed = failure_result(Hop.SANDBOX, exc.code(), exc.details() or "timed out",
                                    sandbox_id=sandbox.sandbox_id)
            error.extend(failed.content)
            result.status = rpb.CELL_STATUS_TIMEOUT
        blocks: list[ContentBlock] = [TextBlock("".join(stdout), "stdout")]
        if stderr:
            blocks.append(TextBlock("".join(stderr), "stderr"))
        blocks.extend(outputs)
        blocks.extend(error)
        if result.timed_out:
            blocks.append(_timed_out_block("cell", timeout, "was interrupted" + (
                "" if result.kernel_restarted else "; the kernel and its variables are kept")))
        if result.kernel_restarted:
            blocks.append(TextBlock("The Python kernel had stopped and was restarted: "
                                    "variables and imports of earlier cells are gone.", "note"))
        failed_cell = bool(error) or result.status in (
            rpb.CELL_STATUS_ERROR, rpb.CELL_STATUS_TIMEOUT, rpb.CELL_STATUS_KERNEL_RESTARTED)
        return ToolResult(tuple(blocks), is_error=failed_cell, sandbox_id=sandbox.sandbox_id)


def _rich_blocks(rich: rpb.RichOutput) -> list[ContentBlock]:
    by_type = {item.mime_type: item.data for item in rich.data}
    label = "result" if rich.is_result else "display"
    for mime in _IMAGE_TYPES:
        if mime in by_type:
            return [ImageBlock(by_type[mime], mime, label)]
    for mime in ("text/plain", "text/markdown", "text/html", "application/json"):
        if mime in by_type:
            return [TextBlock(by_type[mime].decode(errors="replace"), label)]
    return []
