"""The syscall filter and the user-namespace lock, from inside real sandboxes of
every built-in template: what is denied answers EPERM (or kills, for a foreign
ABI), and ordinary work still runs."""

from __future__ import annotations

import asyncio
import json
import platform
import struct
from collections.abc import AsyncIterator

import pytest

from sandbox_svc.local.seccomp import DENIED_SYSCALLS
from sandbox_svc.server import RunningService
from sandgate.sdk import AsyncSandbox

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64",
                                reason="the probes use x86_64 syscall numbers and code")

TEMPLATES = ["base", "filesystem", "browser"]
EPERM, ENOSYS = 1, 38
SIGSYS_STATUS = 128 + 31  # what the shell reports for a process killed by SIGSYS

# Runs each [name, number, *args] through libc's syscall() and prints
# {name: 0 on success, else errno}. A clone that succeeds exits in the child.
PROBE = """
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
out = {}
for name, number, *args in json.loads(sys.argv[1]):
    ctypes.set_errno(0)
    ret = libc.syscall(ctypes.c_long(number), *(ctypes.c_long(a) for a in args))
    if ret == 0 and name.startswith("clone"):
        os._exit(0)
    out[name] = ctypes.get_errno() if ret == -1 else 0
print(json.dumps(out))
"""

# A 64-bit process entering the kernel through the 32-bit ABI: `int $0x80` with
# eax=20 (getpid on i386), from code mapped executable by Python itself.
FOREIGN_ABI = """
import ctypes, mmap, sys
code = bytes.fromhex(sys.argv[1])
page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
page.write(code)
address = ctypes.addressof(ctypes.c_char.from_buffer(page))
print(ctypes.CFUNCTYPE(ctypes.c_int)(address)(), flush=True)
"""
MOV_EAX_20 = "b814000000"
INT_80 = "cd80"
RET = "c3"

WORK = """
import json, subprocess, tempfile, threading
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import Pool

with ThreadPoolExecutor(4) as pool:
    squares = list(pool.map(lambda n: n * n, range(8)))
with Pool(2) as procs:
    doubled = procs.map(abs, [-1, -2, -3])
echo = subprocess.run(["echo", "child"], capture_output=True, text=True).stdout.strip()
with tempfile.TemporaryDirectory() as tmp:
    pass
print(json.dumps({"squares": squares, "doubled": doubled, "echo": echo,
                  "threads": threading.active_count()}))
"""

PAGE = "<!doctype html><title>Filtered</title><h1>Still renders</h1><button>Press</button>"


def _syscall_number(name: str) -> int:
    import pyseccomp

    return pyseccomp.resolve_syscall(pyseccomp.Arch.X86_64, name)


@pytest.fixture(params=TEMPLATES)
async def sbx(request: pytest.FixtureRequest,
              service: RunningService) -> AsyncIterator[AsyncSandbox]:
    sandbox = await AsyncSandbox.create(request.param, target=service.address)
    yield sandbox
    await sandbox.kill()


async def _python(sbx: AsyncSandbox, script: str, *args: str) -> tuple[int, str, str]:
    await sbx.files.write("probe.py", script)
    quoted = " ".join(f"'{a}'" for a in args)
    result = await sbx.commands.run(f"python3 probe.py {quoted}; echo \"status=$?\"",
                                    timeout=60)
    *lines, status = result.stdout.strip().splitlines()
    return int(status.removeprefix("status=")), "\n".join(lines), result.stderr


async def test_nested_user_namespaces_cannot_be_created(sbx: AsyncSandbox) -> None:
    result = await sbx.commands.run("unshare -U true")
    assert result.exit_code != 0
    assert "Operation not permitted" in result.stderr


async def test_every_denied_syscall_answers_eperm(sbx: AsyncSandbox) -> None:
    calls = [[name, _syscall_number(name)] for name in DENIED_SYSCALLS]
    status, stdout, stderr = await _python(sbx, PROBE, json.dumps(calls))
    assert status == 0, stderr
    answers = json.loads(stdout)
    assert {name: errno for name, errno in answers.items() if errno != EPERM} == {}
    assert set(answers) == set(DENIED_SYSCALLS)


async def test_arguments_decide_for_clone_personality_and_socket(sbx: AsyncSandbox) -> None:
    sigchld, new_user, new_net, new_ns = 17, 0x10000000, 0x40000000, 0x20000
    calls = [
        ["clone_newuser", 56, new_user | sigchld, 0, 0, 0, 0],
        ["clone_newnet", 56, new_net | sigchld, 0, 0, 0, 0],
        ["clone_newns", 56, new_ns | sigchld, 0, 0, 0, 0],
        ["clone3", 435, 0, 0],
        ["personality_no_aslr", 135, 0x0040000],
        ["personality_query", 135, 0xFFFFFFFF],
        ["socket_vsock", 41, 40, 1, 0],
        ["socket_unix", 41, 1, 1, 0],
    ]
    status, stdout, stderr = await _python(sbx, PROBE, json.dumps(calls))
    assert status == 0, stderr
    assert json.loads(stdout) == {
        "clone_newuser": EPERM, "clone_newnet": EPERM, "clone_newns": EPERM,
        "clone3": ENOSYS,  # so glibc falls back to clone
        "personality_no_aslr": EPERM, "personality_query": 0,
        "socket_vsock": EPERM, "socket_unix": 0,
    }
    seccomp = await sbx.commands.run("grep '^Seccomp:' /proc/self/status")
    assert seccomp.stdout.split() == ["Seccomp:", "2"]  # 2: a filter is in force


async def test_the_32_bit_abi_and_x32_kill_the_process(sbx: AsyncSandbox) -> None:
    status, stdout, _ = await _python(sbx, FOREIGN_ABI, MOV_EAX_20 + RET)
    assert (status, stdout) == (0, "20")  # the mapped code itself runs
    status, stdout, _ = await _python(sbx, FOREIGN_ABI, MOV_EAX_20 + INT_80 + RET)
    assert (status, stdout) == (SIGSYS_STATUS, "")
    x32 = "import ctypes; ctypes.CDLL(None).syscall(0x40000000 | 39)  # x32 getpid\n"
    status, _, _ = await _python(sbx, x32)
    assert status == SIGSYS_STATUS


async def test_ordinary_work_still_runs(sbx: AsyncSandbox) -> None:
    status, stdout, stderr = await _python(sbx, WORK)
    assert status == 0, stderr
    assert json.loads(stdout) | {"threads": 1} == {
        "squares": [0, 1, 4, 9, 16, 25, 36, 49], "doubled": [1, 2, 3], "echo": "child",
        "threads": 1}
    pipeline = await sbx.commands.run("seq 1 2000 | sort -rn | head -3 | tr '\\n' ' '")
    assert pipeline.stdout.split() == ["2000", "1999", "1998"]
    cell = await sbx.run_code("import subprocess, threading\n"
                              "t = threading.Thread(target=print, args=('thread',))\n"
                              "t.start(); t.join()\n"
                              "print(subprocess.run(['echo', 'cell'], capture_output=True,"
                              " text=True).stdout.strip())\n6 * 7")
    assert cell.error is None
    assert cell.text == "42" and "thread\ncell" in "".join(cell.stdout)
    if sbx.template == "browser":
        await _browse(sbx)


async def _browse(sbx: AsyncSandbox) -> None:
    await sbx.files.write("site/index.html", PAGE)
    await sbx.commands.run("cd site && nohup python3 -m http.server 8000 --bind 127.0.0.1 "
                           ">/dev/null 2>&1 &")
    async with asyncio.timeout(30):
        while True:  # the in-sandbox web server may still be starting
            page = await sbx.browser.call("browser_navigate", {"url": "http://127.0.0.1:8000/"})
            if not page.is_error or "ERR_CONNECTION_REFUSED" not in page.text:
                break
            await asyncio.sleep(0.1)
    assert not page.is_error and "Still renders" in page.text
    snapshot = await sbx.browser.call("browser_snapshot")
    assert 'button "Press"' in snapshot.text
    shot = await sbx.browser.call("browser_take_screenshot")
    (mime, png), = shot.images
    assert mime == "image/png" and png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24])[0] > 0
