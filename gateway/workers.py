"""Several gateway processes on one MCP HTTP port (``SANDGATE_GATEWAY_WORKERS``).

The first process (worker 0) checks that the port is free, then binds one
``SO_REUSEPORT`` socket per worker on it, so the kernel spreads connections
evenly over the workers; it keeps its own socket and hands each other worker
(``python -m gateway --worker``) its socket and the settings. Worker 0 alone
serves the gRPC face (ToolGateway): a gRPC client (agent_svc) holds one
long-lived HTTP/2 connection, which the kernel would pin to one worker anyway.

Stateless MCP and the idempotent AcquireSandbox let any worker serve any
session: each worker binds a session's sandbox on its first call there, and
gets the same one. Legacy ``Mcp-Session-Id`` sessions would live in one worker's
memory, so settings refuse several workers unless they are off.

Each worker keeps its own bindings, so what one worker does to a session the
others learn at their next call for it: after ``sandbox_release`` (or a lost
sandbox) elsewhere, a worker's next call for that session reports the sandbox
gone and the one after binds the fresh one. A worker forgets an idle binding
without releasing it (another may be using the sandbox); sandbox_svc's idle
timeout reaps it. ``/metrics`` and ``/healthz`` (with ``worker_pid``) describe
the worker that answers.

Workers start in a session of their own (a terminal's Ctrl-C reaches worker 0
only, which stops them) and die with worker 0 (``PR_SET_PDEATHSIG``). A worker
that exits while the gateway runs is not restarted: the gateway stops and exits
non-zero, so the supervisor (systemd, Kubernetes) restarts all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence

from gateway.settings import GatewaySettings
from sandgate.service.assembly import ListenError

__all__ = [
    "READY_LINE",
    "WorkerExitedError",
    "Workers",
    "die_with_parent",
    "reuseport_sockets",
]

logger = logging.getLogger(__name__)

READY_LINE = "ready"
"""What a worker prints on stdout once it accepts connections."""
_START_S = 60.0
_STOP_S = 10.0
"""A worker's graceful stop takes up to ~3 s (uvicorn) plus closing its channels."""
_PR_SET_PDEATHSIG = 1


class WorkerExitedError(RuntimeError):
    """A gateway worker exited while the gateway was serving (or failed to start)."""


def _socket(family: socket.AddressFamily, *, reuseport: bool) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    return sock


def reuseport_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets bound to one port with SO_REUSEPORT, after checking it is free.

    SO_REUSEPORT alone would let the sockets join another server's group on a busy
    port; a plain bind first fails as any bind to a busy port does.

    Raises:
        ListenError: the port is in use or the address is not available here.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = _socket(family, reuseport=False)
    try:
        probe.bind((host, port))
        port = probe.getsockname()[1]
    except OSError as exc:
        raise ListenError(f"cannot listen on {host}:{port} for MCP HTTP: "
                          f"{exc.strerror or exc}") from exc
    finally:
        probe.close()
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = _socket(family, reuseport=True)
            sockets.append(sock)
            sock.bind((host, port))
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise ListenError(f"cannot listen on {host}:{port} for MCP HTTP: "
                          f"{exc.strerror or exc}") from exc
    return sockets


def die_with_parent(parent: int) -> None:
    """Get SIGTERM when ``parent`` (worker 0) dies, even if it is killed.

    Raises:
        WorkerExitedError: ``parent`` is already gone.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        raise WorkerExitedError("gateway worker 0 exited before this worker started")


class Workers:
    """The workers beyond worker 0: started with their sockets, watched, stopped."""

    def __init__(self) -> None:
        self._procs: list[asyncio.subprocess.Process] = []
        self._watchers: list[asyncio.Task[None]] = []
        self._stopping = False
        self.lost = asyncio.Event()
        """Set when a worker exits while the gateway runs."""
        self.lost_detail = ""

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    async def start(self, settings: GatewaySettings, sockets: Sequence[socket.socket]) -> None:
        """Start one worker per socket and wait until each accepts connections.

        Closes ``sockets`` here (each worker holds its own): a socket left open in this
        process would keep receiving its share of connections that nobody accepts.

        Raises:
            WorkerExitedError: a worker exited or did not get ready within a minute
                (the ones started are stopped).
        """
        config = settings.model_dump_json().encode()
        try:
            for sock in sockets:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "gateway", "--worker", str(sock.fileno()),
                    str(os.getpid()), stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE, pass_fds=(sock.fileno(),),
                    start_new_session=True)
                self._procs.append(proc)
                sock.close()
                assert proc.stdin is not None
                proc.stdin.write(config)  # the settings, keys included: not in argv or env
                await proc.stdin.drain()
                proc.stdin.close()
            async with asyncio.timeout(_START_S):
                for index, proc in enumerate(self._procs, start=1):
                    await self._ready(index, proc)
        except BaseException as exc:
            for sock in sockets:
                sock.close()
            await self.stop()
            if isinstance(exc, TimeoutError):
                raise WorkerExitedError(f"a gateway worker did not start within "
                                        f"{_START_S:g} s; see the log above") from None
            raise
        self._watchers = [asyncio.create_task(self._watch(i, p), name=f"gateway-worker-{i}")
                          for i, p in enumerate(self._procs, start=1)]
        logger.info("gateway workers started: pids %s", ", ".join(map(str, self.pids)))

    @staticmethod
    async def _ready(index: int, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        line = (await proc.stdout.readline()).decode().strip()
        if line != READY_LINE:
            code = await proc.wait()
            raise WorkerExitedError(f"gateway worker {index} (pid {proc.pid}) exited with code "
                                    f"{code} while starting; see the log above")

    async def _watch(self, index: int, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        await proc.stdout.read()  # drained, so a stray print can never block the worker
        code = await proc.wait()
        if self._stopping:
            return
        self.lost_detail = (f"gateway worker {index} (pid {proc.pid}) exited with code {code}; "
                            "stopping the gateway")
        logger.error("%s", self.lost_detail)
        self.lost.set()

    async def stop(self) -> None:
        """SIGTERM every worker (each drains its requests), SIGKILL any left after 10 s."""
        self._stopping = True
        for proc in self._procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(_STOP_S):
                for proc in self._procs:
                    await proc.wait()
        except TimeoutError:
            for proc in self._procs:
                if proc.returncode is None:
                    logger.warning("gateway worker pid %d did not stop in %g s; killing it",
                                   proc.pid, _STOP_S)
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
        for watcher in self._watchers:
            watcher.cancel()


def read_worker_settings(data: bytes) -> GatewaySettings:
    """The settings worker 0 sent (``GatewaySettings.model_dump_json``).

    Raises:
        ValueError: they do not parse.
    """
    return GatewaySettings(**json.loads(data))
