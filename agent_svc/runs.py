"""Runs of a query function: one at a time per session, cancellable, traced.

A run is reserved for its session before any byte is sent (so a second run of
the same session is refused with :class:`SessionBusyError`, HTTP 409, and never
interleaves), then produced by a task of its own that feeds a bounded queue the
response stream reads. Cancelling a run (``POST /process/cancel``) cancels that
task: the query function sees ``asyncio.CancelledError`` at its current
``await`` (it may clean up and re-raise) and the stream ends ``canceled``. A
client that goes away also cancels its run. Runs of different sessions are
independent.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.context import Context

from agent_svc.errors import RunNotFoundError, SessionBusyError
from agent_svc.protocol import AgentRequest, ErrorInfo, Response
from agent_svc.stream import Event, StreamBuilder
from sandgate.service.keys import DEFAULT_TENANT

__all__ = ["QueryStream", "Run", "RunRegistry", "normalized", "tenant_user"]

logger = logging.getLogger(__name__)

QueryStream = Callable[[AgentRequest], AsyncIterator[object]]
"""Starts the app's query function for a request: its yields, framework-adapted."""
OnFinish = Callable[[str, AgentRequest, Response], Awaitable[None]]
"""Called with a run's tenant, request and final response (to record the session history)."""

_QUEUE_BATCHES = 64
"""Batches of events a run may produce ahead of a slow client (back pressure)."""
_CLEANUP_S = 10.0
"""How long a cancelled run's query function may take to clean up before the
session is released anyway."""
_MAX_ERROR_CHARS = 500


def tenant_user(tenant: str, user_id: str) -> str:
    """A user id qualified by its tenant: as given for the ``default`` tenant (a server
    without keys, or its service key), ``<tenant>:<user_id>`` for the others, so that
    tenants never share a user, a session history or a state."""
    if tenant == DEFAULT_TENANT or user_id.startswith(f"{tenant}:"):
        return user_id
    return f"{tenant}:{user_id}"


def normalized(request: AgentRequest, tenant: str = DEFAULT_TENANT) -> AgentRequest:
    """The request as the query function sees it: a generated ``session_id`` when it
    has none, ``user_id`` defaulting to the session id (as AgentScope Runtime does),
    qualified by the tenant (:func:`tenant_user`)."""
    session_id = request.session_id or str(uuid.uuid4())
    user_id = tenant_user(tenant, request.user_id or session_id)
    if request.session_id == session_id and request.user_id == user_id:
        return request
    return request.model_copy(update={"session_id": session_id, "user_id": user_id})


def _code_of(exc: BaseException) -> str | None:
    """The exception's own stable ``code`` (a non-empty str attribute), if it has one."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, str) and code else None


def _error_of(exc: BaseException) -> ErrorInfo:
    """The run's error: the exception's own ``code`` and message (an agent's domain
    error, written for the client), else ``agent_error`` with its type and message."""
    code = _code_of(exc)
    if code is not None and str(exc):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if len(text) > _MAX_ERROR_CHARS:
        text = text[:_MAX_ERROR_CHARS] + "..."
    return ErrorInfo(code=code or "agent_error", message=text)


@dataclass(frozen=True)
class _Key:
    tenant: str
    session_id: str


class Run:
    """One run of the query function; iterate :meth:`events` once, then :meth:`close`."""

    def __init__(self, registry: RunRegistry, key: _Key, request: AgentRequest,
                 query: QueryStream, tracer: trace.Tracer, parent: Context | None,
                 on_finish: OnFinish | None) -> None:
        self.request = request
        self.builder = StreamBuilder(request, key.session_id)
        self._registry = registry
        self._key = key
        self._query = query
        self._tracer = tracer
        self._parent = parent
        self._on_finish = on_finish
        self._queue: asyncio.Queue[list[Event] | None] = asyncio.Queue()
        self._room = asyncio.Semaphore(_QUEUE_BATCHES)
        self._task: asyncio.Task[None] | None = None
        self.cancel_requested = False
        self.final: Response | None = None

    @property
    def session_id(self) -> str:
        return self._key.session_id

    async def events(self) -> AsyncIterator[Event]:
        """The run's events, from ``response(created)`` to its final response."""
        async for batch in self.batches():
            for event in batch:
                yield event

    async def batches(self) -> AsyncIterator[list[Event]]:
        """The run's events in batches: what was produced since the last batch was taken."""
        if self.cancel_requested:
            # Cancelled before it started: there is no query function to interrupt.
            self._finish(self.builder.start() + self.builder.cancel())
        else:
            self._task = asyncio.get_running_loop().create_task(
                self._produce(), name=f"agent-run-{self._key.session_id}")
        queue = self._queue
        while (batch := await queue.get()) is not None:
            self._room.release()
            ended = False
            # Whatever else is ready goes out with it: fewer, larger writes.
            while not queue.empty():
                more = queue.get_nowait()
                if more is None:
                    ended = True
                    break
                self._room.release()
                batch = batch + more
            yield batch
            if ended:
                return

    async def result(self) -> Response:
        """Run to the end and answer the final response (for ``stream: false``)."""
        async for _ in self.events():
            pass
        assert self.final is not None
        return self.final

    def cancel(self) -> None:
        """Interrupt the query function; the stream ends ``canceled``."""
        self.cancel_requested = True
        if self._task is not None:
            self._task.cancel()

    def abandon(self) -> None:
        """Stop the query function because nobody reads the run any more."""
        if self._task is not None:
            self._task.cancel()

    async def close(self) -> None:
        """Stop the run if it still goes (its client left) and free its session."""
        try:
            task = self._task
            if task is not None and not task.done():
                if self.final is None:
                    task.cancel()
                # A finished run may still be recording its session history: the
                # session is freed only after that, so histories never interleave.
                await asyncio.wait([task], timeout=_CLEANUP_S)
        finally:
            self._registry.release(self._key, self)

    async def _produce(self) -> None:
        request = self.request
        final: list[Event] | None = None
        self._queue.put_nowait(self.builder.start())
        try:
            with self._tracer.start_as_current_span("agent.run", context=self._parent,
                                                    attributes={
                    "sandgate.session_id": self._key.session_id,
                    "sandgate.user_id": request.user_id or "",
                    "sandgate.tenant": self._key.tenant,
                    "sandgate.response_id": self.builder.response_id}) as span:
                try:
                    async for item in self._query(request):
                        await self._room.acquire()
                        self._queue.put_nowait(self.builder.feed(item))
                    final = self.builder.complete()
                except asyncio.CancelledError:
                    if not self.cancel_requested:
                        raise
                    final = self.builder.cancel()
                except Exception as exc:
                    error = _error_of(exc)
                    if _code_of(exc) is None:
                        logger.exception("query function failed (session %s, response %s)",
                                         self._key.session_id, self.builder.response_id)
                    else:
                        # An error the agent expects (no model, model down): no stack.
                        logger.warning("run failed (session %s, response %s): %s: %s",
                                       self._key.session_id, self.builder.response_id,
                                       error.code, error.message)
                    span.set_status(trace.StatusCode.ERROR, error.message)
                    final = self.builder.fail(error)
                span.set_attribute("sandgate.run_status", str(final[-1].status))
        finally:
            # Always end the stream, even when the run was cancelled from outside
            # (client gone, shutdown), so that no reader waits forever.
            self._finish(final if final is not None else self.builder.cancel())
        # After the client has its last event: record the run.
        await self._finished(final)

    async def _finished(self, final: list[Event]) -> None:
        last = final[-1]
        if self._on_finish is None or not isinstance(last, Response):
            return
        try:
            await self._on_finish(self._key.tenant, self.request, last)
        except Exception:
            logger.exception("recording the run of session %s failed", self._key.session_id)

    def _finish(self, final: list[Event]) -> None:
        last = final[-1]
        assert isinstance(last, Response)
        self.final = last
        self._queue.put_nowait(final)
        self._queue.put_nowait(None)


class RunRegistry:
    """The runs in progress, one per (tenant, session)."""

    def __init__(self, tracer: trace.Tracer | None = None,
                 on_finish: OnFinish | None = None) -> None:
        self._runs: dict[_Key, Run] = {}
        self._tracer = tracer or trace.get_tracer("sandgate.agent")
        self._on_finish = on_finish

    def __len__(self) -> int:
        return len(self._runs)

    def open(self, tenant: str, request: AgentRequest, query: QueryStream,
             parent: Context | None = None) -> Run:
        """Reserve the request's session for a new run.

        Args:
            tenant: the caller's tenant (sessions of different tenants never meet).
            request: a :func:`normalized` request.
            query: starts the query function.
            parent: the caller's trace context, if it sent one.

        Raises:
            SessionBusyError: a run of this session is in progress.
        """
        assert request.session_id is not None
        key = _Key(tenant, request.session_id)
        if key in self._runs:
            raise SessionBusyError(
                f"session {request.session_id!r} already has a run in progress; wait for it "
                "to finish, cancel it with POST /process/cancel, or use another session_id")
        run = Run(self, key, request, query, self._tracer, parent, self._on_finish)
        self._runs[key] = run
        return run

    def release(self, key: _Key, run: Run) -> None:
        if self._runs.get(key) is run:
            del self._runs[key]

    def cancel(self, tenant: str, session_id: str) -> Run:
        """Cancel the run in progress for a session.

        Raises:
            RunNotFoundError: no run of that session is in progress.
        """
        run = self._runs.get(_Key(tenant, session_id))
        if run is None:
            raise RunNotFoundError(f"session {session_id!r} has no run in progress")
        run.cancel()
        return run

    async def cancel_all(self) -> None:
        """Cancel every run (server shutdown) and wait for them to end."""
        for run in list(self._runs.values()):
            run.cancel()
        await asyncio.gather(*(run.close() for run in list(self._runs.values())))
