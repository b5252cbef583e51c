"""The zygote: a root process that has imported sandboxd once and forks it into sandboxes.

sandboxd spends most of a cold start importing grpc, protobuf and asyncio
(about 120 ms of a 160 ms start on 2 cores). The zygote pays that once: it
runs in a private mount namespace where the sandbox's runtime sits at the
paths a sandbox sees (``/opt/sandgate/venv``, ``/opt/sandgate/src``), imports
sandboxd's start-up modules, then serves the socket whose descriptor is its
one argument (``zygote.py`` is the service's side). It keeps one fork
waiting on that socket: the fork takes the next request, enters the sandbox
bwrap built around a holder process (``handover.py``), forks once more into
the sandbox's pid namespace and runs sandboxd's ``main`` there, while the
zygote forks the next waiting one. The zygote never reads a request, so what
one sandbox asked for is never in the memory a later sandboxd inherits.

A request names a holder pid, the sandbox's cgroups, sandboxd's arguments
and environment and the seccomp program, and comes from the service that
started the zygote, over a socketpair no one else holds. The zygote stays
single-threaded (``setns`` into a user namespace requires it) and exits once
the service has closed the socket and no sandboxd it started is left.
"""

from __future__ import annotations

import array
import base64
import contextlib
import json
import os
import signal
import socket
import sys
import traceback

from sandbox_svc.local.handover import (
    HandoverError,
    check_confined,
    enter_sandbox,
    finish_entering,
    prctl,
)
from sandbox_svc.sandboxd.venv import enter_venv

_MAX_REQUEST = 256 * 1024
_MAX_STATUS = 4096
_EXIT_HANDOVER_FAILED = 126
_MAX_FORK_FAILURES = 3
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NAME = 15
_PR_SET_PDEATHSIG = 1


def _preimport() -> None:
    """What sandboxd imports before it serves (the rest loads on first use)."""
    import sandbox_svc.sandboxd.__main__  # noqa: F401
    import sandbox_svc.sandboxd.lazy  # noqa: F401
    import sandbox_svc.sandboxd.limits  # noqa: F401
    import sandbox_svc.sandboxd.server  # noqa: F401
    import sandgate.service.assembly  # noqa: F401


def _receive(sock: socket.socket) -> tuple[dict[str, object], list[int]] | None:
    fds = array.array("i")
    data, ancillary, _, _ = sock.recvmsg(_MAX_REQUEST, socket.CMSG_SPACE(2 * fds.itemsize))
    if not data:
        return None
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    return json.loads(data), list(fds)


def _enter_and_run(request: dict[str, object], log_fd: int, hold_fd: int,
                   sock: socket.socket) -> None:
    """The fork's life once it took a request. Never returns.

    It enters the sandbox, forks sandboxd's process into its pid namespace and
    answers the service once that process passed :func:`check_confined` (it
    writes ``ok`` to a pipe), or with why a step failed (also in the sandbox's log).
    """
    intermediate = os.getpid()  # sandboxd's process, forked below, has another
    status_r, status_w = os.pipe()
    status = _EXIT_HANDOVER_FAILED
    try:
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        seccomp = base64.b64decode(str(request["seccomp"])) if request.get("seccomp") else None
        expected = enter_sandbox(
            int(request["holder_pid"]), str(request["cgroup"]),  # type: ignore[call-overload]
            [str(p) for p in request["cgroup_procs"]],  # type: ignore[attr-defined]
            inner_uid=int(request["inner_uid"]),  # type: ignore[call-overload]
            workspace=str(request["workspace"]), seccomp=seccomp,
            keep_fds=(1, 2, hold_fd, status_r, status_w, sock.fileno()))
        if os.fork() != 0:  # its child is in the sandbox's pid namespace
            os.close(status_w)
            os.close(hold_fd)
            answer = _read_status(status_r).decode(errors="replace")
            _answer(sock, answer or "the fork ended before it entered the sandbox")
            os._exit(0)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the zygote's SIG_IGN is not sandboxd's
        sock.close()
        os.close(status_r)
        null = os.open("/dev/null", os.O_RDONLY)  # the sandbox's own
        if null != 0:
            os.dup2(null, 0)
            os.close(null)
        os.set_inheritable(hold_fd, False)  # sandboxd holds it; its commands must not
        prctl(_PR_SET_NAME, b"sandboxd")  # what ps and top show
        finish_entering(seccomp)
        check_confined(expected)
        os.write(status_w, b"ok")
        os.close(status_w)
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in request["env"].items()})  # type: ignore[attr-defined]
        from sandbox_svc.sandboxd.__main__ import main

        argv = [str(a) for a in request["argv"]]  # type: ignore[attr-defined]
        sys.argv = ["sandboxd", *argv]
        status = main(argv)
    except HandoverError as exc:
        print(f"sandgate zygote: not entering the sandbox: {exc}", file=sys.stderr)
        with contextlib.suppress(OSError):
            os.write(status_w, str(exc).encode()[:_MAX_STATUS])
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - anything else ends the fork, with its traceback
        traceback.print_exc()
        status = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        if os.getpid() != intermediate:  # sandboxd's process: its status is its own
            os._exit(status)
        # Still the fork that took the request: nothing entered; say why, once.
        os.close(status_w)
        _answer(sock, _read_status(status_r).decode(errors="replace")
                or "the fork failed before it entered the sandbox (see the sandbox's log)")
        os._exit(status)


def _answer(sock: socket.socket, status: str) -> None:
    answer = {"ok": True} if status == "ok" else {"ok": False, "error": status}
    with contextlib.suppress(OSError):
        sock.sendall(json.dumps(answer).encode())


def _read_status(fd: int) -> bytes:
    """Everything written to ``fd`` until every writer closed it (bounded)."""
    data = b""
    while len(data) <= _MAX_STATUS:
        chunk = os.read(fd, _MAX_STATUS)
        if not chunk:
            break
        data += chunk
    return data


def _wait_for_request(sock: socket.socket, taken_fd: int, zygote: int) -> None:
    """A waiting fork: take the next request and serve it (``t`` to the zygote), or
    see the service close the socket (``e``). Never returns."""
    # A zygote that dies takes its waiting fork along, so the service's next
    # request fails to send (and starts a new zygote) instead of going unanswered.
    prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != zygote:
        os._exit(0)
    received = _receive(sock)
    prctl(_PR_SET_PDEATHSIG, 0)  # a request taken is served to the end
    with contextlib.suppress(OSError):  # the zygote is gone: serve this one regardless
        os.write(taken_fd, b"t" if received is not None else b"e")
    os.close(taken_fd)
    if received is None:
        os._exit(0)
    request, fds = received
    if len(fds) != 2:
        for fd in fds:
            os.close(fd)
        _answer(sock, "expected 2 descriptors")
        os._exit(1)
    _enter_and_run(request, fds[0], fds[1], sock)


def serve(sock: socket.socket) -> int:
    """Keep one fork waiting for the next request until the service closes the socket.

    The zygote never reads a request itself: what a sandbox asked for is only
    ever in that sandbox's own fork, never in memory a later sandboxd inherits.
    """
    sock.sendall(json.dumps({"ready": True, "pid": os.getpid()}).encode())
    failures = 0
    while failures < _MAX_FORK_FAILURES:
        taken_r, taken_w = os.pipe()
        zygote = os.getpid()
        if os.fork() == 0:
            os.close(taken_r)
            _wait_for_request(sock, taken_w, zygote)
        os.close(taken_w)
        try:
            taken = os.read(taken_r, 1)
        finally:
            os.close(taken_r)
        if taken == b"e":
            break
        failures = 0 if taken == b"t" else failures + 1  # b"": the fork died waiting
    sock.close()
    with contextlib.suppress(ChildProcessError):
        os.wait()  # SIGCHLD ignored: returns once every child has ended
    return 0


def main() -> int:
    # Detach: the service reaps the process it started at once and never waits
    # for us; we outlive it only as long as a sandboxd we started does.
    if os.fork() != 0:
        os._exit(0)
    enter_venv()
    sys.dont_write_bytecode = True
    _preimport()
    if len(os.listdir("/proc/self/task")) != 1:
        print("sandgate zygote: imports started a thread; a fork could not enter a "
              "user namespace", file=sys.stderr)
        return 1
    # Children and the sandboxds they leave when they exit come back to us
    # (subreaper) and are reaped at once (SIGCHLD ignored): an orphan would
    # otherwise go to the host's init, and a sandbox's pid namespace cannot end
    # while a zombie of it waits there to be reaped.
    if prctl(_PR_SET_CHILD_SUBREAPER, 1) != 0:
        print("sandgate zygote: cannot become a child subreaper", file=sys.stderr)
        return 1
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    sock = socket.socket(fileno=int(sys.argv[1]))
    return serve(sock)


if __name__ == "__main__":
    sys.exit(main())
