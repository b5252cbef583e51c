"""SandboxService over gRPC: proto <-> domain, and the one error mapping.

Each handler authenticates, converts the request, calls the manager and
converts the answer. ``STATUS_CODES`` is the only place where domain errors
become gRPC status codes; the server's error boundary (sandgate.service.boundary)
applies it to every handler.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from sandbox_svc import errors
from sandbox_svc.events import EventType
from sandbox_svc.isolation import Isolation
from sandbox_svc.manager import SandboxManager
from sandbox_svc.registry import SandboxRecord, SandboxStatus
from sandgate.sandbox.v1 import sandbox_service_pb2 as pb
from sandgate.sandbox.v1 import sandbox_service_pb2_grpc as pb_grpc
from sandgate.service.boundary import StatusTable
from sandgate.service.keys import Authenticator, UnauthenticatedError

__all__ = ["STATUS_CODES", "SandboxServiceServicer"]

STATUS_CODES: StatusTable = {
    errors.InvalidRequestError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.SandboxNotFoundError: grpc.StatusCode.NOT_FOUND,
    errors.SandboxLimitError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.SandboxStateError: grpc.StatusCode.FAILED_PRECONDITION,
    UnauthenticatedError: grpc.StatusCode.UNAUTHENTICATED,
    errors.BackendError: grpc.StatusCode.UNAVAILABLE,
}
"""Domain error -> status of SandboxService (each RPC's comment lists them)."""

_STATE = {
    SandboxStatus.STARTING: pb.SANDBOX_STATE_STARTING,
    SandboxStatus.READY: pb.SANDBOX_STATE_READY,
    SandboxStatus.PAUSED: pb.SANDBOX_STATE_PAUSED,
}

_EVENT = {
    EventType.CREATED: pb.SANDBOX_EVENT_TYPE_CREATED,
    EventType.BOUND: pb.SANDBOX_EVENT_TYPE_BOUND,
    EventType.PAUSED: pb.SANDBOX_EVENT_TYPE_PAUSED,
    EventType.RESUMED: pb.SANDBOX_EVENT_TYPE_RESUMED,
    EventType.DELETED: pb.SANDBOX_EVENT_TYPE_DELETED,
    EventType.EXPIRED: pb.SANDBOX_EVENT_TYPE_EXPIRED,
    EventType.ADOPTED: pb.SANDBOX_EVENT_TYPE_ADOPTED,
}


def _isolation(isolation: Isolation) -> pb.Isolation:
    return pb.Isolation(
        runtime=isolation.runtime, namespaces=list(isolation.namespaces),
        inner_uid=isolation.inner_uid, seccomp_profile=isolation.seccomp_profile,
        user_namespaces_disabled=isolation.user_namespaces_disabled,
        network_policy=isolation.network_policy, network_allow=list(isolation.network_allow))


def _timestamp(seconds: float | None) -> Timestamp | None:
    if seconds is None:
        return None
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def _seconds(duration: Duration, present: bool) -> float | None:
    return duration.ToNanoseconds() / 1e9 if present else None


def sandbox_message(record: SandboxRecord) -> pb.Sandbox:
    return pb.Sandbox(
        sandbox_id=record.sandbox_id, template=record.template, tenant=record.tenant,
        state=_STATE[record.status],
        session=pb.SessionKey(user_id=record.user_id, session_id=record.session_id),
        created_at=_timestamp(record.created_at), last_active_at=_timestamp(record.last_active_at),
        expires_at=_timestamp(record.expires_at), labels=record.labels,
    )


def _connection(record: SandboxRecord) -> pb.SandboxConnection:
    return pb.SandboxConnection(target=record.target, token=record.token)


class SandboxServiceServicer(pb_grpc.SandboxServiceServicer):
    """``sandgate.sandbox.v1.SandboxService`` over the manager.

    Handlers raise domain errors; the server's boundary answers them by ``STATUS_CODES``.
    """

    def __init__(self, manager: SandboxManager, auth: Authenticator,
                 default_template: str) -> None:
        self._manager = manager
        self._auth = auth
        self._default_template = default_template

    def _tenant(self, context: grpc.aio.ServicerContext[object, object]) -> str:
        return self._auth.authenticate_metadata(context.invocation_metadata()).tenant

    async def CreateSandbox(self, request: pb.CreateSandboxRequest,
                            context: grpc.aio.ServicerContext[object, object]
                            ) -> pb.CreateSandboxResponse:
        record = await self._manager.create(
            self._tenant(context), request.template or self._default_template,
            _seconds(request.ttl, request.HasField("ttl")), dict(request.labels))
        return pb.CreateSandboxResponse(sandbox=sandbox_message(record),
                                        connection=_connection(record))

    async def AcquireSandbox(self, request: pb.AcquireSandboxRequest,
                             context: grpc.aio.ServicerContext[object, object]
                             ) -> pb.AcquireSandboxResponse:
        record, newly_bound, pool_hit = await self._manager.acquire(
            self._tenant(context), request.session.user_id, request.session.session_id,
            request.template or self._default_template,
            _seconds(request.ttl, request.HasField("ttl")))
        return pb.AcquireSandboxResponse(
            sandbox=sandbox_message(record), connection=_connection(record),
            newly_bound=newly_bound, pool_hit=pool_hit)

    async def GetSandbox(self, request: pb.GetSandboxRequest,
                         context: grpc.aio.ServicerContext[object, object]
                         ) -> pb.GetSandboxResponse:
        record = await self._manager.get(self._tenant(context), request.sandbox_id)
        return pb.GetSandboxResponse(sandbox=sandbox_message(record),
                                     connection=_connection(record))

    async def ListSandboxes(self, request: pb.ListSandboxesRequest,
                            context: grpc.aio.ServicerContext[object, object]
                            ) -> pb.ListSandboxesResponse:
        records = await self._manager.list_sandboxes(self._tenant(context), request.template)
        return pb.ListSandboxesResponse(sandboxes=[sandbox_message(r) for r in records])

    async def DeleteSandbox(self, request: pb.DeleteSandboxRequest,
                            context: grpc.aio.ServicerContext[object, object]
                            ) -> pb.DeleteSandboxResponse:
        await self._manager.delete(self._tenant(context), request.sandbox_id)
        return pb.DeleteSandboxResponse()

    async def ReleaseSession(self, request: pb.ReleaseSessionRequest,
                             context: grpc.aio.ServicerContext[object, object]
                             ) -> pb.ReleaseSessionResponse:
        ids = await self._manager.release_session(
            self._tenant(context), request.session.user_id, request.session.session_id,
            request.template)
        return pb.ReleaseSessionResponse(sandbox_ids=ids)

    async def RenewSandbox(self, request: pb.RenewSandboxRequest,
                           context: grpc.aio.ServicerContext[object, object]
                           ) -> pb.RenewSandboxResponse:
        record = await self._manager.renew(self._tenant(context), request.sandbox_id,
                                           _seconds(request.ttl, request.HasField("ttl")))
        return pb.RenewSandboxResponse(sandbox=sandbox_message(record))

    async def PauseSandbox(self, request: pb.PauseSandboxRequest,
                           context: grpc.aio.ServicerContext[object, object]
                           ) -> pb.PauseSandboxResponse:
        record = await self._manager.pause(self._tenant(context), request.sandbox_id)
        return pb.PauseSandboxResponse(sandbox=sandbox_message(record))

    async def ResumeSandbox(self, request: pb.ResumeSandboxRequest,
                            context: grpc.aio.ServicerContext[object, object]
                            ) -> pb.ResumeSandboxResponse:
        record = await self._manager.resume(self._tenant(context), request.sandbox_id)
        return pb.ResumeSandboxResponse(sandbox=sandbox_message(record))

    async def ListTemplates(self, request: pb.ListTemplatesRequest,
                            context: grpc.aio.ServicerContext[object, object]
                            ) -> pb.ListTemplatesResponse:
        self._tenant(context)
        templates = []
        for t in self._manager.catalog.all():
            templates.append(pb.Template(
                name=t.name, description=t.description, tool_groups=list(t.tool_groups),
                limits=pb.ResourceLimits(memory_bytes=t.memory_mb * 1024 * 1024,
                                         max_pids=t.max_pids, cpu_millis=t.cpu_millis),
                pool_size=t.pool_size, network_enabled=t.network,
                default_ttl=Duration(seconds=t.default_ttl_s),
                idle_timeout=Duration(seconds=t.idle_timeout_s),
                isolation=_isolation(self._manager.backend.isolation(t))))
        return pb.ListTemplatesResponse(templates=templates)

    async def GetPoolStatus(self, request: pb.GetPoolStatusRequest,
                            context: grpc.aio.ServicerContext[object, object]
                            ) -> pb.GetPoolStatusResponse:
        self._tenant(context)
        views = await self._manager.pool_status(request.template)
        return pb.GetPoolStatusResponse(pools=[
            pb.PoolStatus(template=v.template, target_size=v.target_size, ready=v.ready,
                          starting=v.starting) for v in views])

    async def WatchSandboxes(self, request: pb.WatchSandboxesRequest,
                             context: grpc.aio.ServicerContext[object, object]
                             ) -> AsyncIterator[pb.WatchSandboxesResponse]:
        tenant = self._tenant(context)
        if request.template:
            self._manager.catalog.get(request.template)
        async for event_type, record, when in self._manager.watch(tenant, request.template):
            yield pb.WatchSandboxesResponse(type=_EVENT[event_type],
                                            sandbox=sandbox_message(record),
                                            time=_timestamp(when))
