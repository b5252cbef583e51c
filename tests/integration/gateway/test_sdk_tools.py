"""The SDK's ToolGateway client against a real gateway and real sandboxes."""

from __future__ import annotations

import asyncio
import socket

import anyio
import grpc
import pytest

from gateway.server import RunningGateway
from sandbox_svc.server import RunningService
from sandgate.sdk import (
    AsyncToolGateway,
    AuthenticationError,
    InvalidArgumentError,
    TextBlock,
    TimeoutException,
    ToolGateway,
    ToolProgress,
    UnavailableError,
)

from .conftest import SERVICE_KEY, run_gateway


async def test_lists_typed_tools_and_calls_one_with_progress_and_labelled_blocks(
        gateway: RunningGateway) -> None:
    progress: list[ToolProgress] = []
    async with AsyncToolGateway(gateway.grpc_address, session="sdk-1") as tools:
        with anyio.fail_after(60):
            listed = {t.name: t for t in await tools.list_tools()}
            result = await tools.call_tool(
                "run_shell_command", {"command": "sleep 1; echo done > f; cat f"},
                on_progress=progress.append)
            again = await tools.call_tool("read_file", {"path": "f"})
            cell = await tools.call_tool("run_ipython_cell", {"code": "print(sorted([3, 1, 2]))"})
    shell = listed["run_shell_command"]
    assert shell.input_schema["required"] == ["command"]
    assert (shell.group, shell.read_only, shell.source) == ("base", False, "sandbox")
    assert listed["read_file"].read_only
    assert listed["sandbox_release"].source == "gateway"
    assert progress and progress[-1].progress > 0
    assert not result.is_error and result.sandbox_id.startswith("sbx-")
    assert result.content == (TextBlock("done\n", "stdout"), TextBlock("0", "returncode"))
    assert again.text == "done\n" and again.sandbox_id == result.sandbox_id
    assert cell.content[0] == TextBlock("[1, 2, 3]\n", "stdout")


async def test_a_per_call_session_runs_in_its_own_sandbox(gateway: RunningGateway) -> None:
    async with AsyncToolGateway(gateway.grpc_address, session="sdk-a") as tools:
        with anyio.fail_after(60):
            await tools.call_tool("write_file", {"path": "x.txt", "content": "a"})
            own = await tools.call_tool("read_file", {"path": "x.txt"})
            other = await tools.call_tool("read_file", {"path": "x.txt"}, session="sdk-b")
    assert not own.is_error and own.text == "a"
    assert other.is_error and other.sandbox_id != own.sandbox_id


async def test_a_failed_tool_is_a_result_and_bad_arguments_an_sdk_error(
        gateway: RunningGateway) -> None:
    async with AsyncToolGateway(gateway.grpc_address, session="sdk-err") as tools:
        with anyio.fail_after(60):
            unknown = await tools.call_tool("no_such_tool", {})
            failed = await tools.call_tool("run_shell_command", {"command": "exit 3"})
            with pytest.raises(InvalidArgumentError):
                await tools.call_tool("run_shell_command", {"command": {1, 2}})
            with pytest.raises(InvalidArgumentError) as empty:
                await tools.call_tool("", {})
    assert unknown.is_error and "no_such_tool" in unknown.text
    assert failed.is_error and TextBlock("3", "returncode") in failed.content
    assert empty.value.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_transport_failures_are_sdk_errors_never_grpc_errors(
        sandbox_service: RunningService) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{sock.getsockname()[1]}"
    async with run_gateway(sandbox_service, api_keys="k=acme", bearer_token=SERVICE_KEY) as gw:
        async with AsyncToolGateway(gw.grpc_address, api_key="") as anonymous, \
                AsyncToolGateway(gw.grpc_address, api_key="k", session="sdk-t") as keyed, \
                AsyncToolGateway(closed) as nowhere:
            with anyio.fail_after(60):
                with pytest.raises(AuthenticationError):
                    await anonymous.list_tools()
                with pytest.raises(UnavailableError):
                    await nowhere.list_tools(timeout=5)
                with pytest.raises(TimeoutException):
                    await keyed.call_tool("run_shell_command", {"command": "sleep 10"},
                                          timeout=1.0)
                assert await keyed.list_tools()


async def test_a_cancelled_call_stops_the_tool_in_the_sandbox(gateway: RunningGateway) -> None:
    started = asyncio.Event()
    async with AsyncToolGateway(gateway.grpc_address, session="sdk-cancel") as tools:
        with anyio.fail_after(60):
            call = asyncio.ensure_future(tools.call_tool(
                "run_shell_command", {"command": "sleep 37"},
                on_progress=lambda _: started.set()))
            await started.wait()
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            # The command's process goes away with the call (bounded poll).
            while True:
                ps = await tools.call_tool("run_shell_command",
                                           {"command": "ps -eo args | grep -c '^sleep 37' || true"})
                if ps.content[0] == TextBlock("0\n", "stdout"):
                    break
                await asyncio.sleep(0.1)


def _blocking(target: str) -> tuple[int, str]:
    with ToolGateway(target, session="sdk-sync") as tools:
        count = len(tools.list_tools())
        result = tools.call_tool("run_ipython_cell", {"code": "6 * 7"})
    return count, result.text


async def test_the_blocking_twin_lists_and_calls_from_plain_code(
        gateway: RunningGateway) -> None:
    with anyio.fail_after(60):
        count, text = await asyncio.to_thread(_blocking, gateway.grpc_address)
    assert count > 2 and "42" in text
