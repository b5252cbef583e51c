"""The bubblewrap command line of one sandbox (pure: no side effects).

Namespaces: user (uid/gid 65534 inside), mount, pid, net (only ``lo``), ipc,
uts, cgroup; no capabilities; no further user namespaces inside (bwrap's
``--disable-userns``, checked by ``--assert-userns-disabled``); every process
under a seccomp program when one is given. The root is a fresh tmpfs holding
read-only system paths, a few /etc files, the Python runtime of sandboxd, a
private /tmp and the sandbox's own writable /workspace; nothing else of the
host is visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "HOLDER",
    "INNER_UID",
    "NAMESPACES",
    "SANDBOX_RUN_DIR",
    "SandboxLayout",
    "bwrap_argv",
    "in_cgroups",
    "launcher_argv",
]

SANDBOX_RUN_DIR = "/run/sandgate"
SANDBOX_OOM_FILE = "/run/cgroup-oom"
SANDBOX_VENV = "/opt/sandgate/venv"
SANDBOX_SRC = "/opt/sandgate/src"
INNER_UID = 65534
NAMESPACES = ("user", "mount", "pid", "net", "ipc", "uts", "cgroup")
"""The namespaces every sandbox gets of its own (bwrap always unshares mount)."""

# /etc files programs commonly need; everything else of the host's /etc stays hidden.
_HOST_ETC = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives", "ssl",
    "ca-certificates", "ca-certificates.conf", "mime.types", "nsswitch.conf",
    "os-release", "debian_version", "fonts", "protocols", "services",
    "chromium", "chromium.d",  # Debian's chromium wrapper sources these
)
# The launcher shell: join each cgroup (argv up to "--"), then exec the rest.
_LAUNCHER = 'for f; do shift; [ "$f" = -- ] && break; echo $$ > "$f" || exit 125; done; exec "$@"'


@dataclass(frozen=True)
class SandboxLayout:
    """Host paths that make up one sandbox."""

    workspace: Path
    run_dir: Path
    etc_dir: Path
    """Synthetic passwd/group/hosts shared by all sandboxes."""
    venv: Path
    packages: tuple[Path, ...]
    """Source directories of our Python packages, bound under /opt/sandgate/src."""
    oom_file: Path | None = None
    rootfs: Path | None = None
    """A tree to take usr/ (and lib*/bin/sbin) from instead of the host's /."""
    resolv_conf: Path | None = None
    """Bound as /etc/resolv.conf when the sandbox has a network."""


def _system_binds(root: Path) -> list[str]:
    args = ["--ro-bind", str(root / "usr"), "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        path = root / name
        if path.is_symlink():
            args += ["--symlink", str(path.readlink()), f"/{name}"]
        elif path.is_dir():
            args += ["--ro-bind", str(path), f"/{name}"]
    return args


def bwrap_argv(layout: SandboxLayout, command: list[str], env: dict[str, str], *,
               info_fd: int | None = None, block_fd: int | None = None,
               seccomp_fd: int | None = None) -> list[str]:
    """bwrap plus its arguments, running ``command`` inside the sandbox.

    ``info_fd`` receives the sandbox's host pid; with ``block_fd`` the command
    waits until a byte arrives there (the network is configured first);
    ``seccomp_fd`` is read to its end for the BPF program every process runs under.
    """
    args = [
        "bwrap",
        "--unshare-user", "--uid", str(INNER_UID), "--gid", str(INNER_UID),
        "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup",
        "--hostname", "sandbox",
        "--new-session",
        "--cap-drop", "ALL",
        "--disable-userns", "--assert-userns-disabled",
    ]
    args += _system_binds(layout.rootfs or Path("/"))
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", "/etc"]
    for name in ("passwd", "group", "hosts", "hostname"):
        args += ["--ro-bind", str(layout.etc_dir / name), f"/etc/{name}"]
    etc_root = (layout.rootfs or Path("/")) / "etc"
    for name in _HOST_ETC:
        args += ["--ro-bind-try", str(etc_root / name), f"/etc/{name}"]
    if layout.resolv_conf is not None:
        args += ["--ro-bind", str(layout.resolv_conf), "/etc/resolv.conf"]
    args += ["--bind", str(layout.workspace), "/workspace"]
    args += ["--bind", str(layout.run_dir), SANDBOX_RUN_DIR]
    args += ["--ro-bind", str(layout.venv), SANDBOX_VENV]
    for package in layout.packages:
        args += ["--ro-bind", str(package), f"{SANDBOX_SRC}/{package.name}"]
    if layout.oom_file is not None:
        args += ["--ro-bind-try", str(layout.oom_file), SANDBOX_OOM_FILE]
    # The root tmpfs becomes read-only; /tmp and /workspace stay writable mounts.
    args += ["--remount-ro", "/"]
    args += ["--clearenv"]
    for key, value in sorted(env.items()):
        args += ["--setenv", key, value]
    if info_fd is not None:
        args += ["--info-fd", str(info_fd)]
    if block_fd is not None:
        args += ["--block-fd", str(block_fd)]
    if seccomp_fd is not None:
        args += ["--seccomp", str(seccomp_fd)]
    args += ["--chdir", "/workspace", "--"]
    return args + command


def in_cgroups(cgroup_procs: Sequence[Path], inner: list[str]) -> list[str]:
    """A command line that joins the cgroups (as the caller), then execs ``inner``."""
    return ["/bin/sh", "-c", _LAUNCHER, "sandgate-launch", *(str(p) for p in cgroup_procs),
            "--", *inner]


def launcher_argv(cgroup_procs: Sequence[Path], host_uid: int, inner: list[str]) -> list[str]:
    """Join the cgroups as root, drop to ``host_uid``, then exec ``inner`` (bwrap ...).

    bwrap then runs unprivileged: a process that ever left its namespaces
    would hold no privilege on the host.
    """
    return in_cgroups(cgroup_procs, [
        "setpriv", f"--reuid={host_uid}", f"--regid={host_uid}", "--clear-groups",
        "--no-new-privs", *inner])


def sandbox_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment sandboxd starts with inside the sandbox."""
    env = {
        "PATH": f"{SANDBOX_VENV}/bin:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/workspace",
        "LANG": "C.UTF-8",
        "PYTHONPATH": SANDBOX_SRC,
        "PYTHONDONTWRITEBYTECODE": "1",
        "SANDGATE_OOM_FILE": SANDBOX_OOM_FILE,
        "USER": "sandbox",
        # jupyter_client would otherwise create ~/.ipython, i.e. in the user's /workspace.
        "IPYTHONDIR": "/tmp/.ipython",
    }
    env.update(extra or {})
    return env


def sandboxd_args(*, browser_warm: bool = False, kernel_warm: bool = False) -> list[str]:
    """sandboxd's own arguments inside the sandbox; browser templates start Chromium
    at once so a pooled sandbox's first browser call pays no launch, and
    ``kernel_warm`` templates start the Python kernel while the sandbox waits in
    the pool."""
    return [
        "--listen", f"unix:{SANDBOX_RUN_DIR}/sandboxd.sock",
        "--workspace", "/workspace",
        "--token-file", f"{SANDBOX_RUN_DIR}/token",
        *(["--browser-warm"] if browser_warm else []),
        *(["--kernel-warm"] if kernel_warm else []),
    ]


def sandboxd_command(*, browser_warm: bool = False, kernel_warm: bool = False) -> list[str]:
    """sandboxd inside the sandbox, started afresh (see :func:`sandboxd_args`).

    ``-S -P``: no ``site`` work and no ``/workspace`` on ``sys.path`` (see
    sandbox_svc.sandboxd.venv); the commands and the kernel it starts run the
    venv's Python as usual."""
    return [f"{SANDBOX_VENV}/bin/python", "-S", "-P", "-m", "sandbox_svc.sandboxd",
            *sandboxd_args(browser_warm=browser_warm, kernel_warm=kernel_warm)]


HOLDER = ["/bin/sh", "-c", "printf . && read -r _"]
"""What bwrap runs when the zygote brings sandboxd (see sandbox_svc.local.handover):
it says it runs (a byte on stdout, so bwrap has built the sandbox), then holds
the sandbox open until its stdin, whose only writer is sandboxd, reaches EOF."""
