"""One Sandgate per state directory: a lock file, and an index of the running ones.

    lock = StateLock.acquire(state_dir)   # StateDirInUseError while another holds it
    ...                                   # open the registry, recover, serve
    lock.release()                        # on stop

The lock is ``flock`` on ``<state_dir>/sandgate.lock``, taken before anything
else in the directory is looked at. The kernel drops it when its holder exits,
however it exits, so a SIGKILLed instance never blocks the next start; the pid
written into the file only names the holder in the refusal message. The file
is never deleted while in use (a process that opened the old inode could
otherwise lock it beside a new one).

A holder also writes an index entry, ``/run/sandgate/instances/<parent>.json``,
naming its state dir. The local backend names its cgroup parent after a hash of
the state dir (:func:`cgroup_parent`), which cannot be reversed; the index lets
``sandgate gc`` go from a cgroup parent back to the state dir whose lock says
whether a running service owns it. ``/run`` is a tmpfs, emptied at boot like
the cgroups themselves.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from sandbox_svc.errors import StateDirInUseError

__all__ = [
    "DEFAULT_INDEX_DIR",
    "LOCK_FILE",
    "IndexEntry",
    "StateLock",
    "cgroup_parent",
    "holder_pid",
    "read_index",
]

logger = logging.getLogger(__name__)

LOCK_FILE = "sandgate.lock"
"""The lock's file name inside the state dir."""
DEFAULT_INDEX_DIR = Path("/run/sandgate/instances")
"""Where running instances register their state dir (see the module docstring)."""


def cgroup_parent(state_dir: Path) -> str:
    """The cgroup parent group of the local backend for ``state_dir``: one per state dir,
    so services never see each other's sandbox groups."""
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:8]
    return f"sandgate-{digest}"


@dataclass(frozen=True)
class IndexEntry:
    """One instance's registration: its cgroup parent, state dir and pid."""

    parent: str
    state_dir: Path
    pid: int
    path: Path
    """The entry's own file."""


class StateLock:
    """The held lock of one state dir; :meth:`release` it when the service stops.

    Raises:
        Nothing on construction; use :meth:`acquire` or :meth:`try_acquire`.
    """

    def __init__(self, state_dir: Path, fd: int, index_entry: Path | None) -> None:
        self.state_dir = state_dir
        self._fd = fd
        self._index_entry = index_entry

    @classmethod
    def acquire(cls, state_dir: Path, *,
                index_dir: Path | None = DEFAULT_INDEX_DIR) -> StateLock:
        """Lock ``state_dir`` (created if missing) for this process, or refuse at once.

        Args:
            state_dir: the directory to own.
            index_dir: where to register the instance for ``sandgate gc``; None skips it.

        Raises:
            StateDirInUseError: another process holds the lock; nothing was touched.
            OSError: the directory or its lock file cannot be created.
        """
        lock = cls.try_acquire(state_dir, index_dir=index_dir)
        if lock is None:
            raise StateDirInUseError(str(state_dir), holder_pid(state_dir))
        return lock

    @classmethod
    def try_acquire(cls, state_dir: Path, *,
                    index_dir: Path | None = DEFAULT_INDEX_DIR) -> StateLock | None:
        """Like :meth:`acquire`, but None when another process holds the lock.

        Raises:
            OSError: the directory or its lock file cannot be created.
        """
        state_dir.mkdir(parents=True, exist_ok=True)
        # No O_TRUNC: the holder's pid must survive a refused opener.
        fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        entry = _register(index_dir, state_dir) if index_dir is not None else None
        return cls(state_dir, fd, entry)

    @property
    def held(self) -> bool:
        """Whether :meth:`release` has not run yet."""
        return self._fd >= 0

    def release(self) -> None:
        """Forget the index entry, clear the pid and unlock; idempotent. Raises: nothing."""
        if self._fd < 0:
            return
        if self._index_entry is not None:
            with contextlib.suppress(FileNotFoundError):
                self._index_entry.unlink()
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing the last descriptor drops the flock
        self._fd = -1


def holder_pid(state_dir: Path) -> int | None:
    """The pid written by the lock's holder, if the file names one. Raises: nothing."""
    try:
        text = (state_dir / LOCK_FILE).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _register(index_dir: Path, state_dir: Path) -> Path | None:
    """Write this instance's index entry; a failure only costs ``sandgate gc`` a hint."""
    parent = cgroup_parent(state_dir)
    entry = index_dir / f"{parent}.json"
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        fresh = entry.with_suffix(f".{os.getpid()}.tmp")
        fresh.write_text(json.dumps({"state_dir": str(state_dir.resolve()),
                                     "pid": os.getpid()}))
        fresh.replace(entry)
    except OSError as exc:
        logger.warning("cannot register this instance in %s (%s); `sandgate gc` will find "
                       "its leftovers only with --state-dir %s", index_dir, exc, state_dir)
        return None
    return entry


def read_index(index_dir: Path = DEFAULT_INDEX_DIR) -> list[IndexEntry]:
    """Every instance registered in ``index_dir``, live or not. Raises: nothing."""
    entries = []
    try:
        files = sorted(index_dir.glob("sandgate-*.json"))
    except OSError:
        return []
    for path in files:
        try:
            data = json.loads(path.read_text())
            entries.append(IndexEntry(path.stem, Path(str(data["state_dir"])),
                                      int(data["pid"]), path))
        except (OSError, ValueError, KeyError, TypeError):
            logger.warning("ignoring unreadable instance entry %s", path)
    return entries
