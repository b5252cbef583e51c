"""The service's side of the zygote (see ``zygote_main``): start it, ask it for a sandboxd.

The zygote runs as root in a private mount namespace where the sandbox's
runtime is bound where sandboxes see it, so what it imports resolves to the
same files inside every sandbox. The service talks to it over a
``SOCK_SEQPACKET`` socketpair, one request at a time: a request carries JSON
and two descriptors (the sandbox's log, and the write end of the pipe whose
read end keeps the sandbox's holder alive), the answer says whether the fork
entered the sandbox.
"""

from __future__ import annotations

import array
import base64
import json
import logging
import shlex
import socket
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

from sandbox_svc.errors import BackendError
from sandbox_svc.local.bwrap import SANDBOX_SRC, SANDBOX_VENV, sandbox_env

__all__ = ["Zygote"]

logger = logging.getLogger(__name__)

_READY_TIMEOUT_S = 30.0
_SPAWN_TIMEOUT_S = 10.0


def _zygote_argv(venv: Path, packages: Sequence[Path], control_fd: int) -> list[str]:
    """unshare + a shell that binds the runtime at the sandbox's paths, then execs Python.

    The tmpfs over /opt exists only in the zygote's mount namespace; the host's
    /opt is untouched (an empty one is made first if the host has none).
    """
    binds = [f"mount --bind -o ro {shlex.quote(str(venv))} {SANDBOX_VENV}"]
    dirs = [SANDBOX_VENV]
    for package in packages:
        target = f"{SANDBOX_SRC}/{package.name}"
        dirs.append(target)
        binds.append(f"mount --bind -o ro {shlex.quote(str(package))} {target}")
    script = "; ".join([
        "set -e", "[ -d /opt ] || mkdir /opt",
        "mount -t tmpfs -o mode=0755,size=1m sandgate-zygote /opt",
        f"mkdir -p {' '.join(dirs)}", *binds,
        f"exec {SANDBOX_VENV}/bin/python -S -P -m sandbox_svc.local.zygote_main {control_fd}",
    ])
    return ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script]


class Zygote:
    """One zygote process; :meth:`spawn` is safe to call from several threads.

    The zygote detaches at once (the process the service starts exits), so the
    service never waits for it: it lives while the service's end of the socket
    is open, and after that only until no sandboxd it started is left (it
    reaps them; see ``zygote_main``). A zygote that died is replaced on the
    next spawn.
    """

    def __init__(self, venv: Path, packages: Sequence[Path], log_path: Path) -> None:
        self._venv = venv
        self._packages = tuple(packages)
        self._log_path = log_path
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._ready = False
        self.pid: int | None = None
        """The zygote's pid once it said it is ready."""

    def start(self) -> None:
        """Launch the zygote; it imports in the background and the first spawn waits.

        Raises:
            BackendError: the zygote's mount namespace could not be set up.
        """
        with self._lock:
            if self._sock is None:
                self._launch()

    def _launch(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with open(self._log_path, "ab") as log:
                launcher = subprocess.Popen(
                    _zygote_argv(self._venv, self._packages, theirs.fileno()),
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=sandbox_env(),
                    start_new_session=True, pass_fds=(theirs.fileno(),))
            theirs.close()
            try:
                status = launcher.wait(timeout=_READY_TIMEOUT_S)  # it forks and exits early
            except subprocess.TimeoutExpired:
                launcher.kill()
                launcher.wait()
                status = launcher.returncode
            if status != 0:
                raise BackendError(
                    f"the sandbox zygote did not start (status {status}; its log: "
                    f"{self._log_path}); set SANDGATE_ZYGOTE=false to start every "
                    "sandboxd afresh")
        except BaseException:
            ours.close()
            theirs.close()
            raise
        self._sock = ours
        self._ready = False
        self.pid = None

    def _drop_locked(self) -> None:
        if self._sock is not None:
            self._sock.close()  # EOF: the zygote exits once its sandboxds are gone
            self._sock = None

    def close(self) -> None:
        """Let the zygote go. Sandboxes it started live on. Raises: nothing."""
        with self._lock:
            self._drop_locked()

    def _answer(self, timeout: float) -> dict[str, object]:
        assert self._sock is not None
        self._sock.settimeout(timeout)
        data = self._sock.recv(4096)
        if not data:
            raise ConnectionError("the zygote exited")
        answer: dict[str, object] = json.loads(data)
        return answer

    def _send(self, request: bytes, fds: list[int]) -> None:
        """Send to a ready zygote, starting one first if there is none.

        Raises:
            BrokenPipeError, ConnectionError: the zygote has gone.
        """
        if self._sock is None:
            self._launch()
        assert self._sock is not None
        if not self._ready:
            self.pid = int(self._answer(_READY_TIMEOUT_S)["pid"])  # type: ignore[call-overload]
            self._ready = True
        self._sock.settimeout(_SPAWN_TIMEOUT_S)
        self._sock.sendmsg([request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                        array.array("i", fds))])

    def spawn(self, *, holder_pid: int, cgroup: str, cgroup_procs: Sequence[Path],
              argv: Sequence[str], env: dict[str, str], seccomp: bytes | None,
              inner_uid: int, workspace: str, log_fd: int, hold_fd: int) -> None:
        """Fork a sandboxd into the sandbox around ``holder_pid``.

        Raises:
            BackendError: the zygote is not available or the fork could not
                enter the sandbox (the reason is in the sandbox's log too).
        """
        request = json.dumps({
            "holder_pid": holder_pid, "cgroup": cgroup,
            "cgroup_procs": [str(p) for p in cgroup_procs], "argv": list(argv), "env": env,
            "seccomp": base64.b64encode(seccomp).decode() if seccomp else "",
            "inner_uid": inner_uid, "workspace": workspace,
        }).encode()
        with self._lock:
            try:
                try:
                    self._send(request, [log_fd, hold_fd])
                except (BrokenPipeError, ConnectionError):  # it died since: one more go
                    logger.warning("the sandbox zygote has gone; starting another (its log: "
                                   "%s)", self._log_path)
                    self._drop_locked()
                    self._send(request, [log_fd, hold_fd])
                answer = self._answer(_SPAWN_TIMEOUT_S)
            except (OSError, ValueError) as exc:  # timeouts, a dead zygote, a garbled answer
                self._drop_locked()
                raise BackendError(f"the sandbox zygote failed ({exc}); see {self._log_path}"
                                   ) from None
        if not answer.get("ok"):
            raise BackendError(f"sandboxd could not enter the sandbox: {answer.get('error')}")
