"""Networked templates: egress through slirp4netns, host loopback and private,
link-local and metadata ranges blocked unless allowlisted.

Blocking is proven only against host loopback (a server this test starts on
127.0.0.1); the other ranges are checked by reading the firewall the sandbox
was given, never by sending traffic to them.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sandbox_svc.local.backend import LocalBackend
from sandbox_svc.server import RunningService, build_server
from sandgate.sdk import AsyncSandbox

from .conftest import make_settings

CONNECT = ("python3 -c \"import socket, sys; s = socket.create_connection((sys.argv[1], "
           "int(sys.argv[2])), timeout=3); print(s.recv(16).decode())\" {host} {port}")


@pytest.fixture
def host_server() -> Iterator[tuple[socket.socket, int]]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.3)
        yield server, server.getsockname()[1]


@pytest.fixture
async def net_service(state_dir: Path, tmp_path: Path,
                      host_server: tuple[socket.socket, int]) -> AsyncIterator[RunningService]:
    _, port = host_server
    (tmp_path / "t.yaml").write_text(
        "templates:\n"
        "  - {name: net, network: true, pool_size: 0}\n"
        f"  - {{name: net-open, network: true, allow: ['host-loopback:{port}'], pool_size: 0}}\n")
    running = await build_server(make_settings(state_dir, templates_file=tmp_path / "t.yaml"))
    yield running
    await running.stop(grace=0.5)


def _sandbox_netns_pid(backend: LocalBackend, sandbox_id: str) -> int:
    host_ns = os.readlink("/proc/self/ns/net")
    for pid in backend.pids(sandbox_id):
        try:
            if os.readlink(f"/proc/{pid}/ns/net") != host_ns:
                return pid
        except OSError:
            continue
    raise AssertionError("no process of the sandbox is in its own network namespace")


async def test_a_networked_sandbox_gets_a_route_but_not_host_loopback(
        net_service: RunningService, host_server: tuple[socket.socket, int]) -> None:
    server, port = host_server
    sbx = await AsyncSandbox.create("net", target=net_service.address)
    route = await sbx.commands.run("cat /proc/net/route")
    assert "tap0" in route.stdout
    for host in ("10.0.2.2", "127.0.0.1"):
        result = await sbx.commands.run(CONNECT.format(host=host, port=port))
        assert result.exit_code != 0
        assert "ConnectionRefusedError" in result.stderr
    with pytest.raises(TimeoutError):
        server.accept()
    await sbx.kill()


async def test_an_allowlisted_host_port_is_reachable(
        net_service: RunningService, host_server: tuple[socket.socket, int]) -> None:
    server, port = host_server
    sbx = await AsyncSandbox.create("net-open", target=net_service.address)
    server.settimeout(10)

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"hello-host")

    answering = asyncio.create_task(asyncio.to_thread(answer))
    result = await sbx.commands.run(CONNECT.format(host="10.0.2.2", port=port))
    await answering
    assert result.stdout.strip() == "hello-host", result.stderr
    other = await sbx.commands.run(CONNECT.format(host="10.0.2.2", port=port + 1))
    assert other.exit_code != 0
    await sbx.kill()


async def test_the_firewall_rejects_private_link_local_and_metadata_ranges(
        net_service: RunningService) -> None:
    sbx = await AsyncSandbox.create("net", target=net_service.address)
    backend = net_service.manager.backend
    assert isinstance(backend, LocalBackend)
    pid = _sandbox_netns_pid(backend, sbx.sandbox_id)
    listed = await asyncio.to_thread(
        subprocess.run, ["nsenter", "-t", str(pid), "-n", "nft", "list", "ruleset"],
        capture_output=True, text=True, check=True)
    ruleset = listed.stdout
    for blocked in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
                    "100.64.0.0/10", "127.0.0.0/8"):
        assert blocked in ruleset
    assert "reject" in ruleset and 'oifname "lo" accept' in ruleset
    caps = await sbx.commands.run("grep CapEff /proc/self/status")
    assert caps.stdout.split()[1] == "0000000000000000"  # cannot change the rules
    await sbx.kill()


async def test_a_network_free_template_has_only_loopback(
        net_service: RunningService) -> None:
    sbx = await AsyncSandbox.create("base", target=net_service.address)
    devices = await sbx.commands.run("cat /proc/net/dev")
    assert "tap0" not in devices.stdout
    await sbx.kill()
