"""AgentService over gRPC: the servicer and its status table, on the service kit.

The servicer only translates: protos in, the app's runs, history and tasks,
protos out; it authenticates each call with the kit's keys. The kit's
:class:`~sandgate.service.boundary.ErrorBoundary` turns domain errors into
statuses by :data:`STATUS_CODES` (anything else: INTERNAL with a request id),
and :func:`~sandgate.service.assembly.create_grpc_server` adds health (SERVING
once started, NOT_SERVING while stopping), reflection and a refusal to share a
busy port.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from pydantic import ValidationError

from agent_svc.errors import (
    InvalidRequestError,
    NotConfiguredError,
    RunNotFoundError,
    ServiceNotStartedError,
    SessionBusyError,
    SessionNotFoundError,
    TaskNotFoundError,
)
from agent_svc.protocol import AgentRequest
from agent_svc.runs import normalized, tenant_user
from agent_svc.tasks.base import TaskStatus
from agent_svc.telemetry import extract_context
from sandgate.agent.v1 import agent_service_pb2 as pb
from sandgate.agent.v1 import agent_service_pb2_grpc as pb_grpc
from sandgate.service.assembly import create_grpc_server
from sandgate.service.boundary import ErrorBoundary, StatusTable
from sandgate.service.keys import Authenticator, UnauthenticatedError

if TYPE_CHECKING:
    from agent_svc.app import AgentApp
    from agent_svc.settings import AgentSettings

__all__ = ["STATUS_CODES", "AgentServicer", "start_grpc"]


SERVICE_NAME = "sandgate.agent.v1.AgentService"
STATUS_CODES: StatusTable = {
    InvalidRequestError: grpc.StatusCode.INVALID_ARGUMENT,
    UnauthenticatedError: grpc.StatusCode.UNAUTHENTICATED,
    SessionBusyError: grpc.StatusCode.ABORTED,
    RunNotFoundError: grpc.StatusCode.NOT_FOUND,
    SessionNotFoundError: grpc.StatusCode.NOT_FOUND,
    TaskNotFoundError: grpc.StatusCode.NOT_FOUND,
    ServiceNotStartedError: grpc.StatusCode.UNAVAILABLE,
    NotConfiguredError: grpc.StatusCode.FAILED_PRECONDITION,
}
"""Domain error -> status: the one mapping of this server."""

_TASK_STATUS = {TaskStatus.PENDING: pb.TASK_STATUS_PENDING,
                TaskStatus.RUNNING: pb.TASK_STATUS_RUNNING,
                TaskStatus.FINISHED: pb.TASK_STATUS_FINISHED,
                TaskStatus.ERROR: pb.TASK_STATUS_ERROR}

R = TypeVar("R")


class AgentServicer(pb_grpc.AgentServiceServicer):
    """AgentService for one AgentApp.

    Args:
        app: the served app (its runs, session history and tasks).
        authenticator: checks the caller's key (an open one lets everyone in).
        max_request_bytes: the largest request_json accepted.
    """

    def __init__(self, app: AgentApp, authenticator: Authenticator,
                 max_request_bytes: int) -> None:
        self._app = app
        self._auth = authenticator
        self._max = max_request_bytes

    def _tenant(self, context: Any) -> str:
        return self._auth.authenticate_metadata(context.invocation_metadata()).tenant

    async def _guarded(self, context: Any, call: Callable[[str], Awaitable[R]]) -> R:
        """Authenticate, then call (the server's ErrorBoundary maps what it raises)."""
        return await call(self._tenant(context))

    async def Query(self, request: pb.QueryRequest, context: Any
                    ) -> AsyncIterator[pb.QueryResponse]:
        tenant = self._tenant(context)
        if len(request.request_json) > self._max:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"request_json is larger than {self._max} bytes")
        if not self._app.has_query:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED,
                                "this app has no query function (@app.query())")
        try:
            agent_request = normalized(AgentRequest.model_validate_json(
                request.request_json or "{}"), tenant)
        except ValidationError as exc:
            fields = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'request'}: {e['msg']}"
                               for e in exc.errors(include_url=False))
            raise InvalidRequestError(f"request_json is not an AgentRequest: {fields}"
                                      ) from None
        run = self._app.runs.open(tenant, agent_request, self._app.query_stream,
                                  parent=extract_context(context.invocation_metadata() or ()))
        try:
            async for event in run.events():
                status = getattr(event, "status", None)
                yield pb.QueryResponse(
                    event_json=event.model_dump_json(),
                    sequence_number=event.sequence_number or 0, object=event.object,
                    status=str(status) if status is not None else "")
        finally:
            await run.close()

    async def CancelRun(self, request: pb.CancelRunRequest, context: Any
                        ) -> pb.CancelRunResponse:
        async def call(tenant: str) -> pb.CancelRunResponse:
            if not request.session_id:
                raise InvalidRequestError("session_id is required")
            run = self._app.runs.cancel(tenant, request.session_id)
            return pb.CancelRunResponse(session_id=request.session_id,
                                        response_id=run.builder.response_id)
        return await self._guarded(context, call)

    def _history(self) -> Any:
        if self._app.session_history is None:
            raise NotConfiguredError("this server records no session history "
                                     "(SANDGATE_AGENT_HISTORY=none)")
        return self._app.session_history

    async def GetSession(self, request: pb.GetSessionRequest, context: Any
                         ) -> pb.GetSessionResponse:
        async def call(tenant: str) -> pb.GetSessionResponse:
            if not request.session_id:
                raise InvalidRequestError("session_id is required")
            user = request.user_id or request.session_id
            session = await self._history().get_session(tenant_user(tenant, user),
                                                         request.session_id)
            if session is None:
                raise SessionNotFoundError(
                    f"user {user!r} has no session {request.session_id!r}")
            return pb.GetSessionResponse(session=pb.Session(
                id=session.id, user_id=user,
                messages_json=[m.model_dump_json() for m in session.messages]))
        return await self._guarded(context, call)

    async def ListSessions(self, request: pb.ListSessionsRequest, context: Any
                           ) -> pb.ListSessionsResponse:
        async def call(tenant: str) -> pb.ListSessionsResponse:
            sessions = await self._history().list_sessions(
                tenant_user(tenant, request.user_id))
            return pb.ListSessionsResponse(sessions=[
                pb.Session(id=s.id, user_id=request.user_id) for s in sessions])
        return await self._guarded(context, call)

    async def SubmitTask(self, request: pb.SubmitTaskRequest, context: Any
                         ) -> pb.SubmitTaskResponse:
        async def call(tenant: str) -> pb.SubmitTaskResponse:
            try:
                payload = json.loads(request.payload_json) if request.payload_json else {}
            except ValueError:
                raise InvalidRequestError("payload_json is not JSON") from None
            task_id = await self._app.submit_task(request.path, payload)
            return pb.SubmitTaskResponse(task_id=task_id,
                                         queue=self._app.tasks[request.path].queue)
        return await self._guarded(context, call)

    async def GetTask(self, request: pb.GetTaskRequest, context: Any) -> pb.GetTaskResponse:
        async def call(tenant: str) -> pb.GetTaskResponse:
            if not request.task_id:
                raise InvalidRequestError("task_id is required")
            if self._app.task_runner is None:
                raise NotConfiguredError("this app is served without a task runner")
            info = await self._app.task_runner.get(request.task_id)
            return pb.GetTaskResponse(status=_TASK_STATUS[info.status],
                                      result_json=json.dumps(info.result))
        return await self._guarded(context, call)


async def start_grpc(app: AgentApp, settings: AgentSettings, host: str,
                     authenticator: Authenticator
                     ) -> tuple[str, Callable[[float], Awaitable[None]]]:
    """Start AgentService (with health and reflection) on ``host:settings.grpc_port``.

    Returns:
        The bound address and the function that stops the server gracefully.

    Raises:
        ListenError: the port is busy or cannot be bound.
    """
    servicer = AgentServicer(app, authenticator, settings.max_request_bytes)
    listen = f"[{host}]" if ":" in host else host
    server = await create_grpc_server(
        f"{listen}:{settings.grpc_port}",
        lambda s: pb_grpc.add_AgentServiceServicer_to_server(servicer, s),
        boundary=ErrorBoundary(STATUS_CODES, server="agent_svc"), services=[SERVICE_NAME],
        max_receive_bytes=settings.max_request_bytes + 64 * 1024)
    await server.start()

    async def stop(grace: float) -> None:
        await server.stop(grace)

    return server.address, stop
