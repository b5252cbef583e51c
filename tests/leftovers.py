"""What sandboxes of one state dir left on this host, seen from outside our code.

One place for every suite that checks for leaks (the soak, the fault suite): it
reads /proc, the cgroup hierarchy, the state dir and the registry file directly,
so it counts what a killed service left as well as what a live one forgot.
Other services on this host (other state dirs, other test runs) come and go
meanwhile: only what belongs to this state dir counts.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, fields
from pathlib import Path

from sandbox_svc.local.statelock import cgroup_parent

__all__ = ["Leftovers", "find_leftovers", "sandbox_pids"]

_CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Leftovers:
    """Traces of sandboxes, one tuple of descriptions per kind."""

    processes: tuple[str, ...]
    """``pid command`` of processes in the state dir's cgroups or naming it."""
    cgroups: tuple[str, ...]
    """Sandbox cgroups under the state dir's parent group (any controller)."""
    mounts: tuple[str, ...]
    """Mount points under the state dir in this mount namespace."""
    dirs: tuple[str, ...]
    """Sandbox directories (``sb/<id>``)."""
    uids: tuple[str, ...]
    """Host uids still reserved: the owners of remaining workspaces."""
    registry_rows: tuple[str, ...]
    """Sandbox ids still in the registry file."""

    def counts(self) -> dict[str, int]:
        """Kind -> how many of it are left."""
        return {f.name: len(getattr(self, f.name)) for f in fields(self)}

    @property
    def total(self) -> int:
        return sum(self.counts().values())

    def summary(self) -> str:
        """``processes 0, cgroups 0, ...`` for a report line."""
        return ", ".join(f"{name} {count}" for name, count in self.counts().items())


def _group_dirs(parent: str) -> list[Path]:
    """Our parent group in every hierarchy (one per v1 controller, or the v2 one)."""
    candidates = [_CGROUP_ROOT / parent, *_CGROUP_ROOT.glob(f"*/{parent}")]
    return [p for p in candidates if p.is_dir()]


def sandbox_pids(state_dir: Path, sandbox_id: str) -> list[int]:
    """Host pids of every process in one sandbox of ``state_dir`` (any hierarchy)."""
    pids: set[int] = set()
    for group in _group_dirs(cgroup_parent(state_dir)):
        try:
            pids |= {int(p) for p in (group / sandbox_id / "cgroup.procs").read_text().split()}
        except FileNotFoundError:
            continue
    return sorted(pids)


def _processes(state_dir: Path, parent: str) -> list[str]:
    needle = str(state_dir).encode()
    marker = f"/{parent}/"
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            groups = (proc / "cgroup").read_text()
        except OSError:
            continue  # exited meanwhile
        if marker in groups or needle in cmdline:
            shown = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
            found.append(f"{proc.name} {shown[:120] or '(no command line)'}")
    return sorted(found)


def _registry_rows(state_dir: Path) -> list[str]:
    database = state_dir / "registry.db"
    if not database.exists():
        return []
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as conn:
        return sorted(row[0] for row in conn.execute("SELECT sandbox_id FROM sandboxes"))


def find_leftovers(state_dir: Path) -> Leftovers:
    """Everything sandboxes of ``state_dir`` left: processes, cgroups, mounts,
    directories, uid reservations and registry rows.

    Call it after the service stopped (or, with the service running, when it
    should have no sandbox): a pooled sandbox counts like any other.
    """
    parent = cgroup_parent(state_dir)
    cgroups = sorted(str(child) for group in _group_dirs(parent)
                     for child in group.iterdir() if child.is_dir())
    mounts = sorted(line.split()[4] for line in
                    Path("/proc/self/mountinfo").read_text().splitlines()
                    if line.split()[4].startswith(str(state_dir)))
    sb = state_dir / "sb"
    dirs = sorted(p.name for p in sb.iterdir()) if sb.is_dir() else []
    uids = set()
    for workspace in sb.glob("*/workspace"):
        try:
            uids.add(workspace.stat().st_uid)
        except FileNotFoundError:
            continue
    return Leftovers(
        processes=tuple(_processes(state_dir, parent)), cgroups=tuple(cgroups),
        mounts=tuple(mounts), dirs=tuple(dirs), uids=tuple(str(u) for u in sorted(uids)),
        registry_rows=tuple(_registry_rows(state_dir)))
