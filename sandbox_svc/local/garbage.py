"""``sandgate gc``: find and remove what no running Sandgate owns.

A local instance leaves, when it is killed: processes and cgroups under its
cgroup parent (``sandgate-<hash of its state dir>``, in every controller),
mounts under its state dir, sandbox directories ``sb/<id>`` with their registry
rows, its index entry, and the state dir itself. A running service owns its
state dir while it holds the dir's lock (:mod:`sandbox_svc.local.statelock`).
The collector takes that lock itself before it looks inside, so it never races
a service starting on the same dir, and it skips every dir whose lock is held.

Instances are found from the index (``/run/sandgate/instances``), from every
``sandgate-*`` cgroup parent (its state dir read from the command line of a
process inside; unknown when none is left), and from the state dirs named by
the caller. A state dir is removed whole only when nothing but Sandgate's own
files is left in it; anything else there is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import re
import shutil
import signal
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sandbox_svc.errors import BackendError, SandboxError
from sandbox_svc.local.cgroups import CgroupV1, CgroupV2
from sandbox_svc.local.statelock import (
    DEFAULT_INDEX_DIR,
    LOCK_FILE,
    StateLock,
    cgroup_parent,
    holder_pid,
    read_index,
)

__all__ = ["GarbageCollector", "GcReport", "Leftover", "LiveInstance"]

logger = logging.getLogger(__name__)

_BOOKKEEPING = frozenset({"sb", "etc", "registry.db", "registry.db-wal", "registry.db-shm",
                          "registry.db-journal", "uids.lock", "zygote.log", LOCK_FILE})
"""What Sandgate itself keeps in a state dir; a dir holding only these may go."""
_KILL_WAIT_S = 10.0
_MNT_DETACH = 2


@dataclass(frozen=True)
class Leftover:
    """One thing no running service owns."""

    kind: str
    """``process``, ``mount``, ``cgroup``, ``sandbox``, ``registry row``, ``index entry``
    or ``state dir``."""
    target: str
    """The pid (with its command line) or the path."""
    owner: str
    """The state dir it belongs to, or its cgroup parent when that dir is unknown."""


@dataclass(frozen=True)
class LiveInstance:
    """A state dir whose lock a running service holds: never touched."""

    state_dir: Path
    pid: int | None


@dataclass
class GcReport:
    """What one collection found (``dry_run``) or removed, and what it left alone."""

    dry_run: bool
    leftovers: list[Leftover] = field(default_factory=list)
    failures: list[tuple[Leftover, str]] = field(default_factory=list)
    live: list[LiveInstance] = field(default_factory=list)
    kept_dirs: list[tuple[Path, list[str]]] = field(default_factory=list)
    """Unowned state dirs kept for the files in them that are not Sandgate's own."""


@dataclass
class _Instance:
    parent: str
    state_dir: Path | None
    index_entry: Path | None = None

    @property
    def name(self) -> str:
        return str(self.state_dir) if self.state_dir is not None else self.parent


class GarbageCollector:
    """Finds instances on this host and removes the leftovers of the unowned ones.

    Args:
        cgroup_root: where the cgroup hierarchies are mounted.
        index_dir: where running instances register (see statelock).
        proc_root: the proc file system (processes and this process's mounts).

    Raises:
        Nothing on construction; see :meth:`collect`.
    """

    def __init__(self, *, cgroup_root: Path = Path("/sys/fs/cgroup"),
                 index_dir: Path = DEFAULT_INDEX_DIR, proc_root: Path = Path("/proc")) -> None:
        self._root = cgroup_root
        self._index = index_dir
        self._proc = proc_root

    def collect(self, state_dirs: Sequence[Path] = (), *, scan_host: bool = True,
                dry_run: bool = False) -> GcReport:
        """Remove (or with ``dry_run`` only list) what no running service owns.

        Args:
            state_dirs: state dirs to look at (they may be gone already).
            scan_host: also every instance in the index and every ``sandgate-*``
                cgroup parent on this host; False looks at ``state_dirs`` only.
            dry_run: list, remove nothing.

        Raises:
            OSError: a state dir's lock file cannot be opened.
        """
        report = GcReport(dry_run)
        for instance in self._instances(state_dirs, scan_host):
            lock = None
            if instance.state_dir is not None and instance.state_dir.is_dir():
                lock = StateLock.try_acquire(instance.state_dir, index_dir=None)
                if lock is None:
                    report.live.append(LiveInstance(instance.state_dir,
                                                    holder_pid(instance.state_dir)))
                    continue
            try:
                self._sweep(instance, report)
            finally:
                if lock is not None:
                    lock.release()
        return report

    # ----- finding instances ---------------------------------------------------------

    def _instances(self, state_dirs: Sequence[Path], scan_host: bool) -> list[_Instance]:
        found: dict[str, _Instance] = {}
        for state_dir in state_dirs:
            parent = cgroup_parent(state_dir)
            entry = self._index / f"{parent}.json"
            found[parent] = _Instance(parent, state_dir.resolve(),
                                      entry if entry.exists() else None)
        if scan_host:
            for registered in read_index(self._index):
                instance = found.setdefault(registered.parent,
                                            _Instance(registered.parent, registered.state_dir))
                instance.index_entry = registered.path
            for parent in self._parent_dirs():
                if parent not in found:
                    found[parent] = _Instance(parent, self._state_dir_of(parent))
        return list(found.values())

    def _parent_dirs(self, only: str | None = None) -> dict[str, list[Path]]:
        """Every ``sandgate-*`` parent group (or ``only``): name -> its dir per hierarchy."""
        pattern = only or "sandgate-*"
        dirs: dict[str, list[Path]] = {}
        seen: set[Path] = set()
        for path in [*self._root.glob(pattern), *self._root.glob(f"*/{pattern}")]:
            with contextlib.suppress(OSError):
                real = path.resolve()
                if path.is_dir() and real not in seen:
                    seen.add(real)
                    dirs.setdefault(path.name, []).append(path)
        return dirs

    def _state_dir_of(self, parent: str) -> Path | None:
        """The state dir named by a sandbox process in the group (bwrap binds
        ``<state>/sb/<id>/workspace``), if one is left and it hashes to ``parent``."""
        for pid in self._group_pids(parent):
            for arg in self._cmdline(pid):
                path = Path(arg)
                if path.name == "workspace" and path.parent.parent.name == "sb":
                    state_dir = path.parents[2]
                    if cgroup_parent(state_dir) == parent:
                        return state_dir
        return None

    # ----- what an unowned instance left ----------------------------------------------

    def _sweep(self, instance: _Instance, report: GcReport) -> None:
        owner = instance.name
        state = instance.state_dir
        pids = sorted(self._group_pids(instance.parent) | self._pids_naming(state))
        found = [Leftover("process", f"{pid} ({self._describe(pid)})", owner) for pid in pids]
        found += [Leftover("mount", str(m), owner) for m in self._mounts_under(state)]
        found += [Leftover("cgroup", str(g), owner) for g in self._groups(instance.parent)]
        if state is not None:
            found += [Leftover("sandbox", str(s), owner) for s in _children(state / "sb")]
            found += [Leftover("registry row", row, owner)
                      for row in _registry_rows(state / "registry.db")]
        if instance.index_entry is not None:
            found.append(Leftover("index entry", str(instance.index_entry), owner))
        # A dir whose instance left something (it was killed, not stopped) goes too,
        # unless it holds files that are not Sandgate's own.
        if found and state is not None and state.is_dir():
            foreign = sorted({p.name for p in _children(state)} - _BOOKKEEPING)
            if not foreign:
                found.append(Leftover("state dir", str(state), owner))
            else:
                report.kept_dirs.append((state, foreign))
        report.leftovers += found
        if report.dry_run or not found:
            return
        if pids:
            try:
                self._kill_groups(instance.parent)
            except SandboxError as exc:
                logger.warning("cannot empty the cgroups of %s: %s", owner, exc)
        for leftover in found:
            try:
                self._remove(leftover, state)
            except (OSError, SandboxError, sqlite3.Error) as exc:
                report.failures.append((leftover, str(exc)))

    def _kill_groups(self, parent: str) -> None:
        """SIGKILL every process of the parent's sandbox groups (frozen first on v1, so
        nothing forks meanwhile) and wait until they are empty.

        Raises:
            BackendError: a group did not empty in time.
        """
        driver = (CgroupV1(self._root, parent)
                  if (self._root / "memory" / "cgroup.procs").exists()
                  else CgroupV2(self._root, parent))
        for name in driver.names():
            driver.kill_all(name)

    def _remove(self, leftover: Leftover, state: Path | None) -> None:
        target = leftover.target
        if leftover.kind == "process":
            self._kill(int(target.split(" ", 1)[0]))
        elif leftover.kind == "mount":
            _unmount(Path(target))
        elif leftover.kind == "cgroup":
            _remove_group(Path(target))
        elif leftover.kind == "sandbox":
            shutil.rmtree(target)
        elif leftover.kind == "registry row":
            assert state is not None
            _remove_row(state / "registry.db", target)
        elif leftover.kind == "index entry":
            Path(target).unlink(missing_ok=True)
        else:
            _remove_state_dir(Path(target))

    def _kill(self, pid: int) -> None:
        """SIGKILL ``pid`` (unless it is gone already) and wait, bounded, until it is."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + _KILL_WAIT_S
        while _alive(self._proc, pid):
            if time.monotonic() > deadline:
                raise BackendError(f"process {pid} did not exit within {_KILL_WAIT_S:.0f} s")
            time.sleep(0.02)

    # ----- reading the host ------------------------------------------------------------

    def _groups(self, parent: str) -> list[Path]:
        """Every group under ``parent`` in every hierarchy, deepest first, parents last."""
        groups: list[Path] = []
        for base in self._parent_dirs(parent).get(parent, []):
            for dirpath, _, _ in os.walk(base, topdown=False):
                groups.append(Path(dirpath))
        children = [g for g in groups if g.name != parent]
        return children + [g for g in groups if g.name == parent]

    def _group_pids(self, parent: str) -> set[int]:
        pids: set[int] = set()
        for group in self._groups(parent):
            with contextlib.suppress(OSError, ValueError):
                pids |= {int(p) for p in (group / "cgroup.procs").read_text().split()}
        return pids

    def _pids_naming(self, state_dir: Path | None) -> set[int]:
        """Processes whose command line names a sandbox of ``state_dir`` (bwrap's binds)."""
        if state_dir is None:
            return set()
        needles = {f"{state_dir}/sb/".encode(), f"{state_dir.resolve()}/sb/".encode()}
        mine = {os.getpid(), os.getppid()}
        found = set()
        for proc in _children(self._proc):
            if proc.name.isdigit() and int(proc.name) not in mine:
                with contextlib.suppress(OSError):
                    cmdline = (proc / "cmdline").read_bytes()
                    if any(n in cmdline for n in needles):
                        found.add(int(proc.name))
        return found

    def _cmdline(self, pid: int) -> list[str]:
        try:
            raw = (self._proc / str(pid) / "cmdline").read_bytes()
        except OSError:
            return []
        return [a.decode(errors="replace") for a in raw.split(b"\0") if a]

    def _describe(self, pid: int) -> str:
        args = self._cmdline(pid)
        text = " ".join(args) if args else "exited"
        return text if len(text) <= 120 else text[:117] + "..."

    def _mounts_under(self, state_dir: Path | None) -> list[Path]:
        """Mount points under ``state_dir`` in this mount namespace, deepest first."""
        if state_dir is None:
            return []
        try:
            lines = (self._proc / "self" / "mountinfo").read_text().splitlines()
        except OSError:
            return []
        roots = {str(state_dir), str(state_dir.resolve())}
        found = set()
        for line in lines:
            fields = line.split(" ")
            if len(fields) > 4:
                point = _unescape(fields[4])
                if any(point == r or point.startswith(r + "/") for r in roots):
                    found.add(Path(point))
        return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _children(path: Path) -> list[Path]:
    try:
        return sorted(path.iterdir())
    except OSError:
        return []


def _alive(proc: Path, pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (a zombie is dead for our purposes)."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def _unescape(field_text: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal ``\\NNN``."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field_text)


def _unmount(point: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(os.fsencode(point), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"cannot unmount {point}: {os.strerror(err)}")


def _remove_group(path: Path) -> None:
    deadline = time.monotonic() + _KILL_WAIT_S
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:  # EBUSY until the kernel has let go of the last process
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _registry_rows(db: Path) -> list[str]:
    """Sandbox ids in the registry file, read-only; none when there is no such file."""
    if not db.is_file():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return [str(row[0]) for row in conn.execute("SELECT sandbox_id FROM sandboxes")]
    except sqlite3.Error as exc:
        logger.warning("cannot read the registry %s: %s", db, exc)
        return []


def _remove_row(db: Path, sandbox_id: str) -> None:
    from sandbox_svc.registry_sqlite import SqliteRegistry

    async def remove() -> None:
        registry = SqliteRegistry(db)
        try:
            await registry.remove(sandbox_id)
        finally:
            await registry.close()

    asyncio.run(remove())


def _remove_state_dir(state_dir: Path) -> None:
    """Remove Sandgate's files, the lock file last (it is held meanwhile), then the dir.

    A file that appeared meanwhile keeps the dir (the last rmdir fails and says so).
    """
    entries: Iterable[Path] = _children(state_dir)
    for entry in sorted(entries, key=lambda p: p.name == LOCK_FILE):
        if entry.name not in _BOOKKEEPING:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)
    state_dir.rmdir()
