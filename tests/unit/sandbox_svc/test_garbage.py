"""How gc finds instances and what it counts as theirs (dry runs on a fake host).

The host here is a fake: a directory tree standing for /sys/fs/cgroup (v1
controllers), /proc and /run/sandgate/instances. Removal needs the real
kernel and is tested in tests/integration/sandbox_svc/test_gc.py.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox_svc.local.garbage import GarbageCollector, GcReport, LiveInstance
from sandbox_svc.local.statelock import StateLock, cgroup_parent


@dataclass
class FakeHost:
    root: Path
    cgroups: Path
    proc: Path
    index: Path

    def collector(self) -> GarbageCollector:
        return GarbageCollector(cgroup_root=self.cgroups, index_dir=self.index,
                                proc_root=self.proc)

    def sandbox_group(self, state_dir: Path, sandbox_id: str, pids: list[int]) -> None:
        for controller in ("memory", "pids", "cpu", "freezer"):
            group = self.cgroups / controller / cgroup_parent(state_dir) / sandbox_id
            group.mkdir(parents=True)
            (group / "cgroup.procs").write_text("".join(f"{p}\n" for p in pids))

    def process(self, pid: int, *argv: str) -> None:
        (self.proc / str(pid)).mkdir(parents=True)
        (self.proc / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv))

    def register(self, state_dir: Path, pid: int) -> Path:
        self.index.mkdir(parents=True, exist_ok=True)
        entry = self.index / f"{cgroup_parent(state_dir)}.json"
        entry.write_text(json.dumps({"state_dir": str(state_dir), "pid": pid}))
        return entry


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    fake = FakeHost(tmp_path, tmp_path / "cgroup", tmp_path / "proc", tmp_path / "index")
    for controller in ("memory", "pids", "cpu", "freezer"):
        (fake.cgroups / controller).mkdir(parents=True)
        (fake.cgroups / controller / "cgroup.procs").write_text("")
    (fake.proc / "self").mkdir(parents=True)
    (fake.proc / "self" / "mountinfo").write_text("")
    return fake


def _state_dir(tmp_path: Path, name: str, *sandboxes: str) -> Path:
    state = tmp_path / name
    for sandbox_id in sandboxes:
        (state / "sb" / sandbox_id / "workspace").mkdir(parents=True)
    (state / "etc").mkdir(parents=True, exist_ok=True)
    return state


def _kinds(report: GcReport) -> dict[str, list[str]]:
    kinds: dict[str, list[str]] = {}
    for leftover in report.leftovers:
        kinds.setdefault(leftover.kind, []).append(leftover.target)
    return kinds


def test_a_killed_instance_in_the_index_is_listed_whole(host: FakeHost, tmp_path: Path) -> None:
    state = _state_dir(tmp_path, "killed", "sbx-1")
    entry = host.register(state, pid=999_999)
    host.sandbox_group(state, "sbx-1", [4242])
    host.process(4242, "bwrap", "--bind", f"{state}/sb/sbx-1/workspace", "/workspace")
    report = host.collector().collect(scan_host=True, dry_run=True)
    kinds = _kinds(report)
    assert kinds["process"] == ["4242 (bwrap --bind " f"{state}/sb/sbx-1/workspace /workspace)"]
    assert len(kinds["cgroup"]) == 8  # a sandbox group and the parent, in 4 controllers
    assert kinds["sandbox"] == [str(state / "sb" / "sbx-1")]
    assert kinds["index entry"] == [str(entry)]
    assert kinds["state dir"] == [str(state)]
    assert report.dry_run and report.failures == [] and report.live == []
    assert (state / "sb" / "sbx-1").is_dir() and entry.exists()  # a dry run removes nothing


def test_a_cgroup_parent_without_an_index_entry_finds_its_state_dir_from_a_process(
        host: FakeHost, tmp_path: Path) -> None:
    state = _state_dir(tmp_path, "unregistered", "sbx-2")
    host.sandbox_group(state, "sbx-2", [5151])
    host.process(5151, "bwrap", "--bind", f"{state}/sb/sbx-2/workspace", "/workspace")
    (report_owner,) = {leftover.owner for leftover in
                       host.collector().collect(scan_host=True, dry_run=True).leftovers}
    assert report_owner == str(state)


def test_a_cgroup_parent_whose_state_dir_is_gone_is_listed_under_its_own_name(
        host: FakeHost, tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    host.sandbox_group(gone, "sbx-3", [])
    report = host.collector().collect(scan_host=True, dry_run=True)
    assert {leftover.owner for leftover in report.leftovers} == {cgroup_parent(gone)}
    assert set(_kinds(report)) == {"cgroup"}


def test_a_locked_state_dir_is_live_and_nothing_of_it_is_listed(
        host: FakeHost, tmp_path: Path) -> None:
    state = _state_dir(tmp_path, "live", "sbx-4")
    host.sandbox_group(state, "sbx-4", [6161])
    lock = StateLock.acquire(state, index_dir=host.index)
    try:
        report = host.collector().collect([state], scan_host=False, dry_run=False)
    finally:
        lock.release()
    assert report.live == [LiveInstance(state.resolve(), os.getpid())]
    assert report.leftovers == []
    assert (state / "sb" / "sbx-4").is_dir()


def test_a_scoped_collection_looks_only_at_the_given_state_dir(
        host: FakeHost, tmp_path: Path) -> None:
    mine = _state_dir(tmp_path, "mine", "sbx-5")
    other = _state_dir(tmp_path, "other", "sbx-6")
    host.register(other, pid=999_999)
    host.sandbox_group(other, "sbx-6", [])
    report = host.collector().collect([mine], scan_host=False, dry_run=True)
    assert {leftover.owner for leftover in report.leftovers} == {str(mine.resolve())}


def test_a_state_dir_holding_other_files_keeps_them_and_says_so(
        host: FakeHost, tmp_path: Path) -> None:
    state = _state_dir(tmp_path, "shared", "sbx-7")
    (state / "notes.txt").write_text("not Sandgate's")
    report = host.collector().collect([state], scan_host=False, dry_run=True)
    assert "state dir" not in _kinds(report)
    assert report.kept_dirs == [(state.resolve(), ["notes.txt"])]


def test_a_cleanly_stopped_instance_leaves_nothing_to_collect(
        host: FakeHost, tmp_path: Path) -> None:
    state = _state_dir(tmp_path, "stopped")
    (state / "registry.db").write_bytes(b"")
    report = host.collector().collect([state], scan_host=True, dry_run=False)
    assert report.leftovers == [] and state.is_dir()
