"""The blocking ``Sandbox`` twin works from plain (non-async) code."""

from __future__ import annotations

import asyncio

import pytest

from sandbox_svc.server import RunningService
from sandgate import Sandbox
from sandgate.sdk import NotFoundError, TimeoutException


def _script(target: str) -> tuple[str, str | None, list[str], str]:
    with Sandbox.create("filesystem", target=target) as sbx:
        out = sbx.commands.run("echo hi").stdout
        cell = sbx.run_code("x = 20\nx * 2 + 2").text
        sbx.files.write("dir/a.txt", "alpha")
        names = [e.name for e in sbx.files.list("dir")]
        with pytest.raises(TimeoutException) as info:
            sbx.commands.run("echo partial; sleep 5", timeout=0.5)
        partial = info.value.partial
        assert info.value.sandbox_timeout and getattr(partial, "timed_out", False)
        sandbox_id = sbx.sandbox_id
    with pytest.raises(NotFoundError):
        Sandbox.connect(sandbox_id, target=target)
    return out, cell, names, getattr(partial, "stdout", "")


async def test_sync_sandbox_runs_commands_code_and_files(service: RunningService) -> None:
    out, cell, names, partial = await asyncio.to_thread(_script, service.address)
    assert (out, cell, names) == ("hi\n", "42", ["a.txt"])
    assert partial == "partial\n"
