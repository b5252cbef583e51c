"""AgentService over gRPC: the servicer, its error mapping, and its server.

The servicer only translates: protos in, the app's runs, history and tasks,
protos out. Domain errors become statuses in one table (:data:`STATUS_CODES`);
anything else is logged and answered INTERNAL with a request id. The server
serves ``grpc.health.v1`` (SERVING once started, NOT_SERVING while stopping)
and reflection, and refuses a busy port (``grpc.so_reuseport = 0``).

This module holds the whole gRPC face on purpose: authentication, the error
boundary and the server assembly move to the service kit (``sandgate.service``)
once it lands, without touching the rest of agent_svc.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from pydantic import ValidationError

from agent_svc.auth import TENANT_HEADER, Authenticator, UnauthenticatedError
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

if TYPE_CHECKING:
    from agent_svc.app import AgentApp
    from agent_svc.settings import AgentSettings

__all__ = ["STATUS_CODES", "AgentServicer", "start_grpc"]

logger = logging.getLogger(__name__)

SERVICE_NAME = "sandgate.agent.v1.AgentService"
STATUS_CODES: dict[type[Exception], grpc.StatusCode] = {
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


def _status_of(exc: Exception) -> grpc.StatusCode | None:
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return None


async def _abort(context: Any, exc: Exception) -> None:
    """Abort the call with ``exc``'s status (raises ``grpc.aio.AbortError``)."""
    code = _status_of(exc)
    if code is None:
        request_id = secrets.token_hex(4)
        logger.exception("AgentService call failed (request %s)", request_id)
        await context.abort(grpc.StatusCode.INTERNAL,
                            f"internal error (request id {request_id})")
    await context.abort(code, str(exc))


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
        metadata = dict(context.invocation_metadata() or ())
        return self._auth.authenticate(metadata.get("authorization"),
                                       metadata.get(TENANT_HEADER)).tenant

    async def _guarded(self, context: Any, call: Callable[[str], Awaitable[R]]) -> R:
        """The error boundary of a unary call: authenticate, call, map errors."""
        try:
            return await call(self._tenant(context))
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc)
        raise AssertionError("unreachable: context.abort raises")

    async def Query(self, request: pb.QueryRequest, context: Any
                    ) -> AsyncIterator[pb.QueryResponse]:
        try:
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
                                      parent=extract_context(context.invocation_metadata()
                                                             or ()))
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc)
            return
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
    """Start AgentService with health and reflection on ``host:settings.grpc_port``.

    Returns:
        The bound address and the function that stops the server gracefully.

    Raises:
        RuntimeError: the port could not be bound (busy).
    """
    server = grpc.aio.server(options=[
        ("grpc.so_reuseport", 0),
        ("grpc.max_receive_message_length", settings.max_request_bytes + 64 * 1024)])
    pb_grpc.add_AgentServiceServicer_to_server(
        AgentServicer(app, authenticator, settings.max_request_bytes), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (pb.DESCRIPTOR.services_by_name["AgentService"].full_name, health.SERVICE_NAME,
         reflection.SERVICE_NAME), server)
    listen = f"[{host}]" if ":" in host else host
    try:
        port = server.add_insecure_port(f"{listen}:{settings.grpc_port}")
    except RuntimeError as exc:
        raise RuntimeError(f"AgentService cannot listen on {listen}:{settings.grpc_port} "
                           f"(is the port busy?): {exc}") from None
    await server.start()
    for service in ("", SERVICE_NAME):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)

    async def stop(grace: float) -> None:
        await health_servicer.enter_graceful_shutdown()
        await server.stop(grace)

    return f"{listen}:{port}", stop
