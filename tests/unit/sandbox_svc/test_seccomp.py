"""The compiled seccomp programs, run through a classic-BPF interpreter.

Syscall numbers are x86_64's; the kernel runs these same bytes for every
syscall of a sandbox (tests/integration/test_sandbox_seccomp.py checks that).
"""

from __future__ import annotations

import ctypes.util
import platform
import struct
import sys

import pytest

from sandbox_svc.errors import IsolationUnavailableError
from sandbox_svc.local.seccomp import (
    DENIED_SYSCALLS,
    PROFILES,
    SeccompProfile,
    SeccompPrograms,
    compile_profile,
)
from sandbox_svc.templates import SECCOMP_PROFILES

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64",
                                reason="syscall numbers below are x86_64's")

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
ALLOW = 0x7FFF0000
KILL_PROCESS = 0x80000000
EPERM = 0x00050000 | 1
ENOSYS = 0x00050000 | 38
NR = {"read": 0, "write": 1, "mmap": 9, "socket": 41, "clone": 56, "execve": 59,
      "personality": 135, "futex": 202, "openat": 257, "clone3": 435, "getpid": 39,
      "x32_getpid": 0x40000000 | 39}
CLONE_THREAD_FLAGS = 0x003D0F00  # what glibc's pthread_create passes
CLONE_NEW = {"NEWNS": 0x20000, "NEWCGROUP": 0x2000000, "NEWUTS": 0x4000000,
             "NEWIPC": 0x8000000, "NEWUSER": 0x10000000, "NEWPID": 0x20000000,
             "NEWNET": 0x40000000}


def run_filter(program: bytes, nr: int, *args: int, arch: int = AUDIT_ARCH_X86_64) -> int:
    """What the kernel's seccomp would return for this syscall (classic BPF)."""
    padded = (list(args) + [0] * 6)[:6]
    data = struct.pack("=IIQ6Q", nr, arch, 0, *padded)  # struct seccomp_data
    insns = [struct.unpack_from("=HBBI", program, i) for i in range(0, len(program), 8)]
    a, mem, pc = 0, [0] * 16, 0
    for _ in range(len(insns)):  # no backward jumps in BPF: one pass at most
        code, jt, jf, k = insns[pc]
        pc += 1
        if code == 0x20:
            a = struct.unpack_from("=I", data, k)[0]
        elif code == 0x00:
            a = k
        elif code == 0x60:
            a = mem[k]
        elif code == 0x02:
            mem[k] = a
        elif code == 0x54:
            a &= k
        elif code == 0x05:
            pc += k
        elif code in (0x15, 0x25, 0x35, 0x45):
            taken = {0x15: a == k, 0x25: a > k, 0x35: a >= k, 0x45: bool(a & k)}[code]
            pc += jt if taken else jf
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"BPF opcode {code:#x} is not interpreted here")
    raise AssertionError("the program fell off its end")


@pytest.fixture(scope="module")
def default() -> bytes:
    return compile_profile(PROFILES["default"])


def _number(name: str) -> int:
    import pyseccomp

    return pyseccomp.resolve_syscall(AUDIT_ARCH_X86_64, name)


@pytest.mark.parametrize("name", DENIED_SYSCALLS)
def test_every_denied_syscall_answers_eperm(default: bytes, name: str) -> None:
    number = _number(name)
    assert number >= 0, f"{name} is not an x86_64 syscall"
    assert run_filter(default, number) == EPERM


@pytest.mark.parametrize("name", ["read", "write", "mmap", "execve", "futex", "openat"])
def test_ordinary_syscalls_are_allowed(default: bytes, name: str) -> None:
    assert run_filter(default, NR[name]) == ALLOW


def test_clone_makes_threads_and_processes_but_no_namespaces(default: bytes) -> None:
    assert run_filter(default, NR["clone"], CLONE_THREAD_FLAGS) == ALLOW
    assert run_filter(default, NR["clone"], 17) == ALLOW  # fork(): SIGCHLD only
    for flag in CLONE_NEW.values():
        assert run_filter(default, NR["clone"], 17 | flag) == EPERM


def test_clone3_answers_enosys_so_glibc_falls_back_to_clone(default: bytes) -> None:
    assert run_filter(default, NR["clone3"]) == ENOSYS


@pytest.mark.parametrize("persona, verdict", [
    (0x0, ALLOW), (0x8, ALLOW), (0x20000, ALLOW), (0x20008, ALLOW), (0xFFFFFFFF, ALLOW),
    (0x0040000, EPERM),  # ADDR_NO_RANDOMIZE
    (0x0400000, EPERM),  # READ_IMPLIES_EXEC
])
def test_personality_allows_only_the_usual_personas(
        default: bytes, persona: int, verdict: int) -> None:
    assert run_filter(default, NR["personality"], persona) == verdict


def test_vsock_sockets_are_denied_and_inet_ones_allowed(default: bytes) -> None:
    assert run_filter(default, NR["socket"], 40) == EPERM  # AF_VSOCK reaches the VM host
    assert run_filter(default, NR["socket"], 2) == ALLOW
    assert run_filter(default, NR["socket"], 1) == ALLOW


def test_the_32_bit_and_x32_abis_kill_the_process(default: bytes) -> None:
    assert run_filter(default, 20, arch=AUDIT_ARCH_I386) == KILL_PROCESS  # i386 getpid
    assert run_filter(default, NR["x32_getpid"]) == KILL_PROCESS


def test_syscalls_newer_than_the_profile_answer_enosys_and_holes_eperm(default: bytes) -> None:
    assert run_filter(default, 1000) == ENOSYS
    assert run_filter(default, 0xFFFFFFFF) == EPERM  # -1: no syscall, not a new one
    assert run_filter(default, 400) == EPERM  # an unassigned number below the newest known


def test_every_template_profile_compiles_to_a_loadable_program() -> None:
    assert sorted(PROFILES) == sorted(SECCOMP_PROFILES)
    programs = SeccompPrograms.compile()
    for name in SECCOMP_PROFILES:
        program = programs.program(name)
        assert len(program) % 8 == 0 and len(program) // 8 <= 4096
        assert run_filter(program, NR["getpid"]) == ALLOW


def test_a_profile_that_allows_a_denied_syscall_is_refused() -> None:
    loose = SeccompProfile("loose", "allows bpf", extra_allowed=frozenset({"bpf"}))
    with pytest.raises(IsolationUnavailableError, match="allows denied syscalls"):
        compile_profile(loose)


def test_an_unknown_profile_name_is_refused_naming_the_profiles() -> None:
    with pytest.raises(IsolationUnavailableError, match="profiles: default, browser"):
        SeccompPrograms.compile(["unconfined"])


def test_without_libseccomp_the_build_refuses_naming_the_package(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # pyseccomp looks libseccomp.so.2 up when imported: make it find nothing.
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    monkeypatch.delitem(sys.modules, "pyseccomp", raising=False)
    with pytest.raises(IsolationUnavailableError, match="apt-get install -y libseccomp2"):
        SeccompPrograms.compile()


def test_without_pyseccomp_the_build_refuses_naming_the_fix(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyseccomp", None)  # import fails as if absent
    with pytest.raises(IsolationUnavailableError, match="pyseccomp.*scripts/bootstrap.sh"):
        SeccompPrograms.compile()
