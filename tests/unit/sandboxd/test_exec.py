from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import pytest

from sandbox_svc.sandboxd.errors import (
    InvalidInputError,
    PathOutsideWorkspaceError,
    TooManyCommandsError,
)
from sandbox_svc.sandboxd.exec import (
    CommandRunner,
    CommandSpec,
    ExitEvent,
    OutputEvent,
    StreamName,
    truncation_marker,
)
from sandbox_svc.sandboxd.limits import Limits
from sandbox_svc.sandboxd.oom import OomCounter
from sandbox_svc.sandboxd.paths import Workspace


@pytest.fixture
def root(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "sub").mkdir(parents=True)
    return ws


@pytest.fixture
def runner(root: Path) -> CommandRunner:
    return CommandRunner(Workspace(root), Limits())


async def run(runner: CommandRunner, spec: CommandSpec) -> tuple[list[OutputEvent], ExitEvent]:
    async with asyncio.timeout(10):
        events = [e async for e in runner.run(spec)]
    *output, last = events
    assert isinstance(last, ExitEvent)
    assert all(isinstance(e, OutputEvent) for e in output)
    return output, last  # type: ignore[return-value]


def text(output: list[OutputEvent], stream: StreamName) -> str:
    return b"".join(e.data for e in output if e.stream is stream).decode()


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers kill(0); it is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True  # reaped meanwhile


async def wait_gone(pid: int) -> None:
    async with asyncio.timeout(5):
        while not process_gone(pid):
            await asyncio.sleep(0.02)


async def test_stdout_and_stderr_stream_separately_with_the_exit_code(
    runner: CommandRunner,
) -> None:
    output, exit_ = await run(runner, CommandSpec("echo out; echo err >&2; exit 3"))
    assert text(output, StreamName.STDOUT) == "out\n"
    assert text(output, StreamName.STDERR) == "err\n"
    assert (exit_.exit_code, exit_.signal, exit_.truncated) == (3, 0, False)


async def test_stdin_is_fed_then_closed(runner: CommandRunner) -> None:
    output, exit_ = await run(runner, CommandSpec("wc -c; cat", stdin=b"x" * 200_000))
    assert exit_.exit_code == 0
    assert text(output, StreamName.STDOUT) == "200000\n"


async def test_the_environment_is_clean_with_the_request_overlay(
    runner: CommandRunner, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANDGATE_SANDBOXD_TOKEN", "leaked?")
    command = 'echo "$HOME|$LANG|$GREETING|${SANDGATE_SANDBOXD_TOKEN:-unset}"; command -v python'
    output, _ = await run(runner, CommandSpec(command, env={"GREETING": "hi"}))
    first, second = text(output, StreamName.STDOUT).splitlines()
    assert first == f"{root.resolve()}|C.UTF-8|hi|unset"
    assert second == os.path.join(os.path.dirname(sys.executable), "python")


async def test_cwd_is_resolved_inside_the_workspace(runner: CommandRunner, root: Path) -> None:
    output, _ = await run(runner, CommandSpec("pwd"))
    assert text(output, StreamName.STDOUT) == f"{root.resolve()}\n"
    output, _ = await run(runner, CommandSpec("pwd", cwd="/workspace/sub"))
    assert text(output, StreamName.STDOUT) == f"{root.resolve() / 'sub'}\n"


async def test_a_cwd_outside_or_missing_is_rejected(runner: CommandRunner) -> None:
    with pytest.raises(PathOutsideWorkspaceError):
        await run(runner, CommandSpec("pwd", cwd="../"))
    with pytest.raises(InvalidInputError):
        await run(runner, CommandSpec("pwd", cwd="missing"))


async def test_a_timeout_ends_with_a_timed_out_exit_after_the_partial_output_and_kills_the_group(
    runner: CommandRunner, root: Path
) -> None:
    spec = CommandSpec("sleep 30 & echo $! > bg.pid; echo started; sleep 30", timeout_s=1.0)
    async with asyncio.timeout(10):
        seen = [event async for event in runner.run(spec)]
    assert seen[:-1] == [OutputEvent(StreamName.STDOUT, b"started\n")]
    exit_ = seen[-1]
    assert isinstance(exit_, ExitEvent)
    assert (exit_.timed_out, exit_.exit_code, exit_.signal) == (True, 137, 9)
    await wait_gone(int((root / "bg.pid").read_text()))
    assert runner.running == 0


async def test_a_command_within_its_timeout_is_not_timed_out(runner: CommandRunner) -> None:
    _, exit_ = await run(runner, CommandSpec("exit 3", timeout_s=5.0))
    assert (exit_.timed_out, exit_.exit_code) == (False, 3)


async def test_output_past_the_cap_is_dropped_with_one_marker(runner: CommandRunner) -> None:
    spec = CommandSpec("head -c 100000 /dev/zero; echo done >&2", max_output_bytes=1000)
    output, exit_ = await run(runner, spec)
    kept = b"".join(e.data for e in output)
    marker = truncation_marker(1000)
    assert exit_.truncated and exit_.exit_code == 0
    assert kept.count(marker) == 1
    assert len(kept) == 1000 + len(marker)


async def test_a_command_killed_by_a_signal_reports_128_plus_the_signal(
    runner: CommandRunner,
) -> None:
    _, exit_ = await run(runner, CommandSpec("kill -TERM $$"))
    assert (exit_.exit_code, exit_.signal) == (128 + signal.SIGTERM, signal.SIGTERM)


async def test_leftovers_still_holding_the_output_are_stopped_when_the_command_ends(
    runner: CommandRunner, root: Path
) -> None:
    output, exit_ = await run(runner, CommandSpec("sleep 30 & echo $! > bg.pid; echo ok"))
    assert exit_.exit_code == 0 and text(output, StreamName.STDOUT) == "ok\n"
    await wait_gone(int((root / "bg.pid").read_text()))


async def test_a_background_process_with_redirected_output_keeps_running(
    runner: CommandRunner, root: Path
) -> None:
    command = "sleep 30 > /dev/null 2>&1 & echo $! > bg.pid; echo ok"
    output, exit_ = await run(runner, CommandSpec(command))
    assert exit_.exit_code == 0 and text(output, StreamName.STDOUT) == "ok\n"
    pid = int((root / "bg.pid").read_text())
    try:
        assert not process_gone(pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def test_a_command_killed_while_the_oom_counter_grew_is_reported_out_of_memory(
    root: Path, tmp_path: Path
) -> None:
    events = tmp_path / "memory.events"
    events.write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    runner = CommandRunner(Workspace(root), Limits(), oom=OomCounter(events))

    def bump(count: int) -> str:  # what the kernel does to the cgroup file on an OOM kill
        return f"printf 'oom {count}\\noom_kill {count}\\n' > {events}; "

    _, killed = await run(runner, CommandSpec(bump(2) + "kill -KILL $$"))
    assert killed.oom_killed and killed.exit_code == 137
    _, survived = await run(runner, CommandSpec(bump(3) + "true"))
    assert not survived.oom_killed
    _, plain = await run(runner, CommandSpec("kill -KILL $$"))
    assert not plain.oom_killed and plain.exit_code == 137


async def test_a_caller_that_goes_away_kills_the_process_group(
    runner: CommandRunner, root: Path
) -> None:
    events = runner.run(CommandSpec("echo $$ > sh.pid; echo started; sleep 30"))
    async with asyncio.timeout(5):
        first = await anext(events)
    assert first == OutputEvent(StreamName.STDOUT, b"started\n")
    await events.aclose()
    await wait_gone(int((root / "sh.pid").read_text()))
    assert runner.running == 0


async def test_commands_beyond_the_concurrency_limit_are_refused(root: Path) -> None:
    runner = CommandRunner(Workspace(root), Limits(max_concurrent_commands=1))
    first = runner.run(CommandSpec("echo one; sleep 30"))
    async with asyncio.timeout(5):
        await anext(first)
    with pytest.raises(TooManyCommandsError):
        await run(runner, CommandSpec("echo two"))
    await first.aclose()
    _, exit_ = await run(runner, CommandSpec("true"))
    assert exit_.exit_code == 0


@pytest.mark.parametrize(
    "spec",
    [
        CommandSpec(""),
        CommandSpec("   "),
        CommandSpec("true", timeout_s=0.0),
        CommandSpec("true", timeout_s=3601),
        CommandSpec("true", max_output_bytes=-1),
        CommandSpec("true", max_output_bytes=17 * 1024 * 1024),
        CommandSpec("true", env={"A=B": "x"}),
    ],
)
async def test_bad_input_is_rejected_before_anything_runs(
    runner: CommandRunner, spec: CommandSpec
) -> None:
    with pytest.raises(InvalidInputError):
        await run(runner, spec)


async def test_a_command_longer_than_one_command_line_is_bad_input_naming_the_command(
        runner: CommandRunner) -> None:
    # Linux refuses a single exec argument of 128 KiB or more (E2BIG).
    with pytest.raises(InvalidInputError, match="command is 140000 bytes"):
        await run(runner, CommandSpec("x" * 140_000))
    output, done = await run(runner, CommandSpec("echo " + "y" * 130_000 + " | wc -c"))
    assert (text(output, StreamName.STDOUT).strip(), done.exit_code) == ("130001", 0)


async def test_an_environment_too_large_to_start_a_command_is_bad_input(
        runner: CommandRunner) -> None:
    too_much = {f"V{i}": "v" * 100_000 for i in range(40)}  # 4 MB: past ARG_MAX
    with pytest.raises(InvalidInputError, match="too long"):
        await run(runner, CommandSpec("true", env=too_much))
