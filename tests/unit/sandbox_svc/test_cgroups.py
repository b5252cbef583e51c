"""cgroup drivers against a directory that mimics the kernel's files.

The real hierarchy is exercised by tests/integration (v1 on these machines);
here the v2 writes, which this host cannot mount, are checked file by file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox_svc.errors import IsolationUnavailableError
from sandbox_svc.local.cgroups import CgroupLimits, CgroupV2, detect_cgroups


def _fake_v2(root: Path) -> None:
    root.mkdir(exist_ok=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / "cgroup.procs").write_text("")


def test_v2_limits_are_written_as_the_kernel_expects(tmp_path: Path) -> None:
    _fake_v2(tmp_path)
    driver = detect_cgroups(tmp_path)
    assert isinstance(driver, CgroupV2)
    assert (tmp_path / "sandgate" / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    (tmp_path / "sandgate" / "sb1").mkdir()
    (tmp_path / "sandgate" / "sb1" / "memory.swap.max").write_text("max")
    procs = driver.create("sb1", CgroupLimits(memory_bytes=64 << 20, max_pids=32,
                                              cpu_millis=500))
    group = tmp_path / "sandgate" / "sb1"
    assert procs == [group / "cgroup.procs"]
    assert (group / "memory.max").read_text() == str(64 << 20)
    assert (group / "memory.swap.max").read_text() == "0"
    assert (group / "pids.max").read_text() == "32"
    assert (group / "cpu.max").read_text() == "50000 100000"
    assert driver.oom_file("sb1") == group / "memory.events"
    assert driver.names() == {"sb1"}


def test_v2_without_needed_controllers_refuses(tmp_path: Path) -> None:
    tmp_path.joinpath("cgroup.controllers").write_text("cpuset io\n")
    with pytest.raises(IsolationUnavailableError, match="lacks controllers"):
        detect_cgroups(tmp_path)


def test_no_cgroup_hierarchy_refuses_and_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(IsolationUnavailableError, match="mount cgroup"):
        detect_cgroups(tmp_path)
