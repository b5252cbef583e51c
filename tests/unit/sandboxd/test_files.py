from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest

from sandbox_svc.sandboxd.errors import (
    DirectoryNotEmptyError,
    EditTextMismatchError,
    FileNotRegularError,
    FileNotTextError,
    FileTooLargeError,
    InvalidInputError,
    PathAlreadyExistsError,
    PathIsDirectoryError,
    PathNotDirectoryError,
    PathNotFoundError,
    PathOutsideWorkspaceError,
    WorkspaceRootError,
)
from sandbox_svc.sandboxd.fileinfo import FileKind
from sandbox_svc.sandboxd.files import ReadChunk, TextEdit, WorkspaceFiles
from sandbox_svc.sandboxd.limits import Limits
from sandbox_svc.sandboxd.paths import Workspace
from sandbox_svc.sandboxd.search import GlobMatcher


@pytest.fixture
def root(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("s3cret")
    return ws


def make_files(root: Path, **limits: int) -> WorkspaceFiles:
    return WorkspaceFiles(Workspace(root), Limits(**limits))


@pytest.fixture
def files(root: Path) -> WorkspaceFiles:
    return make_files(root, read_chunk_bytes=4, max_file_bytes=64, max_read_bytes=32)


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read_all(files: WorkspaceFiles, path: str, **kw: int) -> list[ReadChunk]:
    async with asyncio.timeout(5):
        return [c async for c in files.read(path, **kw)]


def leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".sandgate-write-")]


def names(paths: Iterable[str]) -> list[str]:
    return [p.removeprefix("/workspace/") for p in paths]


# --- read -------------------------------------------------------------------


async def test_read_streams_chunks_and_the_first_carries_the_info(
    files: WorkspaceFiles, root: Path
) -> None:
    (root / "f.txt").write_bytes(b"0123456789")
    got = await read_all(files, "f.txt")
    assert [c.data for c in got] == [b"0123", b"4567", b"89"]
    assert got[0].info is not None and got[0].info.path == "/workspace/f.txt"
    assert got[0].info.size == 10 and got[0].info.kind is FileKind.FILE
    assert all(c.info is None for c in got[1:])


async def test_read_honours_offset_and_limit(files: WorkspaceFiles, root: Path) -> None:
    (root / "f.txt").write_bytes(b"0123456789")
    got = await read_all(files, "/workspace/f.txt", offset=3, limit=5)
    assert b"".join(c.data for c in got) == b"34567"


async def test_read_stops_at_the_server_read_limit(files: WorkspaceFiles, root: Path) -> None:
    (root / "big").write_bytes(b"x" * 100)
    got = await read_all(files, "big")
    assert len(b"".join(c.data for c in got)) == 32


async def test_reading_an_empty_file_yields_one_chunk_with_the_info(
    files: WorkspaceFiles, root: Path
) -> None:
    (root / "empty").write_bytes(b"")
    got = await read_all(files, "empty")
    assert len(got) == 1 and got[0].data == b"" and got[0].info is not None


async def test_reading_a_directory_a_fifo_or_nothing_fails_with_what_it_is(
    files: WorkspaceFiles, root: Path
) -> None:
    (root / "d").mkdir()
    os.mkfifo(root / "fifo")
    with pytest.raises(PathIsDirectoryError):
        await read_all(files, "d")
    with pytest.raises(FileNotRegularError):
        await read_all(files, "fifo")
    with pytest.raises(PathNotFoundError):
        await read_all(files, "missing")
    with pytest.raises(InvalidInputError):
        await read_all(files, "d", offset=-1)


async def test_reading_through_a_symlink_that_leaves_the_workspace_is_rejected(
    files: WorkspaceFiles, root: Path
) -> None:
    (root / "escape").symlink_to(root.parent / "outside" / "secret")
    with pytest.raises(PathOutsideWorkspaceError):
        await read_all(files, "escape")


# --- write ------------------------------------------------------------------


async def test_write_creates_a_file_with_mode_0644_and_leaves_no_temp_file(
    files: WorkspaceFiles, root: Path
) -> None:
    info = await files.write("new.txt", chunks(b"hello ", b"world"))
    assert (root / "new.txt").read_bytes() == b"hello world"
    assert stat.S_IMODE((root / "new.txt").stat().st_mode) == 0o644
    assert info.path == "/workspace/new.txt" and info.size == 11 and info.mode == 0o644
    assert leftovers(root) == []


async def test_write_applies_a_requested_mode_and_keeps_an_existing_one(
    files: WorkspaceFiles, root: Path
) -> None:
    await files.write("run.sh", chunks(b"#!/bin/sh\n"), mode=0o755)
    assert stat.S_IMODE((root / "run.sh").stat().st_mode) == 0o755
    await files.write("run.sh", chunks(b"#!/bin/sh\necho\n"))
    assert stat.S_IMODE((root / "run.sh").stat().st_mode) == 0o755


async def test_write_appends_when_asked(files: WorkspaceFiles, root: Path) -> None:
    (root / "log").write_bytes(b"one\n")
    await files.write("log", chunks(b"two\n"), append=True)
    assert (root / "log").read_bytes() == b"one\ntwo\n"


async def test_write_creates_parents_only_when_asked(files: WorkspaceFiles, root: Path) -> None:
    with pytest.raises(PathNotFoundError):
        await files.write("a/b/c.txt", chunks(b"x"))
    await files.write("a/b/c.txt", chunks(b"x"), make_parents=True)
    assert (root / "a" / "b" / "c.txt").read_bytes() == b"x"


async def test_write_past_the_size_limit_fails_and_keeps_the_old_file(
    files: WorkspaceFiles, root: Path
) -> None:
    (root / "keep").write_bytes(b"original")
    with pytest.raises(FileTooLargeError) as caught:
        await files.write("keep", chunks(b"x" * 40, b"y" * 40))
    assert caught.value.limit == 64
    assert (root / "keep").read_bytes() == b"original"
    assert leftovers(root) == []


async def test_a_write_whose_stream_breaks_leaves_the_old_file_untouched(
    files: WorkspaceFiles, root: Path
) -> None:
    (root / "keep").write_bytes(b"original")

    async def broken() -> AsyncIterator[bytes]:
        yield b"partial"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        await files.write("keep", broken())
    assert (root / "keep").read_bytes() == b"original"
    assert leftovers(root) == []


async def test_writing_onto_a_directory_fails(files: WorkspaceFiles, root: Path) -> None:
    (root / "d").mkdir()
    with pytest.raises(PathIsDirectoryError):
        await files.write("d", chunks(b"x"))


async def test_writing_through_a_symlink_replaces_its_target_and_keeps_the_link(
    files: WorkspaceFiles, root: Path
) -> None:
    (root / "target.txt").write_text("old")
    (root / "link").symlink_to("target.txt")
    await files.write("link", chunks(b"new"))
    assert (root / "link").is_symlink()
    assert (root / "target.txt").read_text() == "new"


async def test_writing_into_a_symlinked_directory_outside_is_rejected(
    files: WorkspaceFiles, root: Path
) -> None:
    (root / "escape").symlink_to(root.parent / "outside")
    with pytest.raises(PathOutsideWorkspaceError):
        await files.write("escape/planted", chunks(b"x"))
    assert not (root.parent / "outside" / "planted").exists()


# --- list / stat ---------------------------------------------------------------


async def test_list_directory_descends_to_the_asked_depth_sorted_by_path(
    files: WorkspaceFiles, root: Path
) -> None:
    (root / "b" / "deep" / "deeper").mkdir(parents=True)
    (root / "b" / "x.txt").write_text("x")
    (root / "a.txt").write_text("a")
    one = await files.list_directory("")
    assert names(e.path for e in one.entries) == ["a.txt", "b"]
    two = await files.list_directory("/workspace", depth=2)
    assert names(e.path for e in two.entries) == ["a.txt", "b", "b/deep", "b/x.txt"]
    assert not two.truncated


async def test_list_directory_stops_at_the_entry_limit(root: Path) -> None:
    for i in range(5):
        (root / f"f{i}").write_text("")
    listing = await make_files(root, max_list_entries=3).list_directory("")
    assert len(listing.entries) == 3 and listing.truncated


async def test_listing_a_file_or_nothing_fails(files: WorkspaceFiles, root: Path) -> None:
    (root / "f").write_text("")
    with pytest.raises(PathNotDirectoryError):
        await files.list_directory("f")
    with pytest.raises(PathNotFoundError):
        await files.list_directory("nope")


async def test_stat_describes_a_symlink_as_a_symlink(files: WorkspaceFiles, root: Path) -> None:
    (root / "f").write_text("abc")
    (root / "link").symlink_to("f")
    (root / "escape").symlink_to(root.parent / "outside")
    assert (await files.stat("f")).kind is FileKind.FILE
    assert (await files.stat("link")).kind is FileKind.SYMLINK
    assert (await files.stat("escape")).kind is FileKind.SYMLINK
    root_info = await files.stat("/workspace")
    assert root_info.kind is FileKind.DIRECTORY and root_info.path == "/workspace"
    with pytest.raises(PathNotFoundError):
        await files.stat("missing")


# --- mkdir / move / remove ----------------------------------------------------


async def test_make_directory_creates_parents_only_when_asked(
    files: WorkspaceFiles, root: Path
) -> None:
    with pytest.raises(PathNotFoundError):
        await files.make_directory("p/q")
    info = await files.make_directory("p/q", parents=True)
    assert info.kind is FileKind.DIRECTORY and (root / "p" / "q").is_dir()


async def test_make_directory_accepts_an_existing_directory_but_not_a_file(
    files: WorkspaceFiles, root: Path
) -> None:
    (root / "d").mkdir()
    (root / "f").write_text("")
    assert (await files.make_directory("d")).kind is FileKind.DIRECTORY
    with pytest.raises(PathAlreadyExistsError):
        await files.make_directory("f")


async def test_move_renames_and_overwrites_only_when_asked(
    files: WorkspaceFiles, root: Path
) -> None:
    (root / "a").write_text("A")
    (root / "b").write_text("B")
    with pytest.raises(PathAlreadyExistsError):
        await files.move("a", "b")
    info = await files.move("a", "b", overwrite=True)
    assert info.path == "/workspace/b" and (root / "b").read_text() == "A"
    assert not (root / "a").exists()
    with pytest.raises(PathNotFoundError):
        await files.move("a", "c")


async def test_move_moves_a_symlink_itself(files: WorkspaceFiles, root: Path) -> None:
    (root / "escape").symlink_to(root.parent / "outside")
    await files.move("escape", "renamed")
    assert (root / "renamed").is_symlink()
    assert (root.parent / "outside" / "secret").exists()


async def test_move_refuses_the_workspace_root_and_destinations_outside(
    files: WorkspaceFiles, root: Path
) -> None:
    (root / "a").write_text("A")
    with pytest.raises(WorkspaceRootError):
        await files.move("/workspace", "x")
    with pytest.raises(PathOutsideWorkspaceError):
        await files.move("a", "../outside/a")


async def test_remove_deletes_files_links_and_directories(
    files: WorkspaceFiles, root: Path
) -> None:
    (root / "f").write_text("")
    (root / "empty").mkdir()
    (root / "escape").symlink_to(root.parent / "outside")
    await files.remove("f")
    await files.remove("empty")
    await files.remove("escape")
    assert sorted(p.name for p in root.iterdir()) == []
    assert (root.parent / "outside" / "secret").exists()


async def test_remove_needs_recursive_for_a_non_empty_directory(
    files: WorkspaceFiles, root: Path
) -> None:
    (root / "d" / "e").mkdir(parents=True)
    with pytest.raises(DirectoryNotEmptyError):
        await files.remove("d")
    await files.remove("d", recursive=True)
    assert not (root / "d").exists()


async def test_remove_refuses_the_workspace_root(files: WorkspaceFiles, root: Path) -> None:
    for spelling in ("", "/workspace", ".", str(root)):
        with pytest.raises(WorkspaceRootError):
            await files.remove(spelling, recursive=True)
    assert root.is_dir()


# --- edit ---------------------------------------------------------------------


async def test_edit_applies_edits_in_order_and_returns_a_unified_diff(root: Path) -> None:
    files = make_files(root)
    (root / "m.py").write_text("a = 1\nb = 2\n")
    os.chmod(root / "m.py", 0o600)
    result = await files.edit(
        "m.py", [TextEdit("a = 1", "a = 10"), TextEdit("a = 10\nb", "a = 10\nc")]
    )
    assert (root / "m.py").read_text() == "a = 10\nc = 2\n"
    assert "-a = 1\n" in result.diff and "+a = 10\n" in result.diff and "+c = 2\n" in result.diff
    assert result.diff.startswith("--- /workspace/m.py\n+++ /workspace/m.py\n")
    assert stat.S_IMODE((root / "m.py").stat().st_mode) == 0o600


async def test_edit_dry_run_leaves_the_file_alone(root: Path) -> None:
    files = make_files(root)
    (root / "m.py").write_text("x = 1")
    result = await files.edit("m.py", [TextEdit("x = 1", "x = 2")], dry_run=True)
    assert (root / "m.py").read_text() == "x = 1"
    assert "+x = 2\n\\ No newline at end of file\n" in result.diff


@pytest.mark.parametrize(("text", "count"), [("zzz", 0), ("dup", 2)])
async def test_edit_rejects_old_text_that_does_not_occur_exactly_once(
    root: Path, text: str, count: int
) -> None:
    files = make_files(root)
    (root / "m.txt").write_text("dup dup once")
    with pytest.raises(EditTextMismatchError) as caught:
        await files.edit("m.txt", [TextEdit("once", "1"), TextEdit(text, "x")])
    assert caught.value.count == count and caught.value.index == 1
    assert (root / "m.txt").read_text() == "dup dup once"


async def test_edit_refuses_binary_files(root: Path) -> None:
    (root / "b.bin").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(FileNotTextError):
        await make_files(root).edit("b.bin", [TextEdit("a", "b")])


# --- search -------------------------------------------------------------------


@pytest.fixture
def tree(root: Path) -> Path:
    for rel in [
        "a.py",
        "src/b.py",
        "src/pkg/c.py",
        "src/pkg/test_c.py",
        "tests/test_a.py",
        "node_modules/dep/index.py",
        "README.md",
    ]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")
    return root


async def test_a_pattern_without_slash_matches_names_at_any_depth(
    files: WorkspaceFiles, tree: Path
) -> None:
    result = await files.search("", "*.py", exclude_patterns=["node_modules"])
    assert names(result.paths) == [
        "a.py",
        "src/b.py",
        "src/pkg/c.py",
        "src/pkg/test_c.py",
        "tests/test_a.py",
    ]
    assert not result.truncated


async def test_a_pattern_with_slash_matches_paths_relative_to_the_searched_directory(
    files: WorkspaceFiles, tree: Path
) -> None:
    result = await files.search("/workspace/src", "**/test_*")
    assert names(result.paths) == ["src/pkg/test_c.py"]
    top = await files.search("", "src/*.py")
    assert names(top.paths) == ["src/b.py"]


async def test_search_stops_at_max_results(files: WorkspaceFiles, tree: Path) -> None:
    result = await files.search("", "*.py", max_results=2)
    assert len(result.paths) == 2 and result.truncated


async def test_searching_a_missing_directory_fails(files: WorkspaceFiles, tree: Path) -> None:
    with pytest.raises(PathNotFoundError):
        await files.search("nope", "*")
    with pytest.raises(InvalidInputError):
        await files.search("", "")


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.py", "deep/x.py", True),
        ("src/*.py", "src/a/b.py", False),
        ("src/**/*.py", "src/a.py", True),
        ("src/**", "src/a/b", True),
        ("[ab].txt", "b.txt", True),
        ("[!ab].txt", "c.txt", True),
        ("[!ab].txt", "a.txt", False),
        ("file?.txt", "file1.txt", True),
        ("a+b(c).txt", "a+b(c).txt", True),
    ],
)
def test_glob_patterns_follow_shell_rules_with_globstar(
    pattern: str, path: str, matches: bool
) -> None:
    assert GlobMatcher(pattern).matches(path, path.rsplit("/", 1)[-1]) is matches


async def test_a_move_through_a_symlink_loop_never_lands_outside(
    files: WorkspaceFiles, root: Path
) -> None:
    (root / "loop").symlink_to("loop")
    (root / "escape").symlink_to(root.parent / "outside")
    (root / "f").write_text("mine")
    with pytest.raises(InvalidInputError):
        await files.move("f", "loop/../escape/f")
    assert not (root.parent / "outside" / "f").exists() and (root / "f").exists()
