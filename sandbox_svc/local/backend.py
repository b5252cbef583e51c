"""The local isolation backend: bubblewrap + cgroups on this Linux host.

Layout under ``state_dir`` (root-owned, mode 0711 so the unprivileged sandbox
uids can traverse but not list it)::

    sandgate.lock              one service per state dir (flock; see statelock)
    etc/                       synthetic passwd, group, hosts (shared, read-only)
    uids.lock                  serialises host uid allocation (flock)
    sb/<id>/workspace          /workspace inside, owned by the sandbox's host uid
    sb/<id>/run                /run/sandgate inside: sandboxd.sock, token
    sb/<id>/sandbox.log        what bwrap and sandboxd printed

Host uids are this backend's concern alone: every sandbox runs as its own uid
in ``[uid_base, uid_base + uid_count)``. The owner of ``sb/<id>/workspace`` *is*
the allocation: a uid is taken while a workspace it owns exists, and free again
once :meth:`LocalBackend.destroy` removed the directory. An allocator takes the
``uids.lock`` flock, reads the owners of the existing workspaces, creates the new
workspace and chowns it before letting go, so allocations are atomic across
threads and processes and survive restarts with no table to keep in step.
"""

from __future__ import annotations

import asyncio
import compileall
import contextlib
import fcntl
import json
import logging
import os
import select
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sandbox_svc.backend import StartSpec
from sandbox_svc.errors import BackendError, IsolationUnavailableError, SandboxLimitError
from sandbox_svc.isolation import NETWORK_EGRESS, NETWORK_NONE, Isolation
from sandbox_svc.local.bwrap import (
    HOLDER,
    INNER_UID,
    NAMESPACES,
    SandboxLayout,
    bwrap_argv,
    launcher_argv,
    sandbox_env,
    sandboxd_args,
    sandboxd_command,
)
from sandbox_svc.local.cgroups import CgroupDriver, CgroupLimits, detect_cgroups
from sandbox_svc.local.network import (
    apply_firewall,
    firewall_rules,
    missing_network_tools,
    start_slirp,
)
from sandbox_svc.local.runtime import first_unsearchable_dir, locate_runtime
from sandbox_svc.local.seccomp import SeccompPrograms
from sandbox_svc.local.statelock import cgroup_parent
from sandbox_svc.local.zygote import Zygote
from sandbox_svc.templates import HOST_LOOPBACK, Template

__all__ = ["LocalBackend"]

logger = logging.getLogger(__name__)

_UNIX_PATH_MAX = 107
_READY_TIMEOUT_S = 20.0
# Packages whose source sandboxd needs inside the sandbox.
_PACKAGES = ("sandgate", "sandbox_svc")


def _read_child_pid(info_fd: int, timeout: float = 10.0) -> int:
    """The sandbox's host pid from bwrap's --info-fd JSON."""
    data = b""
    deadline = time.monotonic() + timeout
    while b"}" not in data:
        remaining = deadline - time.monotonic()
        readable, _, _ = select.select([info_fd], [], [], max(remaining, 0))
        chunk = os.read(info_fd, 4096) if readable else b""
        if not chunk:
            raise BackendError("bwrap exited or stalled before reporting the sandbox pid")
        data += chunk
    return int(json.loads(data)["child-pid"])


@contextlib.contextmanager
def _pipe_with(data: bytes) -> Iterator[int]:
    """A pipe's read end holding ``data`` then EOF, closed on exit (a BPF program
    is at most 32 KiB, under a pipe's 64 KiB capacity, so the write cannot block)."""
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, data)
        os.close(write_fd)
        write_fd = -1
        yield read_fd
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)


def _check_traversable(path: Path, why: str) -> None:
    """Every directory above ``path`` must be searchable by other users."""
    parent = first_unsearchable_dir(path)
    if parent is not None:
        raise IsolationUnavailableError(
            f"{parent} (mode {stat.filemode(parent.stat().st_mode)}) is not searchable by "
            f"other users, so sandboxes cannot reach {path} ({why}). Move the checkout "
            f"somewhere world-searchable (e.g. under /opt or /srv) or run: chmod o+x {parent}"
        )


class LocalBackend:
    """Starts, pauses and kills bubblewrap sandboxes in per-sandbox cgroups.

    Implements :class:`sandbox_svc.backend.SandboxBackend`; targets are
    ``unix://<state_dir>/sb/<id>/run/sandboxd.sock``.

    Args:
        state_dir: where workspaces, run directories and logs live.
        cgroups: the cgroup driver (v1 or v2) for this host.
        venv: the virtualenv bound read-only into every sandbox.
        packages: source packages sandboxd needs inside.
        uid_base: the first host uid a sandbox runs as.
        uid_count: how many host uids (so sandboxes at once) this backend may use.
        zygote: forks sandboxd into each sandbox without a ``rootfs``; None
            starts sandboxd afresh in every one.

    Raises:
        Nothing on construction; :meth:`for_host` checks the host.
    """

    def __init__(self, state_dir: Path, cgroups: CgroupDriver, venv: Path,
                 packages: tuple[Path, ...], seccomp: SeccompPrograms, *,
                 uid_base: int = 200_000, uid_count: int = 64,
                 zygote: Zygote | None = None) -> None:
        self._state = state_dir
        self._seccomp = seccomp
        self._cgroups = cgroups
        self._venv = venv
        self._packages = packages
        self._uids = range(uid_base, uid_base + uid_count)
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._slirps: dict[str, subprocess.Popen[bytes]] = {}
        self._zygote = zygote

    @classmethod
    def for_host(cls, state_dir: Path, *, uid_base: int = 200_000,
                 uid_count: int = 64, zygote: bool = True) -> LocalBackend:
        """Check this host can isolate, prepare ``state_dir``; refuse otherwise.

        Raises:
            IsolationUnavailableError: not Linux, not root, a tool or cgroup
                controller missing, a path sandboxes cannot reach, or the
                zygote (``zygote=True``) could not start.
        """
        if sys.platform != "linux":
            raise IsolationUnavailableError("the local backend needs Linux (namespaces, cgroups)")
        if os.geteuid() != 0:
            raise IsolationUnavailableError(
                "the local backend must run as root: it creates cgroups and gives each sandbox "
                "its own host uid (run `sudo make run`, or deploy to Kubernetes)"
            )
        tools = [("bwrap", "bubblewrap"), ("setpriv", "util-linux")]
        if zygote:
            tools += [("unshare", "util-linux"), ("mount", "mount")]
        for tool, package in tools:
            if shutil.which(tool) is None:
                raise IsolationUnavailableError(
                    f"{tool} is not installed; install it with: apt-get install -y {package}"
                )
        # Every profile compiled once: a launch only copies the bytes into a pipe.
        seccomp = SeccompPrograms.compile()
        cgroups = detect_cgroups(parent=cgroup_parent(state_dir))
        venv = Path(sys.prefix)
        if venv == Path(sys.base_prefix):
            raise IsolationUnavailableError(
                "sandbox_svc must run from the project's virtualenv (.venv), which is bound "
                "read-only into every sandbox; start it with `make run`"
            )
        source_root = Path(__file__).resolve().parents[2]
        runtime = locate_runtime(venv, tuple(source_root / name for name in _PACKAGES))
        interpreter = (venv / "bin" / "python").resolve()
        _check_traversable(interpreter.parent, "the Python interpreter")
        backend = cls(state_dir, cgroups, runtime.venv, runtime.packages, seccomp,
                      uid_base=uid_base, uid_count=uid_count,
                      zygote=Zygote(runtime.venv, runtime.packages, state_dir / "zygote.log")
                      if zygote else None)
        backend._prepare_state_dir()
        # Sources are read-only inside; compile them now so sandboxd starts fast.
        for source in backend._packages:
            compileall.compile_dir(str(source), quiet=1)
        if backend._zygote is not None:
            try:
                backend._zygote.start()  # it imports while the service starts up
            except BackendError as exc:
                raise IsolationUnavailableError(str(exc)) from None
        return backend

    def _prepare_state_dir(self) -> None:
        for path in (self._state, self._state / "sb"):
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o711)
        _check_traversable(self._state, "their workspaces")
        etc = self._state / "etc"
        etc.mkdir(exist_ok=True)
        etc.chmod(0o755)
        files = {
            "passwd": f"sandbox:x:{INNER_UID}:{INNER_UID}:sandbox:/workspace:/bin/sh\n",
            "group": f"sandbox:x:{INNER_UID}:\n",
            "hosts": "127.0.0.1 localhost sandbox\n::1 localhost sandbox\n",
            "hostname": "sandbox\n",
            "resolv.conf": "nameserver 10.0.2.3\n",  # slirp4netns's DNS forwarder
        }
        for name, content in files.items():
            (etc / name).write_text(content)
            (etc / name).chmod(0o644)
        sock = self._sandbox_dir("x" * 24) / "run" / "sandboxd.sock"
        if len(str(sock)) > _UNIX_PATH_MAX:
            raise IsolationUnavailableError(
                f"state dir {self._state} is too long: socket paths such as {sock} exceed "
                f"{_UNIX_PATH_MAX} bytes; choose a shorter SANDGATE_STATE_DIR"
            )

    async def check_template(self, template: Template) -> None:
        """Refuse a template this host cannot run, naming what to install.

        Raises:
            IsolationUnavailableError: a networked template without slirp4netns/nft.
        """
        if template.network and (missing := missing_network_tools()):
            raise IsolationUnavailableError(
                f"template {template.name!r} needs network tools; install them with: "
                f"apt-get install -y {' '.join(missing)}")
        if not self._seccomp.has(template.seccomp):
            raise IsolationUnavailableError(
                f"template {template.name!r}: seccomp profile {template.seccomp!r} is not "
                f"built; profiles: {', '.join(self._seccomp.names())}")

    def isolation(self, template: Template) -> Isolation:
        """The isolation every sandbox of ``template`` gets on this host."""
        return Isolation(
            runtime="bubblewrap", namespaces=NAMESPACES, inner_uid=INNER_UID,
            seccomp_profile=template.seccomp, user_namespaces_disabled=True,
            network_policy=NETWORK_EGRESS if template.network else NETWORK_NONE,
            network_allow=template.allow)

    def _sandbox_dir(self, sandbox_id: str) -> Path:
        return self._state / "sb" / sandbox_id

    def socket_path(self, sandbox_id: str) -> Path:
        return self._sandbox_dir(sandbox_id) / "run" / "sandboxd.sock"

    def target(self, sandbox_id: str) -> str:
        return f"unix://{self.socket_path(sandbox_id)}"

    @property
    def cgroup_version(self) -> int:
        return self._cgroups.version

    async def start(self, spec: StartSpec) -> str:
        """Launch the sandbox and wait until its sandboxd answers; return its target.

        Raises:
            SandboxLimitError: every host uid in the range is taken.
            BackendError: the sandbox did not start; nothing of it is left.
        """
        launching = asyncio.ensure_future(asyncio.to_thread(self._launch, spec))
        try:
            await asyncio.shield(launching)
            await self._wait_ready(spec.sandbox_id)
        except BaseException:
            try:
                await asyncio.shield(self._undo_start(launching, spec.sandbox_id))
            except Exception:  # the caller's error (or cancellation) is the one to see
                logger.exception("cleaning up the failed start of sandbox %s failed; the "
                                 "next recovery or `sandgate gc` removes what is left",
                                 spec.sandbox_id)
            raise
        return self.target(spec.sandbox_id)

    async def _undo_start(self, launching: asyncio.Future[None], sandbox_id: str) -> None:
        # A cancelled await does not stop the launch thread: let it finish, or the
        # launcher would join its cgroup after destroy emptied it and live on.
        with contextlib.suppress(Exception):
            await launching
        await self.destroy(sandbox_id)

    def _claim_uid(self, sandbox_id: str) -> int:
        """Create the sandbox's directory and workspace owned by a free host uid.

        Raises:
            SandboxLimitError: every uid of the range owns a workspace.
        """
        root = self._sandbox_dir(sandbox_id)
        with open(self._state / "uids.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            taken = set()
            for workspace in (self._state / "sb").glob("*/workspace"):
                try:
                    taken.add(workspace.stat().st_uid)
                except FileNotFoundError:
                    continue  # removed by a concurrent destroy
            uid = next((u for u in self._uids if u not in taken), None)
            if uid is None:
                raise SandboxLimitError(
                    f"all {len(self._uids)} sandbox host uids are in use; delete sandboxes "
                    "or raise SANDGATE_MAX_SANDBOXES")
            root.mkdir(mode=0o711)
            (root / "workspace").mkdir(mode=0o700)
            os.chown(root / "workspace", uid, uid)
        return uid

    def _launch(self, spec: StartSpec) -> None:
        sid = spec.sandbox_id
        uid = self._claim_uid(sid)
        root = self._sandbox_dir(sid)
        workspace, run = root / "workspace", root / "run"
        run.mkdir(mode=0o700)
        os.chown(run, uid, uid)
        token_file = run / "token"
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(fd, "w") as handle:
            handle.write(spec.token)
        os.chown(token_file, uid, uid)

        template = spec.template
        procs = self._cgroups.create(sid, CgroupLimits(
            memory_bytes=template.memory_mb * 1024 * 1024,
            max_pids=template.max_pids,
            cpu_millis=template.cpu_millis,
        ))
        layout = SandboxLayout(
            workspace=workspace, run_dir=run, etc_dir=self._state / "etc", venv=self._venv,
            packages=self._packages, oom_file=self._cgroups.oom_file(sid),
            rootfs=Path(template.rootfs) if template.rootfs else None,
            resolv_conf=self._state / "etc" / "resolv.conf" if template.network else None,
        )
        warm = {"browser_warm": "browser" in template.tool_groups,
                "kernel_warm": spec.warm_kernel}
        program = self._seccomp.program(template.seccomp)
        with open(root / "sandbox.log", "ab") as log, _pipe_with(program) as seccomp_r:
            if self._zygote is not None and template.rootfs is None:
                self._launch_handed_over(sid, template, uid, procs, layout,
                                         sandboxd_args(**warm), program, seccomp_r, log)
                return
            command = sandboxd_command(**warm)
            if not template.network:
                argv = launcher_argv(procs, uid, bwrap_argv(layout, command, sandbox_env(),
                                                            seccomp_fd=seccomp_r))
                self._procs[sid] = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    start_new_session=True, pass_fds=(seccomp_r,))
                return
            # bwrap reports the sandbox's pid on info_w and holds the command back
            # until block_r is readable: the network and its firewall come first.
            info_r, info_w = os.pipe()
            block_r, block_w = os.pipe()
            try:
                argv = launcher_argv(procs, uid, bwrap_argv(
                    layout, command, sandbox_env(), info_fd=info_w, block_fd=block_r,
                    seccomp_fd=seccomp_r))
                self._procs[sid] = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    start_new_session=True, pass_fds=(info_w, block_r, seccomp_r))
                os.close(info_w)
                os.close(block_r)
                info_w = block_r = -1
                self._connect_network(sid, template, _read_child_pid(info_r), procs, log)
                os.write(block_w, b"1")
            finally:
                for fd in (info_r, info_w, block_r, block_w):
                    if fd >= 0:
                        os.close(fd)

    def _connect_network(self, sandbox_id: str, template: Template, pid: int,
                         procs: list[Path], log: BinaryIO) -> None:
        """slirp4netns and the firewall for the sandbox whose first process is ``pid``."""
        allow = template.allow_rules()
        rules = firewall_rules(allow)
        (self._sandbox_dir(sandbox_id) / "firewall.nft").write_text(rules)
        host_loopback = any(r.address == HOST_LOOPBACK for r in allow)
        self._slirps[sandbox_id] = start_slirp(pid, procs, host_loopback=host_loopback,
                                               log=log.fileno())
        apply_firewall(pid, rules)

    def _launch_handed_over(self, sid: str, template: Template, uid: int,
                            procs: list[Path], layout: SandboxLayout, args: list[str],
                            program: bytes, seccomp_r: int, log: BinaryIO) -> None:
        """bwrap builds the sandbox around a holder; the zygote's fork brings sandboxd.

        The network (if any) is up before sandboxd is in, as with block_fd.
        """
        assert self._zygote is not None
        info_r, info_w = os.pipe()
        ready_r, ready_w = os.pipe()
        hold_r, hold_w = os.pipe()
        try:
            argv = launcher_argv(procs, uid, bwrap_argv(layout, HOLDER, sandbox_env(),
                                                        info_fd=info_w, seccomp_fd=seccomp_r))
            self._procs[sid] = launcher = subprocess.Popen(
                argv, stdin=hold_r, stdout=ready_w, stderr=log, start_new_session=True,
                pass_fds=(info_w, seccomp_r))
            for fd in (info_w, ready_w, hold_r):
                os.close(fd)
            info_w = ready_w = hold_r = -1
            pid = _read_child_pid(info_r)
            if template.network:
                self._connect_network(sid, template, pid, procs, log)
            readable, _, _ = select.select([ready_r], [], [], _READY_TIMEOUT_S)
            if not readable or not os.read(ready_r, 1):
                raise BackendError(f"the sandbox's holder did not start (bwrap status "
                                   f"{launcher.poll()})")
            self._zygote.spawn(
                holder_pid=pid, cgroup=sid, cgroup_procs=procs,
                argv=args, env=sandbox_env(), seccomp=program, inner_uid=INNER_UID,
                workspace="/workspace", log_fd=log.fileno(), hold_fd=hold_w)
        finally:
            for fd in (info_r, info_w, ready_r, ready_w, hold_r, hold_w):
                if fd >= 0:
                    os.close(fd)

    def _log_tail(self, sandbox_id: str, limit: int = 4000) -> str:
        """The last line of the sandbox's log for the caller; the full tail goes to our log.

        Callers see one line (the error), never a traceback.
        """
        try:
            data = (self._sandbox_dir(sandbox_id) / "sandbox.log").read_bytes()
        except OSError:
            return "(no log)"
        tail = data[-limit:].decode(errors="replace").strip()
        logger.error("sandbox %s failed to start; its log ends with:\n%s", sandbox_id, tail)
        lines = [line for line in tail.splitlines() if line.strip()]
        return lines[-1][:300] if lines else "(empty log)"

    async def _wait_ready(self, sandbox_id: str) -> None:
        sock = self.socket_path(sandbox_id)
        proc = self._procs.get(sandbox_id)
        deadline = time.monotonic() + _READY_TIMEOUT_S
        delay = 0.001
        while not sock.exists():
            if proc is not None and proc.poll() is not None:
                raise BackendError(
                    f"sandbox {sandbox_id} exited during start-up (status {proc.returncode}): "
                    f"{self._log_tail(sandbox_id)}"
                )
            if time.monotonic() > deadline:
                raise BackendError(f"sandbox {sandbox_id} did not start within "
                                   f"{_READY_TIMEOUT_S:.0f}s: {self._log_tail(sandbox_id)}")
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.003)  # a late look costs cold start directly
        if not await self.probe(sandbox_id, timeout=max(deadline - time.monotonic(), 0.1)):
            raise BackendError(f"sandbox {sandbox_id} does not answer health checks: "
                               f"{self._log_tail(sandbox_id)}")

    async def probe(self, sandbox_id: str, timeout: float = 2.0) -> bool:
        """True when the sandbox's sandboxd answers SERVING. Raises: nothing."""
        if not self.socket_path(sandbox_id).exists():
            return False
        async with grpc.aio.insecure_channel(self.target(sandbox_id)) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout,
                                         wait_for_ready=True)
            except grpc.aio.AioRpcError:
                return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    @property
    def zygote_pid(self) -> int | None:
        """The zygote's pid once it has served a start (for the bench's memory view)."""
        return self._zygote.pid if self._zygote is not None else None

    def pids(self, sandbox_id: str) -> list[int]:
        """Host pids of every process in the sandbox (a local-only view for tests)."""
        return self._cgroups.pids(sandbox_id)

    async def alive(self, sandbox_id: str) -> bool:
        """Whether the sandbox's cgroup still holds processes. Raises: nothing."""
        return bool(await asyncio.to_thread(self._cgroups.pids, sandbox_id))

    async def pause(self, sandbox_id: str) -> None:
        """Freeze the sandbox's cgroup.

        Raises:
            BackendError: the freezer did not take.
        """
        await asyncio.to_thread(self._cgroups.freeze, sandbox_id)

    async def resume(self, sandbox_id: str) -> None:
        """Thaw the sandbox's cgroup.

        Raises:
            BackendError: the freezer did not let go.
        """
        await asyncio.to_thread(self._cgroups.thaw, sandbox_id)

    async def destroy(self, sandbox_id: str) -> None:
        """Kill every process of the sandbox, then remove its cgroup and files.

        Raises:
            BackendError: the processes did not exit or the cgroup stayed busy.
        """
        await asyncio.to_thread(self._destroy, sandbox_id)

    def _destroy(self, sandbox_id: str) -> None:
        launcher = self._procs.pop(sandbox_id, None)
        if launcher is not None:
            # First, so nothing joins the cgroups after kill_all read them: a
            # launcher that has not joined yet would start the sandbox outside
            # every list kill_all reads. Once it is bwrap, it joined them all
            # before exec, so its children are in them and kill_all finds them.
            launcher.kill()
            launcher.wait(timeout=5)
        self._cgroups.kill_all(sandbox_id)
        slirp = self._slirps.pop(sandbox_id, None)
        if slirp is not None:
            try:
                slirp.wait(timeout=5)
            except subprocess.TimeoutExpired:
                slirp.kill()
                slirp.wait(timeout=5)
        self._cgroups.remove(sandbox_id)
        shutil.rmtree(self._sandbox_dir(sandbox_id), ignore_errors=True)

    async def close(self) -> None:
        """Stop the zygote; drop this service's cgroup parent when no sandbox is left.

        Raises: nothing."""
        if self._zygote is not None:
            await asyncio.to_thread(self._zygote.close)
        await asyncio.to_thread(self._cgroups.remove_parent)

    async def leftovers(self) -> set[str]:
        """Ids with a cgroup or a directory on this host. Raises: nothing."""
        def scan() -> set[str]:
            sb = self._state / "sb"
            dirs = {p.name for p in sb.iterdir()} if sb.is_dir() else set()
            return dirs | self._cgroups.names()

        return await asyncio.to_thread(scan)
