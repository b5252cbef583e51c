"""Move a forked, pre-imported sandboxd into a sandbox that bwrap has just built.

bwrap builds every sandbox as before (namespaces, root, binds, seccomp) but
runs a tiny holder instead of sandboxd; the zygote (``zygote_main``) forks,
and the fork enters the holder's sandbox here, the way ``nsenter`` would, and
then runs sandboxd with its imports already done. What bwrap gives its command,
this gives the fork, and :func:`check_confined` verifies it before sandboxd's
first line runs; any step that fails ends the fork (exit 126), never runs it
with less isolation.

Order matters and follows the kernel's rules:

1. As root of the host (the zygote's uid), open the holder's ``/proc/<pid>``
   and check it is in this sandbox's cgroup (a reused pid would not be).
2. Join the sandbox's cgroups, drop supplementary groups, then join its ipc,
   uts, net, cgroup, pid and mount namespaces (root of the host may join any)
   and chroot to the holder's root, then ``/workspace``.
3. Join its user namespace last: from then on every capability the fork has
   is inside the sandbox only. Become uid/gid 65534 there (the sandbox's host
   uid outside), clear every capability set (bounding and ambient too: the
   uid change alone does not, as the sandbox maps no root), set no_new_privs.
4. Fork once more so the process is inside the pid namespace, start a new
   session, close every inherited descriptor, load the seccomp program.
"""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "CLONE_FLAGS",
    "Confinement",
    "HandoverError",
    "check_confined",
    "enter_sandbox",
    "finish_entering",
    "prctl",
]

CLONE_FLAGS = {
    "ipc": 0x08000000, "uts": 0x04000000, "net": 0x40000000, "cgroup": 0x02000000,
    "pid": 0x20000000, "mnt": 0x00020000, "user": 0x10000000,
}
"""/proc/<pid>/ns names and their CLONE_NEW* flags, in the order they are joined."""

_PR_SET_NO_NEW_PRIVS = 38
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_CAPABILITY_VERSION_3 = 0x20080522
_CAP_FIELDS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")

_libc = ctypes.CDLL(None, use_errno=True)


def prctl(option: int, arg2: object = 0, arg3: object = 0) -> int:
    """prctl(2); 0 (or the option's value) or -1, then ``ctypes.get_errno()`` says why."""
    result: int = _libc.prctl(option, arg2, arg3, 0, 0)
    return result


class HandoverError(Exception):
    """A step of entering the sandbox failed; the fork must not go on."""


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise HandoverError(f"{what}: {os.strerror(errno)} (errno {errno})")


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


@dataclass(frozen=True)
class Confinement:
    """What the fork must be inside once it has entered (checked, not assumed)."""

    uid: int
    namespaces: dict[str, int]
    """ns name -> inode of the holder's namespace."""
    seccomp: bool


def _drop_capabilities() -> None:
    _check(prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL),
           "clearing ambient capabilities")
    cap = 0
    while prctl(_PR_CAPBSET_DROP, cap) == 0:
        cap += 1  # EINVAL past the kernel's last capability ends the loop
    if cap < 38:  # CAP_CHECKPOINT_RESTORE, the last of Linux 5.9; older kernels stop earlier
        raise HandoverError(f"dropping the bounding set stopped at capability {cap}")
    header = struct.pack("Ii", _CAPABILITY_VERSION_3, 0)
    data = bytes(24)  # two {effective, permitted, inheritable} u32 triples, all zero
    _check(_libc.capset(header, data), "clearing capabilities")


def _load_seccomp(program: bytes) -> None:
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.addressof(buffer))
    _check(prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog)),
           "loading the seccomp program")


def enter_sandbox(holder_pid: int, cgroup: str, cgroup_procs: Sequence[str], *,
                  inner_uid: int, workspace: str, seccomp: bytes | None,
                  keep_fds: Sequence[int]) -> Confinement:
    """Steps 1 to 3 in the calling (forked, single-threaded, root) process.

    Returns what :func:`check_confined` must find once the caller forked again.

    Raises:
        HandoverError: a step failed; the caller must exit.
    """
    try:
        proc = os.open(f"/proc/{holder_pid}", os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise HandoverError(f"the holder (pid {holder_pid}) is gone: {exc.strerror}") from None
    try:
        with open(os.open("cgroup", os.O_RDONLY, dir_fd=proc)) as handle:
            if not any(line.endswith(f"/{cgroup}") for line in handle.read().splitlines()):
                raise HandoverError(f"pid {holder_pid} is not in the sandbox's cgroup {cgroup}")
        ns_fds = {name: os.open(f"ns/{name}", os.O_RDONLY, dir_fd=proc) for name in CLONE_FLAGS}
        root = os.open("root", os.O_RDONLY | os.O_DIRECTORY, dir_fd=proc)
    except OSError as exc:
        raise HandoverError(f"reading the holder's /proc entries: {exc.strerror}") from None
    finally:
        os.close(proc)
    inodes = {name: os.fstat(fd).st_ino for name, fd in ns_fds.items()}
    for path in cgroup_procs:
        with open(path, "w") as handle:
            handle.write(str(os.getpid()))
    os.setgroups([])
    for name, flag in CLONE_FLAGS.items():
        _check(_libc.setns(ns_fds[name], flag), f"joining the {name} namespace")
        os.close(ns_fds[name])
        if name == "mnt":  # the holder's root, before the user namespace takes our rights
            os.fchdir(root)
            os.chroot(".")
            os.chdir(workspace)
    os.close(root)
    os.setresgid(inner_uid, inner_uid, inner_uid)
    os.setresuid(inner_uid, inner_uid, inner_uid)
    _drop_capabilities()
    _check(prctl(_PR_SET_NO_NEW_PRIVS, 1), "setting no_new_privs")
    _close_all_but(keep_fds)
    return Confinement(uid=inner_uid, namespaces=inodes, seccomp=seccomp is not None)


def _close_all_but(keep: Sequence[int]) -> None:
    lowest = 0
    for fd in sorted(set(keep)):
        os.closerange(lowest, fd)
        lowest = fd + 1
    os.closerange(lowest, 1 << 20)


def finish_entering(seccomp: bytes | None) -> None:
    """Step 4 after the second fork: a new session, then the seccomp program last
    (it may forbid what the steps before it use)."""
    os.setsid()
    if seccomp is not None:
        _load_seccomp(seccomp)


def check_confined(expected: Confinement) -> None:
    """Fail unless this process is as confined as bwrap would have made it.

    Raises:
        HandoverError: a namespace, an id, a capability set, no_new_privs or
            seccomp is not what the sandbox requires.
    """
    for name, inode in expected.namespaces.items():
        if os.stat(f"/proc/self/ns/{name}").st_ino != inode:
            raise HandoverError(f"not inside the sandbox's {name} namespace")
    fields = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    wanted_ids = [str(expected.uid)] * 4
    if fields.get("Uid") != wanted_ids or fields.get("Gid") != wanted_ids:
        raise HandoverError(f"uid/gid are {fields.get('Uid')}/{fields.get('Gid')}, "
                            f"not {expected.uid}")
    if fields.get("Groups") not in ([], None):
        raise HandoverError(f"supplementary groups left: {fields['Groups']}")
    for key in _CAP_FIELDS:
        if int(fields[key][0], 16) != 0:
            raise HandoverError(f"{key} is {fields[key][0]}, not empty")
    if fields.get("NoNewPrivs") != ["1"]:
        raise HandoverError("no_new_privs is not set")
    if expected.seccomp and fields.get("Seccomp") != ["2"]:
        raise HandoverError("the seccomp program is not loaded")
