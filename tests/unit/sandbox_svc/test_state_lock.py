"""One instance per state dir: the lock refuses a second holder, never a dead one's heir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox_svc.errors import StateDirInUseError
from sandbox_svc.local.statelock import LOCK_FILE, StateLock, cgroup_parent, read_index


def test_a_second_acquire_refuses_naming_the_holders_pid_and_the_directory(
        tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = StateLock.acquire(state, index_dir=None)
    try:
        with pytest.raises(StateDirInUseError) as refused:
            StateLock.acquire(state, index_dir=None)
        assert refused.value.pid == os.getpid()
        assert str(refused.value) == (f"another Sandgate (pid {os.getpid()}) is using {state}; "
                                      "stop it or set SANDGATE_STATE_DIR")
        assert (state / LOCK_FILE).read_text() == f"{os.getpid()}\n"  # the refusal kept it
    finally:
        first.release()


def test_a_released_lock_can_be_taken_again(tmp_path: Path) -> None:
    first = StateLock.acquire(tmp_path, index_dir=None)
    first.release()
    first.release()  # idempotent
    assert not first.held
    second = StateLock.acquire(tmp_path, index_dir=None)
    assert second.held
    second.release()


def test_the_lock_of_a_killed_process_does_not_block_the_next_start(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from pathlib import Path\n"
         "from sandbox_svc.local.statelock import StateLock\n"
         f"StateLock.acquire(Path({str(tmp_path)!r}), index_dir=None)\n"
         "print('locked', flush=True)\n"
         "time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(StateDirInUseError) as refused:
            StateLock.acquire(tmp_path, index_dir=None)
        assert refused.value.pid == holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        assert holder.stdout is not None
        holder.stdout.close()
    lock = StateLock.acquire(tmp_path, index_dir=None)  # the stale file blocks nothing
    assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    lock.release()


def test_a_holder_registers_its_state_dir_under_its_cgroup_parent_until_released(
        tmp_path: Path) -> None:
    index = tmp_path / "index"
    state = tmp_path / "state"
    lock = StateLock.acquire(state, index_dir=index)
    (entry,) = read_index(index)
    assert (entry.parent, entry.state_dir, entry.pid) == (
        cgroup_parent(state), state.resolve(), os.getpid())
    lock.release()
    assert read_index(index) == []


def test_the_cgroup_parent_is_one_per_state_dir(tmp_path: Path) -> None:
    assert cgroup_parent(tmp_path / "a") == cgroup_parent(tmp_path / "b" / ".." / "a")
    assert cgroup_parent(tmp_path / "a") != cgroup_parent(tmp_path / "b")
    assert cgroup_parent(tmp_path / "a").startswith("sandgate-")
