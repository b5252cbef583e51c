"""Resolution of caller paths inside the workspace.

Callers spell paths as inside the sandbox: relative to the workspace, or
absolute under ``/workspace``. The real workspace directory may live elsewhere
(tests use a temporary directory), so a leading ``/workspace`` is an alias of
the real root, and paths are reported back in the ``/workspace/...`` spelling.

Resolution follows symlinks (``os.path.realpath``; for a path that does not
exist yet, its nearest existing parent) and rejects anything that lands outside
the workspace. The functions here touch the file system: call them from a
worker thread, not from the event loop.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import InvalidInputError, PathOutsideWorkspaceError

__all__ = ["WORKSPACE_ALIAS", "Workspace"]

WORKSPACE_ALIAS = "/workspace"
"""How the workspace is spelled inside the sandbox."""

_MAX_PATH_CHARS = 4096


def _realpath(candidate: str, path: str) -> str:
    """``os.path.realpath``, refusing a path that runs into a symlink loop.

    After a loop, realpath returns the rest of the path unresolved and then drops
    ``..`` lexically: ``loop/../out/x`` came back as ``<workspace>/out/x`` even when
    ``out`` is a symlink that leads elsewhere. A resolved path holds no symlink; one
    that still does ran into a loop.

    Raises:
        InvalidInputError: the path runs into a symlink loop.
    """
    real = os.path.realpath(candidate)
    probe = "/"
    for name in real.split("/"):
        probe = os.path.join(probe, name)
        try:
            if stat.S_ISLNK(os.lstat(probe).st_mode):
                raise InvalidInputError(
                    f"path {path!r} runs into a symlink loop at {name!r}; give a path whose "
                    "symlinks lead somewhere")
        except (FileNotFoundError, NotADirectoryError):
            break  # the rest does not exist yet: nothing there to follow
    return real


class Workspace:
    """The workspace root and the rules for paths inside it."""

    def __init__(self, root: Path) -> None:
        real = os.path.realpath(root)
        if not os.path.isdir(real):
            raise NotADirectoryError(f"workspace {root} is not a directory")
        self._root = real

    @property
    def root(self) -> Path:
        """The real (symlink-free) workspace directory."""
        return Path(self._root)

    def resolve(self, path: str, *, follow_final: bool = True) -> Path:
        """Resolve a caller's path to a real path inside the workspace.

        Args:
            path: Relative to the workspace, or absolute under it (or under
                ``/workspace``); empty means the workspace itself.
            follow_final: Follow a symlink in the last component. Without it
                the link itself is named (stat, remove and move act on links).

        Raises:
            InvalidInputError: the path is malformed.
            PathOutsideWorkspaceError: the path resolves outside the workspace.
        """
        candidate = self._candidate(path)
        if not follow_final:
            parent, name = os.path.split(candidate)
            if name not in ("", ".", ".."):
                real_parent = _realpath(parent, path)
                if self._contains(real_parent):
                    return Path(real_parent, name)
        real = _realpath(candidate, path)
        if not self._contains(real):
            raise PathOutsideWorkspaceError(path)
        return Path(real)

    def display(self, real: Path | str) -> str:
        """Spell a real path inside the workspace as the sandbox sees it."""
        rel = os.path.relpath(real, self._root)
        return WORKSPACE_ALIAS if rel == "." else f"{WORKSPACE_ALIAS}/{rel}"

    def is_root(self, real: Path | str) -> bool:
        return os.fspath(real) == self._root

    def _candidate(self, path: str) -> str:
        if "\x00" in path:
            raise InvalidInputError("path contains a NUL byte; paths are plain text")
        if len(path) > _MAX_PATH_CHARS:
            raise InvalidInputError(
                f"path is {len(path)} characters long; at most {_MAX_PATH_CHARS} are allowed"
            )
        if path == WORKSPACE_ALIAS or path.startswith(WORKSPACE_ALIAS + "/"):
            return os.path.join(self._root, path[len(WORKSPACE_ALIAS) :].lstrip("/"))
        if os.path.isabs(path):
            return path
        return os.path.join(self._root, path)

    def _contains(self, real: str) -> bool:
        return os.path.commonpath([self._root, real]) == self._root
