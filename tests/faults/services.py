"""Sandgate services as separate processes, as Kubernetes runs them.

``sandgate sandbox-server`` and ``sandgate gateway-server`` each run in their own
process, configured only through the environment, so a test can SIGKILL one and
start it again on the same port and state dir.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import grpc
import httpx2
from grpc_health.v1 import health_pb2, health_pb2_grpc

__all__ = ["ROOT", "ServiceProcess", "free_port", "service_env"]

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60.0
_PR_SET_PDEATHSIG = 1
STOP_TIMEOUT_S = 60.0

# Keys the services read besides SANDGATE_*: AgentScope-compatible aliases.
_SEED_KEYS = frozenset({"HOST", "PORT", "POOL_SIZE", "DEFAULT_SANDBOX_TYPE", "BEARER_TOKEN",
                        "DEFAULT_MOUNT_DIR", "AUTO_CLEANUP", "CONTAINER_DEPLOYMENT",
                        "CONTAINER_PREFIX_KEY", "REDIS_ENABLED", "K8S_NAMESPACE"})


def _stop_with_parent() -> None:
    """In the child: SIGTERM when the test process dies (a watchdog exit, say), so a
    service never outlives its test; SIGTERM is the graceful stop that deletes sandboxes."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(**settings: str) -> dict[str, str]:
    """This process's environment without any Sandgate setting, plus ``settings``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SANDGATE_") and k not in _SEED_KEYS}
    env.update(settings)
    return env


class ServiceProcess:
    """One ``sandgate <command>`` process that can be killed and started again.

    Args:
        command: ``sandbox-server`` or ``gateway-server``.
        env: its whole environment.
        log: file its output is appended to (read it when a test fails).
        address: where clients reach it (``HOST:PORT`` or a URL).
        health: ``grpc:HOST:PORT`` (grpc.health.v1) or an HTTP URL answering 200 when ready.
    """

    def __init__(self, command: str, env: Mapping[str, str], log: Path, *, address: str,
                 health: str) -> None:
        self.command = command
        self.address = address
        self._env = dict(env)
        self._log = log
        self._health = health
        self._proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    async def start(self) -> None:
        """Start the process and wait until it answers its health check."""
        assert not self.running, "already running"
        self._spawn()
        await self._wait_ready()

    def _spawn(self) -> None:
        self.starts += 1
        with self._log.open("ab") as log:
            log.write(f"\n===== start {self.starts} of {self.command}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "sandgate.cli.main", self.command], cwd=ROOT,
                env=self._env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                preexec_fn=_stop_with_parent)

    async def _wait_ready(self) -> None:
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                while not await self._healthy():
                    assert self._proc is not None
                    if self._proc.poll() is not None:
                        raise RuntimeError(f"{self.command} exited with {self._proc.returncode}"
                                           f" during start-up:\n{self.log_tail()}")
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise RuntimeError(f"{self.command} was not ready within {READY_TIMEOUT_S:.0f} s:"
                               f"\n{self.log_tail()}") from None

    async def _healthy(self) -> bool:
        if self._health.startswith("grpc:"):
            async with grpc.aio.insecure_channel(self._health[5:]) as channel:
                try:
                    reply = await health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(), timeout=1.0)
                except grpc.aio.AioRpcError:
                    return False
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
        async with httpx2.AsyncClient(timeout=1.0) as http:
            try:
                return (await http.get(self._health)).status_code == 200
            except httpx2.HTTPError:
                return False

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind runs."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGKILL)
        self._proc.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> int | None:
        """SIGTERM and wait for the graceful stop; the exit status (None if not running)."""
        if self._proc is None or self._proc.poll() is not None:
            return None
        self._proc.send_signal(signal.SIGTERM)
        try:
            return self._proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)
            raise

    def log_tail(self, limit: int = 3000) -> str:
        try:
            return self._log.read_bytes()[-limit:].decode(errors="replace")
        except OSError:
            return "(no log)"
