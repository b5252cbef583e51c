"""Seccomp profiles of local sandboxes, compiled to the BPF programs bwrap loads.

Every process in a sandbox runs under one profile, named by its template
(``seccomp: default``). ``default`` follows Docker's default profile for a
container without added capabilities: an allowlist, everything else denied
with EPERM (not killed, so programs can fall back); ``clone`` only without
namespace flags; ``clone3`` answers ENOSYS so glibc falls back to ``clone``;
``personality`` only with the usual personas; no AF_VSOCK sockets. Beyond
Docker's list it denies ``io_uring_*`` and ``name_to_handle_at``, and only the
native ABI passes: a syscall through a foreign ABI (on x86_64: the 32-bit
``int 0x80`` ABI and x32) kills the process (SIGSYS), where Docker filters
them with the same list. Syscalls newer than anything the profile names answer ENOSYS, so a
newer libc in a template's rootfs falls back instead of failing with EPERM.

Programs are compiled with libseccomp (through ``pyseccomp``) once, when the
backend starts; each launch only writes the cached bytes into a pipe.
"""

from __future__ import annotations

import errno
import struct
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field

from sandbox_svc.errors import IsolationUnavailableError

__all__ = [
    "DENIED_SYSCALLS",
    "PROFILES",
    "SeccompProfile",
    "SeccompPrograms",
    "compile_profile",
]

# Docker's default allowlist (moby profiles/seccomp/default.json, no capabilities
# added), minus io_uring_* and name_to_handle_at, plus three newer syscalls
# glibc uses (fchmodat2, map_shadow_stack) or may (cachestat). Names this
# architecture lacks (the 32-bit variants Docker lists) are simply absent.
_ALLOWED = frozenset("""
accept accept4 access adjtimex alarm arch_prctl bind brk cachestat capget capset chdir
chmod chown clock_adjtime clock_getres clock_gettime clock_nanosleep close close_range
connect copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl
epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve
execveat exit exit_group faccessat faccessat2 fadvise64 fallocate fanotify_mark fchdir
fchmod fchmodat fchmodat2 fchown fchownat fcntl fdatasync fgetxattr flistxattr flock fork
fremovexattr fsetxattr fstat fstatfs fsync ftruncate futex futex_waitv futimesat getcpu
getcwd getdents getdents64 getegid geteuid getgid getgroups getitimer getpeername getpgid
getpgrp getpid getppid getpriority getrandom getresgid getresuid getrlimit get_robust_list
getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid
getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl
io_destroy io_getevents io_pgetevents ioprio_get ioprio_set io_setup io_submit kill
landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lgetxattr link
linkat listen listxattr llistxattr lremovexattr lseek lsetxattr lstat madvise
map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat
mlock mlock2 mlockall mmap modify_ldt mprotect mq_getsetattr mq_notify mq_open
mq_timedreceive mq_timedsend mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock
munlockall munmap nanosleep newfstatat open openat openat2 pause pidfd_open
pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll prctl pread64
preadv preadv2 prlimit64 process_mrelease process_vm_readv process_vm_writev pselect6
ptrace pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recvfrom recvmmsg
recvmsg remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq
rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
rt_sigtimedwait rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam
sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp
select semctl semget semop semtimedop sendfile sendmmsg sendmsg sendto setfsgid setfsuid
setgid setgroups setitimer setpgid setpriority setregid setresgid setresuid setreuid
setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid
setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 socketpair
splice stat statfs statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill
time timer_create timer_delete timer_getoverrun timer_gettime timer_settime timerfd_create
timerfd_gettime timerfd_settime times tkill truncate umask uname unlink unlinkat utime
utimensat utimes vfork vmsplice wait4 waitid write writev
""".split())

DENIED_SYSCALLS: tuple[str, ...] = (
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr", "swapon", "swapoff", "reboot", "acct", "unshare",
    "setns", "io_uring_setup", "io_uring_enter", "io_uring_register", "lookup_dcookie",
    "open_by_handle_at", "name_to_handle_at", "chroot", "syslog", "sethostname",
    "setdomainname", "settimeofday", "clock_settime", "iopl", "ioperm", "quotactl",
    "fanotify_init", "kcmp", "pidfd_getfd", "process_madvise", "vhangup", "mbind",
    "set_mempolicy", "get_mempolicy", "set_mempolicy_home_node",
)
"""Syscalls every profile denies with EPERM (beyond ``clone3``: ENOSYS)."""

# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET: clone
# with any of them is denied, as in Docker. (CLONE_NEWTIME only works via
# unshare and clone3, both denied.)
CLONE_NAMESPACE_FLAGS = 0x7E020000
# PER_LINUX, PER_LINUX32, UNAME26, PER_LINUX32|UNAME26, and 0xffffffff (query).
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
_AF_VSOCK = 40

_SECCOMP_RET_ERRNO = 0x00050000
_X32_SYSCALL_BIT = 0x40000000
_BPF_MAXINSNS = 4096
_INSN = struct.Struct("=HBBI")  # struct sock_filter: code, jt, jf, k
_LD_W_ABS, _JEQ_K, _JGE_K, _JGT_K, _RET_K = 0x20, 0x15, 0x35, 0x25, 0x06


@dataclass(frozen=True)
class SeccompProfile:
    """What one profile allows beyond nothing: syscall names, all else EPERM."""

    name: str
    description: str
    extra_allowed: frozenset[str] = field(default_factory=frozenset)
    """Allowed in addition to the default allowlist."""

    def allowed(self) -> frozenset[str]:
        return _ALLOWED | self.extra_allowed


PROFILES: dict[str, SeccompProfile] = {
    "default": SeccompProfile(
        "default", "Docker's default allowlist, stricter: native ABI only, no io_uring, "
                   "no namespaces, no keyrings, no mounts, no BPF"),
    # Chromium runs with --no-sandbox inside (the sandbox is ours), so it needs no
    # namespaces or seccomp of its own: the default allowlist suffices.
    "browser": SeccompProfile(
        "browser", "the default profile; Chromium runs inside with --no-sandbox"),
}
"""Profiles by the name a template gives (``seccomp: default``)."""


def _enosys_prefix(arch: int, highest: int) -> bytes:
    """BPF that answers ENOSYS for native syscalls numbered above ``highest``.

    It jumps to the instruction after itself (libseccomp's program) for
    everything else; x32 numbers (bit 30 set) go on to be killed there.
    """
    insns = (
        (_LD_W_ABS, 0, 0, 4),                      # A = seccomp_data.arch
        (_JEQ_K, 0, 4, arch),                      # foreign arch: to libseccomp's checks
        (_LD_W_ABS, 0, 0, 0),                      # A = seccomp_data.nr
        (_JGE_K, 2, 0, _X32_SYSCALL_BIT),          # x32 or -1: to libseccomp's checks
        (_JGT_K, 0, 1, highest),
        (_RET_K, 0, 0, _SECCOMP_RET_ERRNO | errno.ENOSYS),
    )
    return b"".join(_INSN.pack(*insn) for insn in insns)


def compile_profile(profile: SeccompProfile) -> bytes:
    """The profile as a BPF program (``struct sock_filter[]``) for ``bwrap --seccomp``.

    Raises:
        IsolationUnavailableError: libseccomp or pyseccomp is missing, or the
            profile allows a denied syscall.
    """
    try:
        import pyseccomp
    except (RuntimeError, OSError) as exc:  # pyseccomp's import finds no libseccomp.so.2
        raise IsolationUnavailableError(
            f"the sandboxes' syscall filters need libseccomp ({exc}); install it with: "
            "apt-get install -y libseccomp2") from None
    except ImportError:
        raise IsolationUnavailableError(
            "the sandboxes' syscall filters need the Python package pyseccomp; install "
            "the project's dependencies with: scripts/bootstrap.sh") from None
    allowed = profile.allowed()
    overlap = allowed & set(DENIED_SYSCALLS)
    if overlap:
        raise IsolationUnavailableError(
            f"seccomp profile {profile.name!r} allows denied syscalls {sorted(overlap)}")
    arch = pyseccomp.system_arch()
    numbers = {name: pyseccomp.resolve_syscall(arch, name)
               for name in (*allowed, *DENIED_SYSCALLS, "clone", "clone3", "personality",
                            "socket")}
    highest = max(numbers.values())
    flt = pyseccomp.SyscallFilter(pyseccomp.ERRNO(errno.EPERM))
    flt.set_attr(pyseccomp.Attr.ACT_BADARCH, pyseccomp.KILL_PROCESS)
    for name in sorted(allowed):
        if numbers[name] >= 0:  # negative: not a syscall of this architecture
            flt.add_rule(pyseccomp.ALLOW, name)
    flt.add_rule(pyseccomp.ALLOW, "clone",
                 pyseccomp.Arg(0, pyseccomp.MASKED_EQ, CLONE_NAMESPACE_FLAGS, 0))
    flt.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")
    for persona in PERSONALITIES:
        flt.add_rule(pyseccomp.ALLOW, "personality", pyseccomp.Arg(0, pyseccomp.EQ, persona))
    flt.add_rule(pyseccomp.ALLOW, "socket", pyseccomp.Arg(0, pyseccomp.NE, _AF_VSOCK))
    with tempfile.TemporaryFile() as out:
        flt.export_bpf(out)
        out.seek(0)
        program = _enosys_prefix(arch, highest) + out.read()
    if len(program) // _INSN.size > _BPF_MAXINSNS:
        raise IsolationUnavailableError(
            f"seccomp profile {profile.name!r} compiles to more than {_BPF_MAXINSNS} "
            "instructions")
    return program


class SeccompPrograms:
    """Every profile compiled once; ``program(name)`` hands out the cached bytes."""

    def __init__(self, programs: dict[str, bytes]) -> None:
        self._programs = programs

    @classmethod
    def compile(cls, names: Iterable[str] = tuple(PROFILES)) -> SeccompPrograms:
        """Compile the named profiles.

        Raises:
            IsolationUnavailableError: libseccomp is missing or a name is unknown.
        """
        programs: dict[str, bytes] = {}
        by_rules: dict[frozenset[str], bytes] = {}  # profiles with the same rules compile once
        for name in names:
            if name not in PROFILES:
                raise IsolationUnavailableError(
                    f"unknown seccomp profile {name!r}; profiles: {', '.join(PROFILES)}")
            rules = PROFILES[name].allowed()
            if rules not in by_rules:
                by_rules[rules] = compile_profile(PROFILES[name])
            programs[name] = by_rules[rules]
        return cls(programs)

    def names(self) -> list[str]:
        return list(self._programs)

    def has(self, name: str) -> bool:
        return name in self._programs

    def program(self, name: str) -> bytes:
        """The compiled program of profile ``name``.

        Raises:
            KeyError: the profile was not compiled.
        """
        return self._programs[name]
