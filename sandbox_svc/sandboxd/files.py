"""File operations inside the workspace: read, write, list, stat, mkdir, move,
remove, edit and search.

Every operation resolves its paths through ``Workspace`` (symlinks included)
and runs its blocking file-system work in a worker thread, so the event loop
never waits on a disk. Writes are atomic: a temporary file in the target's
directory, then ``os.replace``. Stdlib modules that only some operations need
(shutil, difflib) are imported there: start-up is on the sandbox's cold path.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import (
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
    WorkspaceRootError,
)
from .fileinfo import FileInfo, file_info, os_errors
from .limits import Limits
from .paths import Workspace
from .search import SearchResult, search_files

__all__ = ["EditResult", "Listing", "ReadChunk", "TextEdit", "WorkspaceFiles"]

_DEFAULT_MODE = 0o644


@dataclass(frozen=True)
class ReadChunk:
    """A piece of a file; the first one carries the file's info."""

    info: FileInfo | None
    data: bytes


@dataclass(frozen=True)
class Listing:
    entries: list[FileInfo]
    """Sorted by path."""
    truncated: bool


@dataclass(frozen=True)
class TextEdit:
    old_text: str
    new_text: str


@dataclass(frozen=True)
class EditResult:
    diff: str
    info: FileInfo


class _PendingWrite:
    """A temporary file that becomes the target on commit."""

    def __init__(self, target: Path, mode: int, limit: int, shown: str) -> None:
        self.tmp = os.path.join(target.parent, f".sandgate-write-{os.urandom(8).hex()}")
        fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self.target = target
        self.file: BinaryIO = os.fdopen(fd, "wb")
        self.mode = mode
        self.size = 0
        self.limit = limit
        self.shown = shown

    def write(self, data: bytes) -> None:
        if self.size + len(data) > self.limit:
            raise FileTooLargeError(self.shown, self.limit)
        with os_errors(self.shown):
            self.file.write(data)
        self.size += len(data)

    def commit(self) -> None:
        with os_errors(self.shown):
            self.file.flush()
            os.fchmod(self.file.fileno(), self.mode)
            self.file.close()
            os.replace(self.tmp, self.target)

    def abort(self) -> None:
        self.file.close()
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass


class WorkspaceFiles:
    """The file RPCs' domain: every method takes caller paths and limits them."""

    def __init__(self, workspace: Workspace, limits: Limits) -> None:
        self._ws = workspace
        self._limits = limits

    # --- read -------------------------------------------------------------

    async def read(
        self, path: str, *, offset: int = 0, limit: int = 0
    ) -> AsyncGenerator[ReadChunk, None]:
        """Stream a file's bytes from ``offset``, at most ``limit`` (0: to the end),
        never more than the server's read limit; the first chunk carries the info."""
        if offset < 0 or limit < 0:
            raise InvalidInputError("offset and limit must be >= 0 (limit 0 reads to the end)")
        cap = self._limits.max_read_bytes
        remaining = min(limit, cap) if limit else cap
        info, fobj = await asyncio.to_thread(self._open_for_read, path, offset)
        try:
            first = True
            while True:
                size = min(self._limits.read_chunk_bytes, remaining)
                data = await asyncio.to_thread(fobj.read, size) if size > 0 else b""
                remaining -= len(data)
                if first or data:
                    yield ReadChunk(info if first else None, data)
                first = False
                if not data or remaining <= 0:
                    return
        finally:
            fobj.close()

    def _open_for_read(self, path: str, offset: int) -> tuple[FileInfo, BinaryIO]:
        real = self._ws.resolve(path)
        shown = self._ws.display(real)
        with os_errors(shown):
            st = os.stat(real)
            _require_regular(st, shown)
            fobj = open(real, "rb")  # noqa: SIM115 - closed by the reading generator
        fobj.seek(offset)
        return file_info(self._ws, real, st), fobj

    # --- write ------------------------------------------------------------

    async def write(
        self,
        path: str,
        chunks: AsyncIterable[bytes],
        *,
        mode: int = 0,
        append: bool = False,
        make_parents: bool = False,
    ) -> FileInfo:
        """Write the chunks to ``path``, replacing it atomically once all arrived.

        ``mode`` 0 keeps an existing file's bits, or gives a new file 0644.
        """
        if not 0 <= mode <= 0o7777:
            raise InvalidInputError(f"mode {mode:#o} is invalid; allowed: 0 to 0o7777")
        pending = await asyncio.to_thread(self._begin_write, path, mode, append, make_parents)
        try:
            async for data in chunks:
                await asyncio.to_thread(pending.write, data)
            await asyncio.to_thread(pending.commit)
        except BaseException:
            pending.abort()
            raise
        return await asyncio.to_thread(self._info, pending.target)

    def _begin_write(self, path: str, mode: int, append: bool, make_parents: bool) -> _PendingWrite:
        real = self._ws.resolve(path)
        shown = self._ws.display(real)
        parent = real.parent
        with os_errors(shown):
            try:
                st: os.stat_result | None = os.stat(real)
            except FileNotFoundError:
                st = None
            if st is not None:
                _require_regular(st, shown)
            if not parent.exists():
                if not make_parents:
                    raise PathNotFoundError(
                        self._ws.display(parent),
                        "parent directory does not exist; pass make_parents to create it",
                    )
                os.makedirs(parent, exist_ok=True)
            elif not parent.is_dir():
                raise PathNotDirectoryError(self._ws.display(parent))
            final_mode = mode or (stat.S_IMODE(st.st_mode) if st else _DEFAULT_MODE)
            pending = _PendingWrite(real, final_mode, self._limits.max_file_bytes, shown)
        if append and st is not None:
            try:
                with os_errors(shown), open(real, "rb") as existing:
                    while block := existing.read(self._limits.read_chunk_bytes):
                        pending.write(block)
            except BaseException:
                pending.abort()
                raise
        return pending

    # --- list / stat ------------------------------------------------------

    async def list_directory(self, path: str, *, depth: int = 1) -> Listing:
        """List a directory; ``depth`` 1 is the directory itself, more descends."""
        if depth < 0:
            raise InvalidInputError(
                f"depth {depth} is invalid; use 1 (or 0) for one level, more to descend"
            )
        return await asyncio.to_thread(self._list, path, depth or 1)

    def _list(self, path: str, depth: int) -> Listing:
        real = self._ws.resolve(path)
        shown = self._ws.display(real)
        with os_errors(shown):
            if not real.is_dir():
                if not real.exists():
                    raise PathNotFoundError(shown)
                raise PathNotDirectoryError(shown)
        limit = self._limits.max_list_entries
        entries: list[FileInfo] = []
        truncated = False
        queue: deque[tuple[str, int]] = deque([(os.fspath(real), 1)])
        while queue and not truncated:
            directory, level = queue.popleft()
            try:
                with os.scandir(directory) as it:
                    items = sorted(it, key=lambda e: e.name)
            except OSError:
                if directory == os.fspath(real):
                    with os_errors(shown):
                        raise
                continue  # an unreadable subdirectory is listed but not descended
            for entry in items:
                if len(entries) >= limit:
                    truncated = True
                    break
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed while we listed
                entries.append(file_info(self._ws, entry.path, st))
                if level < depth and stat.S_ISDIR(st.st_mode):
                    queue.append((entry.path, level + 1))
        entries.sort(key=lambda info: info.path)
        return Listing(entries=entries, truncated=truncated)

    async def stat(self, path: str) -> FileInfo:
        """Describe a path; a symlink is described itself, not its target."""
        return await asyncio.to_thread(self._stat, path)

    def _stat(self, path: str) -> FileInfo:
        return self._info(self._ws.resolve(path, follow_final=False))

    def _info(self, real: Path) -> FileInfo:
        with os_errors(self._ws.display(real)):
            return file_info(self._ws, real)

    # --- mkdir / move / remove ------------------------------------------

    async def make_directory(self, path: str, *, parents: bool = False) -> FileInfo:
        """Create a directory; an existing directory is fine, a file there is not."""
        return await asyncio.to_thread(self._mkdir, path, parents)

    def _mkdir(self, path: str, parents: bool) -> FileInfo:
        real = self._ws.resolve(path)
        shown = self._ws.display(real)
        with os_errors(shown):
            if real.is_dir():
                return file_info(self._ws, real)
            if os.path.lexists(real):
                raise PathAlreadyExistsError(shown, "it is not a directory")
            if parents:
                os.makedirs(real, exist_ok=True)
            else:
                try:
                    os.mkdir(real)
                except FileNotFoundError:
                    raise PathNotFoundError(
                        self._ws.display(real.parent),
                        "parent directory does not exist; pass parents to create it",
                    ) from None
            return file_info(self._ws, real)

    async def move(self, source: str, destination: str, *, overwrite: bool = False) -> FileInfo:
        """Rename a file, link or directory (a link moves itself, not its target)."""
        return await asyncio.to_thread(self._move, source, destination, overwrite)

    def _move(self, source: str, destination: str, overwrite: bool) -> FileInfo:
        src = self._ws.resolve(source, follow_final=False)
        dst = self._ws.resolve(destination, follow_final=False)
        if self._ws.is_root(src):
            raise WorkspaceRootError("move")
        if self._ws.is_root(dst):
            raise WorkspaceRootError("replace")
        src_shown, dst_shown = self._ws.display(src), self._ws.display(dst)
        if not os.path.lexists(src):
            raise PathNotFoundError(src_shown)
        if src == dst:
            return self._info(dst)
        if os.path.lexists(dst) and not overwrite:
            raise PathAlreadyExistsError(dst_shown, "pass overwrite to replace it")
        if not dst.parent.is_dir():
            raise PathNotFoundError(
                self._ws.display(dst.parent), "destination directory does not exist"
            )
        with os_errors(dst_shown):
            try:
                os.replace(src, dst)
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    raise DirectoryNotEmptyError(dst_shown, "remove it first") from exc
                if exc.errno == errno.EINVAL:
                    raise InvalidInputError(
                        f"cannot move {src_shown} into itself ({dst_shown})"
                    ) from exc
                if exc.errno != errno.EXDEV:
                    raise
                import shutil

                shutil.move(src, dst)  # another mount inside the workspace
        return self._info(dst)

    async def remove(self, path: str, *, recursive: bool = False) -> None:
        """Remove a file, a link (not its target) or a directory."""
        await asyncio.to_thread(self._remove, path, recursive)

    def _remove(self, path: str, recursive: bool) -> None:
        real = self._ws.resolve(path, follow_final=False)
        if self._ws.is_root(real):
            raise WorkspaceRootError("remove")
        shown = self._ws.display(real)
        with os_errors(shown):
            st = os.lstat(real)
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(real)
            elif recursive:
                import shutil

                shutil.rmtree(real)
            else:
                try:
                    os.rmdir(real)
                except OSError as exc:
                    if os.listdir(real):
                        raise DirectoryNotEmptyError(shown, "pass recursive to remove it") from exc
                    raise

    # --- edit / search ----------------------------------------------------

    async def edit(
        self, path: str, edits: Sequence[TextEdit], *, dry_run: bool = False
    ) -> EditResult:
        """Replace exact text spans in order; each old_text must occur exactly once."""
        if not edits:
            raise InvalidInputError("no edits given; pass at least one old_text/new_text pair")
        for index, edit in enumerate(edits):
            if not edit.old_text:
                raise InvalidInputError(
                    f"edit #{index + 1}: old_text is empty; it must be the exact text to replace"
                )
        return await asyncio.to_thread(self._edit, path, list(edits), dry_run)

    def _edit(self, path: str, edits: list[TextEdit], dry_run: bool) -> EditResult:
        real = self._ws.resolve(path)
        shown = self._ws.display(real)
        limit = self._limits.max_file_bytes
        with os_errors(shown):
            st = os.stat(real)
            _require_regular(st, shown)
            if st.st_size > limit:
                raise FileTooLargeError(shown, limit)
            raw = real.read_bytes()
        try:
            before = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FileNotTextError(shown) from None
        after = before
        for index, edit in enumerate(edits):
            count = after.count(edit.old_text)
            if count != 1:
                raise EditTextMismatchError(index, count)
            after = after.replace(edit.old_text, edit.new_text, 1)
        diff = _unified_diff(before, after, shown)
        if not dry_run and after != before:
            with os_errors(shown):
                pending = _PendingWrite(real, stat.S_IMODE(st.st_mode), limit, shown)
            try:
                pending.write(after.encode("utf-8"))
                pending.commit()
            except BaseException:
                pending.abort()
                raise
        return EditResult(diff=diff, info=self._info(real))

    async def search(
        self,
        path: str,
        pattern: str,
        *,
        exclude_patterns: Sequence[str] = (),
        max_results: int = 0,
    ) -> SearchResult:
        """Find paths under ``path`` matching a glob (see ``search``)."""
        if max_results < 0:
            raise InvalidInputError(
                f"max_results {max_results} is invalid; use 0 for the server limit "
                f"({self._limits.max_search_results}) or a positive number"
            )
        return await asyncio.to_thread(
            search_files, self._ws, self._limits, path, pattern, list(exclude_patterns), max_results
        )


def _require_regular(st: os.stat_result, shown: str) -> None:
    """Reads, writes and edits work on regular files only."""
    if stat.S_ISDIR(st.st_mode):
        raise PathIsDirectoryError(shown)
    if not stat.S_ISREG(st.st_mode):
        raise FileNotRegularError(shown)


def _unified_diff(before: str, after: str, shown: str) -> str:
    import difflib

    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=shown,
        tofile=shown,
    )
    out: list[str] = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)
