"""The zygote: a root process that has imported sandboxd once and forks it into sandboxes.

sandboxd spends most of a cold start importing grpc, protobuf and asyncio
(about 120 ms of a 160 ms start on 2 cores). The zygote pays that once: it
runs in a private mount namespace where the sandbox's runtime sits at the
paths a sandbox sees (``/opt/sandgate/venv``, ``/opt/sandgate/src``), imports
sandboxd's start-up modules, then waits for requests on the socket whose
descriptor is its one argument (``zygote.py`` is the service's side). For
each it forks; the fork enters the sandbox bwrap built around a holder process
(``handover.py``), forks once more into the sandbox's pid namespace and runs
sandboxd's ``main`` there.

It never runs anything of a request but that: the request names a holder pid,
the sandbox's cgroups, sandboxd's arguments and environment and the seccomp
program, and comes from the service that started it, over a socketpair no
one else holds. It stays single-threaded (``setns`` into a user namespace
requires it) and exits when the service closes the socket.
"""

from __future__ import annotations

import array
import base64
import contextlib
import ctypes
import json
import os
import signal
import socket
import sys
import traceback

from sandbox_svc.sandboxd.venv import enter_venv

_MAX_REQUEST = 256 * 1024
_MAX_STATUS = 4096
_EXIT_HANDOVER_FAILED = 126
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NAME = 15
_libc = ctypes.CDLL(None, use_errno=True)


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


def _run_in_sandbox(request: dict[str, object], log_fd: int, hold_fd: int,
                    status_fd: int) -> None:
    """The fork's life: enter, fork into the pid namespace, check, run sandboxd. Never returns.

    The sandboxd process writes ``ok`` to ``status_fd`` once :func:`check_confined`
    passed; a step that fails writes why (also to the sandbox's log) instead.
    """
    from sandbox_svc.local.handover import (
        HandoverError,
        check_confined,
        enter_sandbox,
        finish_entering,
    )

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the zygote's SIG_IGN is not sandboxd's
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
            keep_fds=(1, 2, hold_fd, status_fd))
        if os.fork() != 0:
            os._exit(0)  # its child is in the sandbox's pid namespace; the zygote adopts it
        null = os.open("/dev/null", os.O_RDONLY)  # the sandbox's own
        if null != 0:
            os.dup2(null, 0)
            os.close(null)
        os.set_inheritable(hold_fd, False)  # sandboxd holds it; its commands must not
        _libc.prctl(_PR_SET_NAME, b"sandboxd", 0, 0, 0)  # what ps and top show
        finish_entering(seccomp)
        check_confined(expected)
        os.write(status_fd, b"ok")
        os.close(status_fd)
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in request["env"].items()})  # type: ignore[attr-defined]
        from sandbox_svc.sandboxd.__main__ import main

        argv = [str(a) for a in request["argv"]]  # type: ignore[attr-defined]
        sys.argv = ["sandboxd", *argv]
        status = main(argv)
    except HandoverError as exc:
        print(f"sandgate zygote: not entering the sandbox: {exc}", file=sys.stderr)
        with contextlib.suppress(OSError):
            os.write(status_fd, str(exc).encode()[:_MAX_STATUS])
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - anything else ends the fork, with its traceback
        traceback.print_exc()
        status = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)  # never the zygote's own exit handlers


def _read_status(fd: int) -> bytes:
    """Everything written to ``fd`` until every writer closed it (bounded)."""
    data = b""
    while len(data) <= _MAX_STATUS:
        chunk = os.read(fd, _MAX_STATUS)
        if not chunk:
            break
        data += chunk
    return data


def serve(sock: socket.socket) -> int:
    """Answer requests until the service closes the socket, then reap what is left."""
    sock.sendall(json.dumps({"ready": True, "pid": os.getpid()}).encode())
    while True:
        received = _receive(sock)
        if received is None:
            sock.close()
            with contextlib.suppress(ChildProcessError):
                os.wait()  # SIGCHLD ignored: returns once every child has ended
            return 0
        request, fds = received
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            sock.sendall(json.dumps({"ok": False, "error": "expected 2 descriptors"}).encode())
            continue
        log_fd, hold_fd = fds
        status_r, status_w = os.pipe()
        if os.fork() == 0:
            sock.close()
            os.close(status_r)
            _run_in_sandbox(request, log_fd, hold_fd, status_w)
        for fd in (log_fd, hold_fd, status_w):
            os.close(fd)
        try:
            status = _read_status(status_r).decode(errors="replace")
        finally:
            os.close(status_r)
        answer = {"ok": True} if status == "ok" else {
            "ok": False, "error": status or "the fork ended before it entered the sandbox"}
        sock.sendall(json.dumps(answer).encode())


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
    if _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("sandgate zygote: cannot become a child subreaper", file=sys.stderr)
        return 1
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    sock = socket.socket(fileno=int(sys.argv[1]))
    return serve(sock)


if __name__ == "__main__":
    sys.exit(main())
