"""User-mode egress for templates that allow network (slirp4netns + nftables).

A sandbox always has its own network namespace. With egress allowed,
slirp4netns (joined to the sandbox's cgroups, so delete kills it too) gives it
``tap0`` with a default route through a user-mode TCP/IP stack, and an nftables
table installed from the host side, before any sandbox code runs, rejects
host loopback (slirp's 10.0.2.2), private, shared (CGNAT), link-local and
metadata ranges (169.254.169.254, 100.100.100.200). Allowlist entries
(``HOST:PORT``, where HOST is an IPv4 address or ``host-loopback``) are
accepted before those rejections. The sandbox holds no capability over its
namespace, so it cannot change the rules.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from sandbox_svc.errors import BackendError
from sandbox_svc.local.bwrap import in_cgroups
from sandbox_svc.templates import AllowRule

__all__ = [
    "BLOCKED_RANGES",
    "apply_firewall",
    "firewall_rules",
    "missing_network_tools",
    "start_slirp",
]

SLIRP_DNS = "10.0.2.3"
BLOCKED_RANGES = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4",
    "240.0.0.0/4",
)
BLOCKED_RANGES_V6 = ("::1/128", "fc00::/7", "fe80::/10", "ff00::/8")
_READY_TIMEOUT_S = 5.0


def firewall_rules(allow: Sequence[AllowRule]) -> str:
    """The nftables ruleset installed in a networked sandbox's namespace."""
    accepts = "".join(f"    ip daddr {rule.address} tcp dport {rule.port} accept\n"
                      for rule in allow)
    return (
        "table inet sandgate {\n"
        "  chain output {\n"
        "    type filter hook output priority 0; policy accept;\n"
        '    oifname "lo" accept\n'
        f"    ip daddr {SLIRP_DNS} udp dport 53 accept\n"
        f"    ip daddr {SLIRP_DNS} tcp dport 53 accept\n"
        f"{accepts}"
        f"    ip daddr {{ {', '.join(BLOCKED_RANGES)} }} reject\n"
        f"    ip6 daddr {{ {', '.join(BLOCKED_RANGES_V6)} }} reject\n"
        "  }\n"
        "}\n"
    )


def wait_loopback_up(sandbox_pid: int, timeout: float = _READY_TIMEOUT_S) -> None:
    """Wait until bwrap has brought up the sandbox's ``lo``.

    bwrap configures ``lo`` over netlink after it reports the sandbox's pid;
    slirp4netns configuring ``tap0`` at the same moment makes bwrap fail
    ("loopback: Failed RTM_NEWADDR"). An interface that is up has joined the
    all-hosts multicast group, so it is listed in the namespace's net/igmp.
    """
    igmp = Path(f"/proc/{sandbox_pid}/net/igmp")
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        try:
            if any(line.split()[1:2] == ["lo"] for line in igmp.read_text().splitlines()[1:]
                   if not line.startswith("\t")):
                return
        except OSError as exc:
            raise BackendError(f"the sandbox exited while starting: {exc.strerror}") from exc
        if time.monotonic() > deadline:
            raise BackendError(f"the sandbox's loopback did not come up within {timeout:.0f}s")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def start_slirp(sandbox_pid: int, cgroup_procs: Sequence[Path], *,
                host_loopback: bool, log: int) -> subprocess.Popen[bytes]:
    """Attach slirp4netns to the sandbox's network namespace; return once configured."""
    wait_loopback_up(sandbox_pid)
    ready_r, ready_w = os.pipe()
    # slirp4netns joins the sandbox's cgroups: deleting the sandbox kills it too.
    argv = in_cgroups(cgroup_procs, [
        "slirp4netns", "--configure", "--mtu=65520", "--enable-seccomp",
        f"--ready-fd={ready_w}", "--netns-type=path",
        *([] if host_loopback else ["--disable-host-loopback"]),
        f"/proc/{sandbox_pid}/ns/net", "tap0",
    ])
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                pass_fds=[ready_w], start_new_session=True)
    finally:
        os.close(ready_w)
    try:
        readable, _, _ = select.select([ready_r], [], [], _READY_TIMEOUT_S)
        ready = os.read(ready_r, 1) if readable else b""
    finally:
        os.close(ready_r)
    if ready != b"1":
        proc.kill()
        proc.wait(timeout=5)
        raise BackendError("slirp4netns did not configure the sandbox network "
                           f"within {_READY_TIMEOUT_S:.0f}s (see sandbox.log)")
    return proc


def missing_network_tools() -> list[str]:
    """Debian packages networked sandboxes need that this host lacks."""
    needed = {"slirp4netns": "slirp4netns", "nft": "nftables", "nsenter": "util-linux"}
    return sorted({pkg for tool, pkg in needed.items() if _which(tool) is None})


def _which(tool: str) -> str | None:
    # nft lives in /usr/sbin, which a non-login PATH may lack.
    return shutil.which(tool, path=f"{os.environ.get('PATH', os.defpath)}:/usr/sbin:/sbin")


def apply_firewall(sandbox_pid: int, rules: str) -> None:
    nft = _which("nft") or "nft"
    result = subprocess.run(["nsenter", "-t", str(sandbox_pid), "-n", nft, "-f", "-"],
                            input=rules.encode(), capture_output=True, timeout=10)
    if result.returncode != 0:
        raise BackendError(f"could not install the sandbox firewall: "
                           f"{result.stderr.decode(errors='replace').strip()}")
