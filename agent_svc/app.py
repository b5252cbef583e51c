"""``AgentApp``: an agent as a streaming HTTP service (AgentScope Runtime's API).

::

    app = AgentApp(app_name="Friday", app_description="A helpful assistant")

    @app.init
    async def init(self): ...                       # once, before serving

    @app.query(framework="agentscope")              # or None: msgs are our Messages
    async def query_func(self, msgs, request: AgentRequest = None, **kwargs):
        yield "Hello"                               # str | Message | (Message, last)

    @app.endpoint("/hello", methods=["GET"])
    def hello(): return {"msg": "hi"}               # generators stream SSE

    @app.task("/longjob", queue="celery")
    def heavy(data): return {"result": data["x"] ** 2}

    app.run(host="127.0.0.1", port=8090)            # or: sandgate agent-server --app mod:app

``AgentApp`` is a FastAPI application (native ``@app.get`` routes, ``app.state``
and ``lifespan=`` work as in FastAPI). Handlers registered with ``init``,
``shutdown`` and ``query`` receive the app as ``self``. Serving wires in what
the settings name (:meth:`configure`): bearer keys, the task runner, and a
session history that records every run, for an app that brings none.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

from fastapi import FastAPI
from opentelemetry.trace import TracerProvider
from starlette.types import Receive, Scope, Send

from agent_svc.auth import BearerAuthMiddleware
from agent_svc.endpoints import endpoint_handler
from agent_svc.errors import NotConfiguredError, TaskNotFoundError
from agent_svc.process import handle_process
from agent_svc.protocol import AgentRequest, Message, Response
from agent_svc.routes import install_routes
from agent_svc.runs import RunRegistry
from agent_svc.services.session import Session, SessionHistoryService
from agent_svc.tasks.base import TaskRunner, TaskSpec
from agent_svc.telemetry import tracer_for
from sandgate.service.keys import DEFAULT_TENANT, Authenticator

__all__ = ["FRAMEWORKS", "AgentApp"]

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
FRAMEWORKS = (None, "sandgate", "agentscope")
"""``query(framework=...)`` values: ``None``/``"sandgate"`` hand the query function our
``Message`` objects; ``"agentscope"`` hands it agentscope ``Msg`` objects and accepts
them back."""


async def _call(func: Callable[..., Any], *args: Any) -> Any:
    if inspect.iscoroutinefunction(func):
        return await func(*args)
    return await asyncio.to_thread(func, *args)


class AgentApp(FastAPI):
    """An agent service: ``/process`` for the query function, probes, endpoints, tasks.

    Args:
        app_name: the service's title (OpenAPI, ``GET /``).
        app_description: what it does.
        endpoint_path: where the query function answers (``/process``).
        lifespan: a FastAPI lifespan, entered after the ``init`` handlers.
        before_start: called with the app before serving (AgentScope Runtime's hook).
        after_finish: called with the app after serving.
        session_history: records every run's input and output messages per session.
        task_runner: runs ``@task`` functions; the server's settings choose one otherwise.
        tracer_provider: where ``agent.run`` spans go (default: the global provider).
        **kwargs: passed to FastAPI.

    Raises:
        ValueError: from :meth:`query`, for a framework it does not know.
    """

    def __init__(self, *, app_name: str = "Sandgate Agent", app_description: str = "",
                 endpoint_path: str = "/process",
                 lifespan: Callable[[Any], AbstractAsyncContextManager[Any]] | None = None,
                 before_start: Callable[..., Any] | None = None,
                 after_finish: Callable[..., Any] | None = None,
                 session_history: SessionHistoryService | None = None,
                 task_runner: TaskRunner | None = None,
                 tracer_provider: TracerProvider | None = None, **kwargs: Any) -> None:
        super().__init__(title=app_name, description=app_description,
                         lifespan=self._lifespan, **kwargs)
        self.app_name = app_name
        self.app_description = app_description
        self.endpoint_path = endpoint_path
        self.session_history = session_history
        self.task_runner = task_runner
        self.runs = RunRegistry(tracer_for(tracer_provider), on_finish=self.record)
        self.max_request_bytes = 4 * 1024 * 1024
        """Largest ``/process`` body accepted (HTTP 413 beyond)."""
        self.tasks: dict[str, TaskSpec] = {}
        self.ready = False
        self._user_lifespan = lifespan
        self._before_start = before_start
        self._after_finish = after_finish
        self._init_handlers: list[Callable[..., Any]] = []
        self._shutdown_handlers: list[Callable[..., Any]] = []
        self._readiness: dict[str, Callable[[], Any]] = {}
        self._query_handler: Callable[..., Any] | None = None
        self._framework: str | None = None
        self._configured = False
        self.authenticator: Authenticator | None = None
        """Checks bearer keys when the server configured some (None: everyone is let in)."""
        install_routes(self)

    # --- decorators ---------------------------------------------------------------

    def init(self, func: F) -> F:
        """Register a start-up handler ``func(self)`` (sync or async); runs before serving."""
        self._init_handlers.append(func)
        return func

    def shutdown(self, func: F) -> F:
        """Register a shutdown handler ``func(self)``; runs after the last request."""
        self._shutdown_handlers.append(func)
        return func

    def query(self, framework: str | None = None) -> Callable[[F], F]:
        """Register the query function ``func(self, msgs, request=None, **kwargs)``.

        It is an async generator yielding ``str`` text deltas, complete ``Message``
        objects or ``(Message, last)`` pairs (agentscope ``Msg`` with
        ``framework="agentscope"``), or a coroutine returning one of those.

        Raises:
            ValueError: ``framework`` is not one of :data:`FRAMEWORKS`.
        """
        if framework not in FRAMEWORKS:
            raise ValueError(f"framework must be one of {', '.join(map(repr, FRAMEWORKS))}; "
                             f"got {framework!r}")

        def decorator(func: F) -> F:
            self._query_handler = func
            self._framework = framework
            return func

        return decorator

    def endpoint(self, path: str, methods: Sequence[str] | None = None) -> Callable[[F], F]:
        """Register a custom endpoint (default method POST); generators stream SSE."""
        def decorator(func: F) -> F:
            self.add_api_route(path, endpoint_handler(func), methods=list(methods or ["POST"]),
                               tags=["custom"], response_model=None)
            return func

        return decorator

    def task(self, path: str, queue: str = "celery", idempotent: bool = False
             ) -> Callable[[F], F]:
        """Register a background task: ``POST path`` submits, ``GET path/{task_id}`` polls.

        Args:
            path: where it is submitted; also its name.
            queue: the Celery queue (ignored by the embedded queue).
            idempotent: safe to run again if the process stopped while it ran.
        """
        def decorator(func: F) -> F:
            self.tasks[path] = TaskSpec(path, func, queue, idempotent)
            from agent_svc.routes import install_task_routes

            install_task_routes(self, path)
            return func

        return decorator

    def readiness_check(self, func: F) -> F:
        """Register ``func()`` (sync or async, answering bool): ``/readiness`` is 200 only
        when every check answers true (e.g. the tool gateway answers)."""
        self._readiness[getattr(func, "__name__", f"check{len(self._readiness)}")] = func
        return func

    # --- running ------------------------------------------------------------------

    def configure(self, *, authenticator: Authenticator | None = None,
                  task_runner: TaskRunner | None = None,
                  session_history: SessionHistoryService | None = None,
                  max_request_bytes: int | None = None) -> None:
        """Wire in what serving needs; called once, before the server starts.

        What the app was constructed with wins over ``task_runner`` and
        ``session_history`` (those are the server's defaults).
        """
        if self._configured:
            return
        self._configured = True
        if authenticator is not None and not authenticator.open:
            self.authenticator = authenticator
            self.add_middleware(BearerAuthMiddleware, authenticator=authenticator)
        if self.task_runner is None and task_runner is not None:
            self.task_runner = task_runner
        if self.session_history is None and session_history is not None:
            self.session_history = session_history
        if max_request_bytes is not None:
            self.max_request_bytes = max_request_bytes

    def run(self, host: str = "127.0.0.1", port: int = 8090, **settings: Any) -> None:
        """Serve the app in the foreground until SIGINT or SIGTERM.

        Other keyword arguments override :class:`AgentSettings` fields (read from
        the ``SANDGATE_*`` environment otherwise), e.g. ``grpc_port=None``.
        """
        from agent_svc.server import serve_forever
        from agent_svc.settings import AgentSettings

        config = AgentSettings.load().model_copy(update={"host": host, "port": port, **settings})
        asyncio.run(serve_forever(self, config))

    async def check_ready(self) -> dict[str, bool]:
        """Each readiness check's answer (a failing or raising check answers false)."""
        answers: dict[str, bool] = {}
        for name, check in self._readiness.items():
            try:
                answers[name] = bool(await _call(check))
            except Exception:
                logger.warning("readiness check %s raised", name, exc_info=True)
                answers[name] = False
        return answers

    @asynccontextmanager
    async def _lifespan(self, _: FastAPI) -> AsyncIterator[Any]:
        stops: list[Callable[[], Awaitable[None]]] = []
        try:
            if self.session_history is not None:
                await self.session_history.start()
                stops.append(self.session_history.stop)
            if self.task_runner is not None:
                await self.task_runner.start(self.tasks)
                stops.append(self.task_runner.stop)
            if self._before_start is not None:
                await _call(self._before_start, self)
            for handler in self._init_handlers:
                await _call(handler, self)
            if self._user_lifespan is not None:
                async with self._user_lifespan(self) as state:
                    self.ready = True
                    yield state
            else:
                self.ready = True
                yield None
        finally:
            self.ready = False
            await self.runs.cancel_all()
            hooks = [*self._shutdown_handlers, *filter(None, [self._after_finish])]
            for hook in hooks:
                try:
                    await _call(hook, self)
                except Exception:
                    logger.exception("shutdown handler %s failed", hook)
            for stop in reversed(stops):
                try:
                    await stop()
                except Exception:
                    logger.exception("stopping %s failed", stop)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # POST /process, the hot path, skips FastAPI's stack (see agent_svc.process).
        if (scope["type"] == "http" and scope["path"] == self.endpoint_path
                and scope["method"] == "POST"):
            await handle_process(self, scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    # --- what the routes call -------------------------------------------------------

    @property
    def has_query(self) -> bool:
        return self._query_handler is not None

    async def query_stream(self, request: AgentRequest) -> AsyncIterator[object]:
        """Call the query function for ``request`` and yield what it yields.

        Raises:
            NotConfiguredError: no query function is registered.
        """
        handler = self._query_handler
        if handler is None:
            raise NotConfiguredError("this app has no query function (@app.query)")
        if self._framework == "agentscope":
            from agent_svc.adapters.agentscope import adapt_stream, to_agentscope

            result = handler(self, to_agentscope(request.input), request=request)
            async for item in adapt_stream(_items(result)):
                yield item
        else:
            async for item in _items(handler(self, list(request.input), request=request)):
                yield item

    async def record(self, tenant: str, request: AgentRequest, response: Response) -> None:
        """Append the run's input and output to the session history, if there is one
        (under the request's tenant-qualified ``user_id``)."""
        history = self.session_history
        if history is None or request.session_id is None:
            return
        session = Session(id=request.session_id, user_id=request.user_id or request.session_id)
        messages: list[Message] = [*request.input, *(response.output or ())]
        await history.append_message(session, messages)

    async def submit_task(self, name: str, payload: Any) -> str:
        """Queue the task registered at ``name``.

        Raises:
            NotConfiguredError: the app is served without a task runner.
            TaskNotFoundError: no task at ``name``.
        """
        if name not in self.tasks:
            raise TaskNotFoundError(f"no task is registered at {name!r}")
        if self.task_runner is None:
            raise NotConfiguredError("this app is served without a task runner")
        return await self.task_runner.submit(name, payload)

    async def stop_chat(self, user_id: str | None = None, session_id: str = "") -> None:
        """Interrupt the run of ``session_id`` (AgentScope Runtime's name; the default
        tenant's session).

        Raises:
            RunNotFoundError: that session has no run in progress.
        """
        self.runs.cancel(DEFAULT_TENANT, session_id)


async def _items(result: Any) -> AsyncIterator[object]:
    """What a query function produced, as one async iterator."""
    if inspect.isasyncgen(result):
        async for item in result:
            yield item
        return
    if inspect.isawaitable(result):
        result = await result
    if result is None:
        return
    if isinstance(result, list):
        for item in result:
            yield item
        return
    yield result

