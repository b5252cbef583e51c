"""Fuzzed tool arguments through the gateway (official MCP client, real sandboxes).

Whatever a confused model sends, the gateway and sandboxd stay up and answer a
tool result: arguments the schema refuses get ``isError`` naming the argument,
hostile ones (NUL bytes, huge and unicode strings, ``..``, absolute paths,
symlinks that lead out) get a result, never a protocol error, an HTTP 500 or
a sandbox that died. File tools never reach past /workspace: canaries planted
outside it (in the sandbox's run dir and /tmp, on the host side) are never
read, changed or joined by new files.

Browser tools are fuzzed for argument validation only: no page is opened.
``SANDGATE_FUZZ_SCALE=10`` draws ten times as many examples (a deeper search).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.mcp_server import SANDBOX_META
from gateway.server import RunningGateway
from gateway.tools import default_groups
from sandbox_svc.server import RunningService
from tests.leftovers import sandbox_pids

from .conftest import mcp_client
from .tool_arguments import hostile_paths, invalid_arguments, valid_arguments

# A shrunk example may still hold a 128 KiB string: report it anyway.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning")

SPECS = {spec.name: spec for group in default_groups(1 << 20) for spec in group.specs}
GROUPS = {group.name: [s.name for s in group.specs] for group in default_groups(1 << 20)}
FUZZ = settings(suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
SCALE = float(os.environ.get("SANDGATE_FUZZ_SCALE", "1"))
WATCHDOG_S = 180 * max(1.0, SCALE)
CALL_TIMEOUT_S = 60
SESSION = {"X-Sandgate-Session": "fuzz"}
FRESH_NOTE = "previous sandbox had stopped"
HUGE = 200_000
"""Longest string drawn: large, yet the request stays under the 4 MiB body limit."""

CANARY = f"canary-{secrets.token_hex(4)}.txt"
"""Name of the files planted outside /workspace; the fuzzer never uses it inside."""
NEVER_CREATED = f"never-{secrets.token_hex(4)}"
LINKS = {
    "passwd_link": "/etc/passwd", "run_link": f"/run/sandgate/{CANARY}",
    "token_link": "/run/sandgate/token", "canary_link": f"/tmp/{CANARY}", "tmp_link": "/tmp",
    "root_link": "/proc/self/root", "slash_link": "/", "up_link": "..",
    "zero_link": "/dev/zero", "dangling": f"/tmp/{NEVER_CREATED}", "loop_link": "loop_link",
    "sub/escape": "../..",
}
OUTSIDE = ["/etc/passwd", f"/run/sandgate/{CANARY}", "/run/sandgate/token", f"/tmp/{CANARY}",
           "/tmp", "/", "..", "../..", f"/workspace/../tmp/{CANARY}", "/workspace/..",
           f"/proc/self/root/tmp/{CANARY}", f"/proc/1/root/tmp/{CANARY}", "/proc/self/environ",
           "/dev/zero", f"/tmp/{NEVER_CREATED}", f"tmp_link/{NEVER_CREATED}",
           f"slash_link/tmp/{CANARY}", f"sub/escape/tmp/{CANARY}", f"up_link/tmp/{CANARY}"]
SEGMENTS = [*sorted(name.split("/")[0] for name in LINKS), "plain.txt", "sub", "new"]
PATHS = hostile_paths(SEGMENTS, OUTSIDE)


def _text(result: types.CallToolResult) -> str:
    return "\n".join(b.text for b in result.content if isinstance(b, types.TextContent))


async def _call(gateway: RunningGateway, name: str, arguments: dict[str, Any]
                ) -> types.CallToolResult:
    """One call on a client of its own; a protocol error or HTTP failure raises."""
    async with mcp_client(gateway.mcp_url, SESSION) as client:
        with anyio.fail_after(CALL_TIMEOUT_S):
            return await client.call_tool(name, arguments)


@dataclass
class SandboxWatch:
    """The fuzz session's sandbox: it must stay the same one throughout."""

    sandbox_id: str = ""
    calls: int = field(default=0)

    def check(self, result: types.CallToolResult) -> None:
        text = _text(result)
        assert FRESH_NOTE not in text, "the session's sandbox died during the fuzzing"
        assert "internal error" not in text.lower(), text[:500]
        sandbox = str((result.meta or {}).get(SANDBOX_META, ""))
        if sandbox:
            self.sandbox_id = self.sandbox_id or sandbox
            assert sandbox == self.sandbox_id, "the session's sandbox was replaced"
        self.calls += 1


@pytest.fixture
def watch() -> SandboxWatch:
    return SandboxWatch()


# ----- arguments the schema refuses ------------------------------------------------------


def _refusable() -> list[str]:
    return sorted(name for name, spec in SPECS.items() if spec.input_schema.get("properties"))


INVALID = st.sampled_from(_refusable()).flatmap(
    lambda name: invalid_arguments(SPECS[name].input_schema).map(lambda bad: (name, *bad)))


@settings(FUZZ, max_examples=int(200 * SCALE))
@given(case=INVALID)
async def test_arguments_the_schema_refuses_get_a_tool_error_naming_the_argument(
        gateway: RunningGateway, watch: SandboxWatch,
        case: tuple[str, dict[str, Any], str]) -> None:
    name, arguments, wrong = case
    result = await _call(gateway, name, arguments)
    watch.check(result)
    assert result.is_error, (name, arguments)
    # The message then lists every argument the tool takes: the diagnosis comes before.
    diagnosis = _text(result).split("Expected:")[0]
    assert wrong in diagnosis, (name, arguments, _text(result))


@settings(FUZZ, max_examples=int(30 * SCALE))
@given(name=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1,
                    max_size=80).filter(lambda n: n not in SPECS and n != "sandbox_release"))
async def test_an_unknown_tool_gets_a_tool_error_naming_it(
        gateway: RunningGateway, watch: SandboxWatch, name: str) -> None:
    result = await _call(gateway, name, {})
    watch.check(result)
    assert result.is_error and repr(name) in _text(result), (name, _text(result))


# ----- shell and Python: any text the schema allows ----------------------------------------

SHORT_TIMEOUT = st.floats(min_value=0.1, max_value=3.0)
"""A fuzzed command must not hold the suite for an hour: every call gets one, drawn or
not (a cell of 60 000 semicolons keeps IPython busy past the call's 60 s otherwise)."""
BASE = st.sampled_from(GROUPS["base"]).flatmap(lambda name: st.tuples(
    st.just(name), valid_arguments(SPECS[name].input_schema, huge=HUGE,
                                   overrides={"timeout": SHORT_TIMEOUT}),
    SHORT_TIMEOUT)).map(lambda drawn: (drawn[0], {"timeout": drawn[2], **drawn[1]}))


@settings(FUZZ, max_examples=int(60 * SCALE))
@given(case=BASE)
@example(case=("run_ipython_cell", {"code": ";" * 62568, "timeout": 1.0}))
async def test_any_command_or_cell_the_schema_allows_gets_a_result_and_sandboxd_survives(
        gateway: RunningGateway, watch: SandboxWatch, case: tuple[str, dict[str, Any]]) -> None:
    name, arguments = case
    result = await _call(gateway, name, arguments)
    watch.check(result)
    assert result.content, (name, arguments)


# ----- file tools: hostile paths, symlinks out, canaries outside --------------------------


def _found(tool: str, text: str) -> str:
    """What a successful result reports, without the per-file errors that
    read_multiple_files embeds (each names the path it refused)."""
    if tool != "read_multiple_files":
        return text
    return "\n---\n".join(part for part in text.split("\n---\n") if ": Error - " not in part)


@dataclass
class Farm:
    """Symlinks in the fuzz session's /workspace, canaries outside it, and a snapshot of
    everything outside the workspace that a file tool could reach if confinement failed."""

    workspace: Path
    run_dir: Path
    sandbox_tmp: Path
    """The sandbox's private /tmp, seen from the host through /proc/PID/root."""
    uid: int
    secrets: tuple[str, ...]
    """Contents that must never appear in a result: the canaries, the token, passwd."""
    before: dict[str, tuple[object, ...]] = field(default_factory=dict)
    culprit: str = ""
    """The first call after which something outside the workspace had changed: later
    examples fail too (the change stays), so shrinking alone would hide it."""

    def check_unchanged(self, tool: str, arguments: dict[str, Any]) -> None:
        now = self.snapshot()
        changed = sorted(k for k in self.before.keys() | now.keys()
                         if self.before.get(k) != now.get(k))
        if changed and not self.culprit:
            self.culprit = f"{tool} {arguments!r:.500} changed {changed}"
        assert not changed, f"changed outside /workspace; first by: {self.culprit}"

    def plant(self) -> None:
        """(Re)create the symlinks; fuzzed moves and writes may have taken them away.

        The workspace is the sandbox's to change: host code here follows no name in
        it (``O_NOFOLLOW``, ``dir_fd``), or a moved symlink would aim it at the host.
        """
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
        workspace = os.open(self.workspace, flags)
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir("sub", dir_fd=workspace)
            for name, target in LINKS.items():
                head, _, leaf = name.rpartition("/")
                try:
                    parent = os.open(head, flags, dir_fd=workspace) if head else workspace
                except OSError:
                    continue  # "sub" was replaced by something that is not a directory
                try:
                    with contextlib.suppress(FileExistsError):
                        os.symlink(target, leaf, dir_fd=parent)
                        os.chown(leaf, self.uid, self.uid, dir_fd=parent, follow_symlinks=False)
                finally:
                    if parent != workspace:
                        os.close(parent)
        finally:
            os.close(workspace)

    def snapshot(self) -> dict[str, tuple[object, ...]]:
        seen: dict[str, tuple[object, ...]] = {}
        for top in (self.run_dir, self.sandbox_tmp):
            for path in [top, *top.rglob("*")]:
                info = path.lstat()
                digest = ""
                if path.is_file() and not path.is_symlink() and info.st_size < 1 << 20:
                    digest = hashlib.sha256(path.read_bytes()).hexdigest()
                seen[str(path)] = (info.st_mode, info.st_size, info.st_mtime_ns, digest)
        return seen


def _init_pid(state_dir: Path, sandbox: str) -> int:
    """The sandbox's first process in its own mount namespace: it lives as long as the
    sandbox (bwrap's parent outside, and short-lived commands, would not do)."""
    host = os.stat("/proc/self/ns/mnt").st_ino
    for pid in sandbox_pids(state_dir, sandbox):
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{pid}/ns/mnt").st_ino != host:
                return pid
    raise AssertionError(f"no process of sandbox {sandbox} in a mount namespace of its own")


async def _farm(gateway: RunningGateway, service: RunningService, watch: SandboxWatch) -> Farm:
    bound = await _call(gateway, "list_directory", {"path": "."})
    watch.check(bound)
    sandbox = watch.sandbox_id
    root = service.settings.state_dir / "sb" / sandbox
    workspace = root / "workspace"
    uid = workspace.stat().st_uid
    sandbox_tmp = Path(f"/proc/{_init_pid(service.settings.state_dir, sandbox)}/root/tmp")
    record = await service.registry.get(sandbox)
    assert record is not None
    token = record.token  # sandboxd unlinked its token file once it read it
    secrets_ = (f"canary in the run dir {secrets.token_hex(8)}",
                f"canary in /tmp {secrets.token_hex(8)}", token,
                (service.settings.state_dir / "etc" / "passwd").read_text().strip())
    canary = root / "run" / CANARY
    canary.write_text(secrets_[0])
    os.chown(canary, uid, uid)  # only confinement, not permissions, keeps the tools out
    # The sandbox's /tmp belongs to its user namespace: host root cannot create files
    # there (EOVERFLOW), so the sandbox plants that canary itself.
    planted = await _call(gateway, "run_shell_command",
                          {"command": f"printf '%s' '{secrets_[1]}' > /tmp/{CANARY}"})
    watch.check(planted)
    assert not planted.is_error, _text(planted)
    # Both canaries are in reach of the sandbox's own processes: only the file tools'
    # confinement keeps them out of the tools' results.
    reach = await _call(gateway, "run_shell_command",
                        {"command": f"cat /run/sandgate/{CANARY}; echo; cat /tmp/{CANARY}"})
    assert _text(reach).startswith(f"{secrets_[0]}\n{secrets_[1]}"), _text(reach)
    (workspace / "plain.txt").write_text("plain\n")
    os.chown(workspace / "plain.txt", uid, uid)
    farm = Farm(workspace, root / "run", sandbox_tmp, uid, secrets_)
    farm.plant()
    farm.before = farm.snapshot()
    return farm


@pytest.fixture
async def farm(gateway: RunningGateway, sandbox_service: RunningService,
               watch: SandboxWatch) -> AsyncIterator[Farm]:
    yield await _farm(gateway, sandbox_service, watch)


FILES = st.sampled_from(GROUPS["filesystem"]).flatmap(lambda name: st.tuples(
    st.just(name), valid_arguments(SPECS[name].input_schema, paths=PATHS, huge=HUGE)))


@settings(FUZZ, max_examples=int(200 * SCALE))
@given(case=FILES)
# Found by this test: a symlink loop made sandboxd skip resolving the rest of a path.
@example(case=("write_file", {"path": f"loop_link/../tmp_link/{NEVER_CREATED}",
                              "content": "out"}))
@example(case=("create_directory", {"path": f"loop_link/../tmp_link/{NEVER_CREATED}/d"}))
@example(case=("move_file", {"source": "plain.txt",
                             "destination": f"loop_link/../tmp_link/{NEVER_CREATED}"}))
async def test_file_tools_never_reach_outside_the_workspace_whatever_the_path(
        gateway: RunningGateway, watch: SandboxWatch, farm: Farm,
        case: tuple[str, dict[str, Any]]) -> None:
    name, arguments = case
    farm.plant()
    result = await _call(gateway, name, arguments)
    watch.check(result)
    text = _text(result)
    leaked = [s[:40] for s in farm.secrets if s in text]
    assert not leaked, (name, arguments, leaked)
    # An error may echo the path it refused; what a tool found may not name a canary.
    found = "" if result.is_error else _found(name, text)
    assert CANARY not in found and NEVER_CREATED not in found, (name, arguments, found[:300])
    farm.check_unchanged(name, arguments)
