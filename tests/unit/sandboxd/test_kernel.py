"""The persistent kernel, against a real ipykernel (each start costs ~0.6 s: keep these few)."""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox_svc.sandboxd.errors import InvalidInputError, KernelUnavailableError
from sandbox_svc.sandboxd.exec import StreamName
from sandbox_svc.sandboxd.kernel import (
    CellEvent,
    CellResult,
    CellStatus,
    CodeError,
    KernelSession,
    RichOutput,
    StreamText,
)
from sandbox_svc.sandboxd.limits import Limits


def tiny_png() -> bytes:
    """A valid 1x1 grayscale PNG, built without any imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x80")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@pytest.fixture
async def session(tmp_path: Path) -> AsyncIterator[KernelSession]:
    kernel = KernelSession(workspace=tmp_path, limits=Limits(), interrupt_grace_s=5.0)
    yield kernel
    async with asyncio.timeout(20):
        await kernel.shutdown()


async def cell(session: KernelSession, code: str, timeout_s: float = 20.0) -> list[CellEvent]:
    async with asyncio.timeout(60):
        return [e async for e in session.run(code, timeout_s=timeout_s)]


def stdout(events: list[CellEvent]) -> str:
    return "".join(
        e.text for e in events if isinstance(e, StreamText) and e.stream is StreamName.STDOUT
    )


def result(events: list[CellEvent]) -> CellResult:
    last = events[-1]
    assert isinstance(last, CellResult)
    return last


async def test_cells_share_state_and_stream_text_rich_output_and_errors(
    session: KernelSession, tmp_path: Path
) -> None:
    first, second = await asyncio.gather(
        cell(session, "x = 41"), cell(session, "import os; print(x + 1, os.getcwd())")
    )
    assert session.starts == 1  # concurrent first cells started one kernel
    assert result(first).status is CellStatus.OK
    assert stdout(second) == f"42 {tmp_path}\n"

    png = tiny_png()
    events = await cell(
        session,
        "import sys\n"
        "from IPython.display import Image, display\n"
        f"display(Image(data={png!r}))\n"
        "print('to stderr', file=sys.stderr)\n"
        "x * 2",
    )
    rich = [e for e in events if isinstance(e, RichOutput)]
    assert dict(rich[0].data)["image/png"] == png and not rich[0].is_result
    assert rich[1].is_result and dict(rich[1].data)["text/plain"] == b"82"
    assert StreamText(StreamName.STDERR, "to stderr\n") in events
    assert result(events).status is CellStatus.OK and result(events).execution_count == 3

    failed = await cell(session, "1 / 0")
    errors = [e for e in failed if isinstance(e, CodeError)]
    assert errors[0].name == "ZeroDivisionError" and errors[0].traceback
    assert "\x1b[" not in "".join(errors[0].traceback)  # no ANSI colours for models
    assert result(failed).status is CellStatus.ERROR

    runtime_dir = session.runtime_dir
    assert runtime_dir is not None and (runtime_dir / "kernel.json").exists()
    await session.shutdown()
    assert not runtime_dir.exists()
    with pytest.raises(KernelUnavailableError):
        await cell(session, "x")


async def test_a_timeout_interrupts_the_cell_and_a_crash_restarts_the_kernel(
    session: KernelSession,
) -> None:
    await cell(session, "x = 1")
    seen = await cell(session, "print('before', flush=True)\nimport time\ntime.sleep(30)", 1.0)
    assert result(seen).status is CellStatus.TIMEOUT
    assert not result(seen).kernel_restarted
    assert stdout(seen) == "before\n"
    assert stdout(await cell(session, "print(x)")) == "1\n"  # state kept

    crashed = await cell(session, "print('bye', flush=True); import os; os._exit(1)")
    assert result(crashed).status is CellStatus.KERNEL_RESTARTED
    assert result(crashed).kernel_restarted
    fresh = await cell(session, "print('x' in dir())")
    assert stdout(fresh) == "False\n" and result(fresh).status is CellStatus.OK
    assert session.starts == 2


async def test_bad_cells_are_rejected_without_starting_a_kernel(session: KernelSession) -> None:
    with pytest.raises(InvalidInputError):
        await cell(session, "  \n")
    with pytest.raises(InvalidInputError):
        await cell(session, "1", timeout_s=0)
    assert session.starts == 0


async def test_a_primed_kernel_serves_the_first_cell_as_cell_one_on_the_same_kernel(
    session: KernelSession,
) -> None:
    async with asyncio.timeout(60):
        await session.prime()
    assert session.starts == 1
    events = await cell(session, "40 + 2")
    assert result(events).status is CellStatus.OK and result(events).execution_count == 1
    assert [dict(e.data)["text/plain"] for e in events if isinstance(e, RichOutput)] == [b"42"]
    assert session.starts == 1
