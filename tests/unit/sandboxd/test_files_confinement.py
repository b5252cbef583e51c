"""Property: no sequence of file operations reaches outside the workspace.

A farm of symlinks (out of the workspace, up, a loop, dangling, chained through a
subdirectory) is re-planted before every operation, so moves and removals keep
making new arrangements of it; the operations get paths made of those names,
``..`` and ``.``. Whatever they do, nothing outside the workspace changes. All
links are relative and lead only into this test's temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from sandbox_svc.sandboxd.errors import SandboxdError
from sandbox_svc.sandboxd.files import TextEdit, WorkspaceFiles
from sandbox_svc.sandboxd.limits import Limits
from sandbox_svc.sandboxd.paths import Workspace

LINKS = {"out_link": "../outside", "loop": "loop", "up": "..", "sub/escape": "../..",
         "dangling": "../outside/never", "file_link": "plain.txt"}
NAMES = ["out_link", "loop", "up", "sub", "escape", "dangling", "file_link", "plain.txt",
         "new", "outside", "ws", "..", ".", "",
         "loop/..", "up/ws", "sub/escape/.."]  # detours that come back, or seem to
PATHS = st.tuples(st.sampled_from(["", "./", "/workspace/"]),
                  st.lists(st.sampled_from(NAMES), min_size=1, max_size=5).map("/".join)
                  ).map("".join)
OPERATIONS = st.lists(st.tuples(
    st.sampled_from(["mkdir", "write", "move", "remove", "edit", "read", "list", "search"]),
    PATHS, PATHS), min_size=1, max_size=25)


def _plant(workspace: Path) -> None:
    """(Re)create the farm without following any name in the workspace."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    top = os.open(workspace, flags)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir("sub", dir_fd=top)
        with contextlib.suppress(FileExistsError):
            os.close(os.open("plain.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, dir_fd=top))
        for name, target in LINKS.items():
            head, _, leaf = name.rpartition("/")
            try:
                parent = os.open(head, flags, dir_fd=top) if head else top
            except OSError:
                continue
            try:
                with contextlib.suppress(FileExistsError):
                    os.symlink(target, leaf, dir_fd=parent)
            finally:
                if parent != top:
                    os.close(parent)
    finally:
        os.close(top)


def _outside(base: Path) -> list[tuple[str, int, int]]:
    """Everything under ``base`` but the workspace: names, kinds and sizes."""
    seen = []
    for directory, dirs, names in os.walk(base):
        if Path(directory) == base:
            dirs.remove("ws")
        for name in dirs + names:
            info = os.lstat(os.path.join(directory, name))
            seen.append((os.path.join(directory, name), info.st_mode, info.st_size))
    return sorted(seen)


async def _data() -> AsyncIterator[bytes]:
    yield b"written"


async def _apply(files: WorkspaceFiles, operation: str, path: str, other: str) -> None:
    if operation == "mkdir":
        await files.make_directory(path, parents=True)
    elif operation == "write":
        await files.write(path, _data(), make_parents=True)
    elif operation == "move":
        await files.move(path, other)
    elif operation == "remove":
        await files.remove(path, recursive=True)
    elif operation == "edit":
        await files.edit(path, [TextEdit("written", "edited")])
    elif operation == "read":
        async for _ in files.read(path):
            pass
    elif operation == "list":
        await files.list_directory(path, depth=3)
    else:
        await files.search(path, other or "*")


@settings(max_examples=300)
@given(operations=OPERATIONS)
@example(operations=[("write", "loop/../out_link/new", "")])  # once escaped (realpath loop)
async def test_no_sequence_of_file_operations_changes_anything_outside_the_workspace(
        operations: list[tuple[str, str, str]]) -> None:
    with tempfile.TemporaryDirectory() as temporary:
        base = Path(temporary)
        workspace = base / "ws"
        workspace.mkdir()
        (base / "outside").mkdir()
        (base / "outside" / "secret").write_text("s3cret")
        files = WorkspaceFiles(Workspace(workspace), Limits())
        _plant(workspace)
        before = _outside(base)
        for operation, path, other in operations:
            _plant(workspace)
            with contextlib.suppress(SandboxdError):
                await _apply(files, operation, path, other)
            assert _outside(base) == before, (operation, path, other)
