"""Per-sandbox cgroups on cgroup v1 (these machines) and v2 (most distributions).

Each sandbox gets one group, ``sandgate/<id>``: memory (RAM + swap) limit,
pids limit, CPU quota, and a freezer for pause. The launcher writes its own pid
into every ``cgroup.procs`` before it execs bwrap, so every process of the
sandbox is accounted from the first instruction.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sandbox_svc.errors import BackendError, IsolationUnavailableError

__all__ = ["CgroupDriver", "CgroupLimits", "CgroupV1", "CgroupV2", "detect_cgroups"]

_CPU_PERIOD_US = 100_000


@dataclass(frozen=True)
class CgroupLimits:
    memory_bytes: int
    max_pids: int
    cpu_millis: int


class CgroupDriver(Protocol):
    """Creates, limits, freezes and kills one cgroup per sandbox."""

    version: int

    def create(self, name: str, limits: CgroupLimits) -> list[Path]:
        """Create the group; return the ``cgroup.procs`` files the launcher joins."""

    def oom_file(self, name: str) -> Path:
        """The file whose ``oom_kill N`` line counts OOM kills in the group."""

    def pids(self, name: str) -> list[int]: ...
    def freeze(self, name: str) -> None: ...
    def thaw(self, name: str) -> None: ...
    def kill_all(self, name: str) -> None:
        """SIGKILL every process in the group and wait until it is empty."""

    def remove(self, name: str) -> None: ...
    def names(self) -> set[str]:
        """Groups that exist under our parent (to find leftovers)."""

    def remove_parent(self) -> None:
        """Remove our parent group if no sandbox group is left in it."""


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        raise BackendError(f"cannot write {value!r} to {path}: {exc.strerror}") from exc


def _read_pids(path: Path) -> list[int]:
    try:
        return [int(line) for line in path.read_text().split()]
    except FileNotFoundError:
        return []
    except OSError as exc:
        if exc.errno == errno.ENODEV:  # the group is being removed: nothing is left in it
            return []
        raise


def _wait(predicate: object, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise BackendError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _rmdir(path: Path) -> None:
    def gone() -> bool:
        try:
            path.rmdir()
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True

    try:
        _wait(gone, f"cgroup {path} to be removable")
    except BackendError as exc:
        raise BackendError(f"{exc}; threads still in it: "
                           f"{_read_pids(path / 'tasks') or 'none listed'}") from None


class CgroupV1:
    """cgroup v1: one directory per controller (memory, pids, cpu, freezer)."""

    version = 1
    CONTROLLERS = ("memory", "pids", "cpu", "freezer")

    def __init__(self, root: Path = Path("/sys/fs/cgroup"), parent: str = "sandgate") -> None:
        self._root = root
        self._parent = parent

    def _dir(self, controller: str, name: str = "") -> Path:
        base = self._root / controller / self._parent
        return base / name if name else base

    def check(self) -> None:
        for controller in self.CONTROLLERS:
            if not (self._root / controller / "cgroup.procs").exists():
                raise IsolationUnavailableError(
                    f"cgroup v1 controller {controller!r} is not mounted at "
                    f"{self._root / controller}"
                )

    def create(self, name: str, limits: CgroupLimits) -> list[Path]:
        for controller in self.CONTROLLERS:
            self._dir(controller, name).mkdir(parents=True, exist_ok=True)
        mem = self._dir("memory", name)
        _write(mem / "memory.limit_in_bytes", str(limits.memory_bytes))
        if (mem / "memory.memsw.limit_in_bytes").exists():
            # Without a swap limit a memory bomb pages out instead of dying.
            _write(mem / "memory.memsw.limit_in_bytes", str(limits.memory_bytes))
        _write(self._dir("pids", name) / "pids.max", str(limits.max_pids))
        cpu = self._dir("cpu", name)
        _write(cpu / "cpu.cfs_period_us", str(_CPU_PERIOD_US))
        _write(cpu / "cpu.cfs_quota_us", str(limits.cpu_millis * _CPU_PERIOD_US // 1000))
        return [self._dir(c, name) / "cgroup.procs" for c in self.CONTROLLERS]

    def oom_file(self, name: str) -> Path:
        return self._dir("memory", name) / "memory.oom_control"

    def pids(self, name: str) -> list[int]:
        return _read_pids(self._dir("pids", name) / "cgroup.procs")

    def _state(self, name: str) -> str:
        try:
            return (self._dir("freezer", name) / "freezer.state").read_text().strip()
        except FileNotFoundError:
            return "THAWED"

    def freeze(self, name: str) -> None:
        _write(self._dir("freezer", name) / "freezer.state", "FROZEN")
        _wait(lambda: self._state(name) == "FROZEN", f"sandbox {name} to freeze")

    def thaw(self, name: str) -> None:
        _write(self._dir("freezer", name) / "freezer.state", "THAWED")
        _wait(lambda: self._state(name) == "THAWED", f"sandbox {name} to thaw")

    def kill_all(self, name: str) -> None:
        if not self._dir("freezer", name).exists():
            return
        # Freeze first so nothing forks between reading the list and killing it.
        self.freeze(name)
        for pid in self._members(name):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.thaw(name)
        _wait(lambda: not self._members(name), f"processes of sandbox {name} to exit")

    def _members(self, name: str) -> set[int]:
        # Every controller's list: the launcher joins them one at a time, so a
        # process caught half-way is in some of them only.
        return {pid for controller in self.CONTROLLERS
                for pid in _read_pids(self._dir(controller, name) / "cgroup.procs")}

    def remove(self, name: str) -> None:
        for controller in self.CONTROLLERS:
            path = self._dir(controller, name)
            if path.exists():
                _rmdir(path)

    def remove_parent(self) -> None:
        for controller in self.CONTROLLERS:
            try:
                self._dir(controller).rmdir()
            except OSError:
                pass

    def names(self) -> set[str]:
        found: set[str] = set()
        for controller in self.CONTROLLERS:
            base = self._dir(controller)
            if base.is_dir():
                found |= {p.name for p in base.iterdir() if p.is_dir()}
        return found


class CgroupV2:
    """cgroup v2: one unified directory with memory, pids and cpu controllers."""

    version = 2

    def __init__(self, root: Path = Path("/sys/fs/cgroup"), parent: str = "sandgate") -> None:
        self._root = root
        self._base = root / parent

    def check(self) -> None:
        available = set((self._root / "cgroup.controllers").read_text().split())
        missing = {"memory", "pids", "cpu"} - available
        if missing:
            raise IsolationUnavailableError(
                f"cgroup v2 at {self._root} lacks controllers {sorted(missing)}"
            )
        self._base.mkdir(exist_ok=True)
        # Children of our parent may only use controllers the parent delegates.
        _write(self._base / "cgroup.subtree_control", "+memory +pids +cpu")

    def create(self, name: str, limits: CgroupLimits) -> list[Path]:
        group = self._base / name
        group.mkdir(parents=True, exist_ok=True)
        _write(group / "memory.max", str(limits.memory_bytes))
        if (group / "memory.swap.max").exists():
            _write(group / "memory.swap.max", "0")
        _write(group / "pids.max", str(limits.max_pids))
        _write(group / "cpu.max", f"{limits.cpu_millis * _CPU_PERIOD_US // 1000} {_CPU_PERIOD_US}")
        return [group / "cgroup.procs"]

    def oom_file(self, name: str) -> Path:
        return self._base / name / "memory.events"

    def pids(self, name: str) -> list[int]:
        return _read_pids(self._base / name / "cgroup.procs")

    def _frozen(self, name: str) -> bool:
        events = (self._base / name / "cgroup.events").read_text()
        return "frozen 1" in events

    def freeze(self, name: str) -> None:
        _write(self._base / name / "cgroup.freeze", "1")
        _wait(lambda: self._frozen(name), f"sandbox {name} to freeze")

    def thaw(self, name: str) -> None:
        _write(self._base / name / "cgroup.freeze", "0")
        _wait(lambda: not self._frozen(name), f"sandbox {name} to thaw")

    def kill_all(self, name: str) -> None:
        group = self._base / name
        if not group.exists():
            return
        _write(group / "cgroup.kill", "1")
        _wait(lambda: not self.pids(name), f"processes of sandbox {name} to exit")

    def remove(self, name: str) -> None:
        group = self._base / name
        if group.exists():
            _rmdir(group)

    def remove_parent(self) -> None:
        try:
            self._base.rmdir()
        except OSError:
            pass

    def names(self) -> set[str]:
        if not self._base.is_dir():
            return set()
        return {p.name for p in self._base.iterdir() if p.is_dir()}


def detect_cgroups(root: Path = Path("/sys/fs/cgroup"),
                   parent: str = "sandgate") -> CgroupV1 | CgroupV2:
    """The driver for this host; refuses (IsolationUnavailableError) when neither works.

    ``parent`` is the group holding this service's sandboxes; each service
    (state directory) has its own, so one never reaps another's sandboxes.
    """
    if (root / "memory" / "cgroup.procs").exists():
        driver: CgroupV1 | CgroupV2 = CgroupV1(root, parent)
    elif (root / "cgroup.controllers").exists():
        driver = CgroupV2(root, parent)
    else:
        raise IsolationUnavailableError(
            f"no usable cgroup hierarchy under {root}: mount cgroup v1 controllers "
            "(memory, pids, cpu, freezer) or cgroup v2, and run sandbox_svc as root"
        )
    driver.check()
    return driver
