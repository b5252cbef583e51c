"""What a path is: the FileInfo value and the translation of OS errors.

Both are shared by the file operations (``files``) and the search
(``search``). OS errors are translated here, at the file-system boundary, into
the domain hierarchy of ``errors``.
"""

from __future__ import annotations

import enum
import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import (
    DirectoryNotEmptyError,
    DiskFullError,
    InvalidInputError,
    PathAccessDeniedError,
    PathAlreadyExistsError,
    PathIsDirectoryError,
    PathNotDirectoryError,
    PathNotFoundError,
)
from .paths import Workspace

__all__ = ["FileInfo", "FileKind", "file_info", "os_errors"]


class FileKind(enum.Enum):
    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    OTHER = "other"


@dataclass(frozen=True)
class FileInfo:
    """One path as the sandbox sees it (``lstat``: a link is a SYMLINK)."""

    path: str
    """Absolute, spelled under /workspace."""
    name: str
    kind: FileKind
    size: int
    mode: int
    """Permission bits, e.g. 0o644."""
    modified_at: float
    """Seconds since the epoch."""
    accessed_at: float
    # Linux gives no birth time through os.stat on Python 3.11, so there is no
    # created_at rather than a changed-time posing as one.


def _kind(mode: int) -> FileKind:
    if stat.S_ISLNK(mode):
        return FileKind.SYMLINK
    if stat.S_ISDIR(mode):
        return FileKind.DIRECTORY
    if stat.S_ISREG(mode):
        return FileKind.FILE
    return FileKind.OTHER


def file_info(workspace: Workspace, real: Path | str, st: os.stat_result | None = None) -> FileInfo:
    """Describe ``real`` (lstat'ed unless ``st`` is given)."""
    if st is None:
        st = os.lstat(real)
    shown = workspace.display(real)
    return FileInfo(
        path=shown,
        name=shown.rsplit("/", 1)[-1],
        kind=_kind(st.st_mode),
        size=st.st_size,
        mode=stat.S_IMODE(st.st_mode),
        modified_at=st.st_mtime,
        accessed_at=st.st_atime,
    )


@contextmanager
def os_errors(shown: str) -> Iterator[None]:
    """Translate an OSError about ``shown`` into a domain error.

    Errors without a domain meaning propagate unchanged (INTERNAL at the edge).
    """
    try:
        yield
    except OSError as exc:
        translated = _translate(exc, shown)
        if translated is None:
            raise
        raise translated from exc


def _translate(exc: OSError, shown: str) -> Exception | None:
    code = exc.errno
    if code == errno.ENOENT:
        return PathNotFoundError(shown)
    if code == errno.EEXIST:
        return PathAlreadyExistsError(shown)
    if code == errno.EISDIR:
        return PathIsDirectoryError(shown)
    if code == errno.ENOTDIR:
        return PathNotDirectoryError(shown)
    if code == errno.ENOTEMPTY:
        return DirectoryNotEmptyError(shown)
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PathAccessDeniedError(shown)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(shown)
    if code == errno.ENAMETOOLONG:
        return InvalidInputError(f"{shown}: a name is too long; at most 255 bytes per name")
    if code == errno.ELOOP:
        return InvalidInputError(f"{shown}: too many levels of symbolic links")
    if code == errno.EINVAL:
        return InvalidInputError(f"{shown}: invalid operation ({exc.strerror})")
    return None
