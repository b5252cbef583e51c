"""sandboxd forked from the zygote into a bwrap-built sandbox: as confined as one bwrap
starts, tied to the sandbox's life, and refused where the request does not fit.

Real bwrap sandboxes, a real zygote; the processes are read from /proc.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from sandbox_svc.backend import StartSpec
from sandbox_svc.errors import BackendError
from sandbox_svc.local.backend import LocalBackend
from sandbox_svc.local.handover import CLONE_FLAGS
from sandbox_svc.templates import Template
from sandgate.sandbox.v1 import runtime_service_pb2 as rpb
from sandgate.sandbox.v1 import runtime_service_pb2_grpc as rpb_grpc

from .conftest import opened_backend

UID_BASE = 233_000
TOKEN = "zygote-test-token"


@pytest.fixture
async def backend(state_dir: Path) -> AsyncIterator[LocalBackend]:
    async with opened_backend(state_dir, uid_base=UID_BASE, uid_count=2) as opened:
        yield opened


def _status(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def _named(backend: LocalBackend, sandbox_id: str, comm: str) -> int:
    found = [pid for pid in backend.pids(sandbox_id)
             if Path(f"/proc/{pid}/comm").read_text().strip() == comm]
    assert len(found) == 1, f"{comm} processes in {sandbox_id}: {found}"
    return found[0]


async def _run(target: str, command: str) -> str:
    """The command's stdout (Exec streams it)."""
    out = b""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = rpb_grpc.SandboxRuntimeStub(channel)
        async for event in stub.Exec(rpb.ExecRequest(command=command),
                                     metadata=(("authorization", f"Bearer {TOKEN}"),)):
            if event.output.stream == rpb.OUTPUT_STREAM_STDOUT:
                out += event.output.data
    return out.decode()


async def test_a_handed_over_sandboxd_is_as_confined_as_its_holder(
        backend: LocalBackend) -> None:
    target = await backend.start(StartSpec("sbx-zy1", Template("base"), TOKEN))
    sandboxd = _named(backend, "sbx-zy1", "sandboxd")
    holder = _named(backend, "sbx-zy1", "sh")  # what bwrap itself started
    for name in CLONE_FLAGS:
        assert (os.stat(f"/proc/{sandboxd}/ns/{name}").st_ino
                == os.stat(f"/proc/{holder}/ns/{name}").st_ino), f"{name} namespace differs"
    root, holder_root = os.stat(f"/proc/{sandboxd}/root/"), os.stat(f"/proc/{holder}/root/")
    assert (root.st_dev, root.st_ino) == (holder_root.st_dev, holder_root.st_ino)
    mine, its = _status(sandboxd), _status(holder)
    for key in ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
                "NoNewPrivs", "Seccomp"):
        assert mine[key] == its[key], f"{key}: sandboxd {mine[key]!r}, holder {its[key]!r}"
    assert mine["CapBnd"] == "0000000000000000" and mine["Seccomp"] == "2"
    assert int(mine["Uid"].split()[0]) >= UID_BASE
    assert Path(f"/proc/{sandboxd}/cgroup").read_text() == Path(
        f"/proc/{holder}/cgroup").read_text()
    # From inside: the sandbox's ids, its own few processes, no new user namespace.
    out = await _run(target, "id -u; ls /proc | grep -c '^[0-9]'; unshare -U true 2>/dev/null; "
                             "echo $?")
    uid, processes, unshare_status = out.split()
    assert uid == "65534" and int(processes) < 10 and unshare_status != "0", out


async def test_the_holder_lets_go_once_sandboxd_is_gone_even_with_a_command_left(
        backend: LocalBackend) -> None:
    target = await backend.start(StartSpec("sbx-zy2", Template("base"), TOKEN))
    await _run(target, "setsid -f sleep 300 >/dev/null 2>&1")
    holder = _named(backend, "sbx-zy2", "sh")
    assert _named(backend, "sbx-zy2", "sleep")
    os.kill(_named(backend, "sbx-zy2", "sandboxd"), signal.SIGKILL)
    # The holder's stdin reaches EOF once sandboxd is gone (the sleep does not
    # hold the pipe), so the holder exits and bwrap reports the sandbox ended,
    # as when a sandboxd that bwrap started exits.
    deadline = time.monotonic() + 10
    while holder in backend.pids("sbx-zy2"):
        assert time.monotonic() < deadline, "the holder outlived sandboxd"
        await asyncio.sleep(0.05)


async def test_the_zygote_refuses_a_holder_outside_the_sandboxes_cgroup(
        backend: LocalBackend, state_dir: Path) -> None:
    zygote = backend._zygote  # noqa: SLF001 - the zygote's own refusal, not the backend's
    assert zygote is not None
    read_end, write_end = os.pipe()
    log = (state_dir / "refused.log").open("ab")  # noqa: ASYNC230 - opening is instant
    try:
        with pytest.raises(BackendError, match="not in the sandbox's cgroup sbx-nope"):
            await asyncio.to_thread(
                zygote.spawn, holder_pid=os.getpid(), cgroup="sbx-nope", cgroup_procs=[],
                argv=["--listen", "unix:/nowhere"], env={}, seccomp=None, inner_uid=65534,
                workspace="/workspace", log_fd=log.fileno(), hold_fd=write_end)
    finally:
        log.close()
        os.close(read_end)
        os.close(write_end)
    assert "not entering the sandbox" in (state_dir / "refused.log").read_text()


async def test_a_zygote_that_died_is_replaced_on_the_next_start(
        backend: LocalBackend) -> None:
    await backend.start(StartSpec("sbx-zy3", Template("base"), TOKEN))
    zygote = backend._zygote  # noqa: SLF001 - kill this backend's zygote, no other
    assert zygote is not None and zygote.pid is not None
    os.kill(zygote.pid, signal.SIGKILL)
    await backend.destroy("sbx-zy3")
    target = await backend.start(StartSpec("sbx-zy4", Template("base"), TOKEN))
    assert await _run(target, "echo again") == "again\n"
    assert zygote.pid is not None and zygote.pid != os.getpid()


def _memory_of(pid: int) -> bytes:
    """Every readable mapping of ``pid`` (we are root), concatenated."""
    chunks = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            span, perms = line.split()[:2]
            if not perms.startswith("r"):
                continue
            start, end = (int(x, 16) for x in span.split("-"))
            try:
                mem.seek(start)
                chunks.append(mem.read(end - start))
            except (OSError, ValueError, OverflowError):
                continue  # [vvar] and the like
    return b"".join(chunks)


async def test_no_sandbox_s_request_is_in_the_memory_a_later_sandboxd_inherits(
        backend: LocalBackend) -> None:
    earlier = f"sbx-zy{secrets.token_hex(6)}"
    await backend.start(StartSpec(earlier, Template("base"), TOKEN))
    # The zygote never reads a request (a fork of it does), so no later fork of it
    # can hold one: a zygote that read them kept the id in about 15 places.
    assert backend.zygote_pid is not None
    assert earlier.encode() not in await asyncio.to_thread(_memory_of, backend.zygote_pid)
    await backend.destroy(earlier)
    later = f"sbx-zy{secrets.token_hex(6)}"
    await backend.start(StartSpec(later, Template("base"), TOKEN))
    memory = await asyncio.to_thread(_memory_of, _named(backend, later, "sandboxd"))
    assert later.encode() in memory  # its own request: the search does find ids
    assert earlier.encode() not in memory
