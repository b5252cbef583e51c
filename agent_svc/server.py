"""Serving an AgentApp: the composition of settings, auth, tasks, history, HTTP and gRPC.

:func:`start_agent_server` wires what :class:`AgentSettings` names into the app
(:meth:`AgentApp.configure`) and starts uvicorn (and the AgentService gRPC
server when a gRPC port is set) inside the running event loop, so tests bind
port 0 and stop it again; :func:`serve_forever` is the foreground form used by
``AgentApp.run`` and ``sandgate agent-server``, stopping gracefully on SIGINT
or SIGTERM. Without API keys the server binds loopback only and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from agent_svc.app import AgentApp
from agent_svc.services.session import InMemorySessionHistoryService, SessionHistoryService
from agent_svc.services.sqlite_backend import SQLiteSessionHistoryService
from agent_svc.settings import AgentSettings
from agent_svc.tasks.base import TaskRunner
from agent_svc.tasks.embedded import EmbeddedTaskRunner
from sandgate.service.assembly import serve_until_signal
from sandgate.service.binding import listen_host

__all__ = ["RunningAgentServer", "load_app", "serve_forever", "start_agent_server"]

logger = logging.getLogger("sandgate.agent")

_START_TIMEOUT_S = 120.0
"""Init handlers may load models; beyond this the start is reported as failed."""
_STOP_GRACE_S = 10.0


def load_app(spec: str) -> AgentApp:
    """The :class:`AgentApp` named ``module:attribute`` (the current directory is importable).

    Raises:
        ValueError: ``spec`` is malformed or does not name an AgentApp.
        ImportError: the module cannot be imported.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"--app must look like module:attribute (e.g. my_agent:app), not "
                         f"{spec!r}")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    module = importlib.import_module(module_name)
    app = getattr(module, attribute, None)
    if not isinstance(app, AgentApp):
        raise ValueError(f"{spec} is {type(app).__name__}, not an AgentApp")
    return app


def _history(settings: AgentSettings) -> SessionHistoryService | None:
    if settings.history == "none":
        return None
    if settings.history == "memory":
        return InMemorySessionHistoryService()
    if settings.history == "sqlite":
        return SQLiteSessionHistoryService(settings.state_dir / "agent.db")
    from agent_svc.services.redis_backend import RedisSessionHistoryService

    return RedisSessionHistoryService(settings.history)


def _task_runner(settings: AgentSettings) -> TaskRunner:
    if settings.task_broker:
        from agent_svc.tasks.celery_runner import CeleryTaskRunner

        return CeleryTaskRunner(settings.task_broker, settings.task_backend)
    return EmbeddedTaskRunner(settings.state_dir / "agent-tasks.db", settings.task_concurrency)


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the caller decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class RunningAgentServer:
    """A started agent server; :meth:`stop` it."""

    app: AgentApp
    http_url: str
    grpc_address: str | None
    keyed: bool
    _http: _Uvicorn
    _http_task: asyncio.Task[None]
    _stops: list[Callable[[float], Awaitable[None]]] = field(default_factory=list)

    async def stop(self, grace: float = _STOP_GRACE_S) -> None:
        """Stop gRPC, then HTTP (runs still going are cancelled, shutdown handlers run)."""
        for stop in reversed(self._stops):
            await stop(grace)
        self._http.should_exit = True
        done, _ = await asyncio.wait([self._http_task], timeout=grace)
        if not done:
            self._http.force_exit = True
            await asyncio.wait([self._http_task], timeout=grace)


async def start_agent_server(app: AgentApp, settings: AgentSettings) -> RunningAgentServer:
    """Configure ``app`` from ``settings`` and start serving it.

    Raises:
        RuntimeError: the app failed to start (its init handlers raised, the port is busy).
        ValueError: malformed API keys.
        ListenError: the gRPC port is busy.
    """
    authenticator = settings.authenticator()
    keyed = not authenticator.open
    app.configure(authenticator=authenticator,
                  task_runner=_task_runner(settings) if app.tasks else None,
                  session_history=_history(settings),
                  max_request_bytes=settings.max_request_bytes)
    host = listen_host(settings.host, keyed=keyed, server="agent server",
                       keys_hint="SANDGATE_API_KEYS or BEARER_TOKEN")
    config = uvicorn.Config(app, host=host, port=settings.port, lifespan="on", ws="none",
                            log_level="warning", access_log=False, server_header=False,
                            proxy_headers=False,
                            timeout_graceful_shutdown=int(_STOP_GRACE_S))
    server = _Uvicorn(config)
    task = asyncio.get_running_loop().create_task(server.serve(), name="agent-http")
    async with asyncio.timeout(_START_TIMEOUT_S):
        while not server.started:
            if task.done():
                break
            await asyncio.sleep(0.005)
    if not server.started:
        if not task.done():
            server.should_exit = True
            await asyncio.wait([task], timeout=_STOP_GRACE_S)
        raise RuntimeError("the agent server failed to start (see the log above)")
    port = server.servers[0].sockets[0].getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    running = RunningAgentServer(app, f"http://{shown}:{port}", None, keyed, server, task)
    if settings.grpc_port is not None:
        from agent_svc.grpc_server import start_grpc

        try:
            address, stop = await start_grpc(app, settings, host, authenticator)
        except BaseException:
            await running.stop()
            raise
        running.grpc_address = address
        running._stops.append(stop)
    return running


async def serve_forever(app: AgentApp, settings: AgentSettings) -> int:
    """Serve until SIGINT or SIGTERM, then stop gracefully; answers an exit status."""
    running = await start_agent_server(app, settings)
    auth = "bearer keys" if running.keyed else "no API key: loopback only"
    print(f"sandgate agent: {app.app_name} at {running.http_url}{app.endpoint_path}  [{auth}]",
          flush=True)
    if running.grpc_address:
        print(f"sandgate agent: AgentService (gRPC) at {running.grpc_address}", flush=True)
    await serve_until_signal(running.stop)
    return 0
