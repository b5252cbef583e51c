"""The control-plane adapter: SandboxService over gRPC, acting for each tenant.

The gateway presents its service key and names the tenant in
``x-sandgate-tenant``; sandbox_svc then scopes every sandbox to that tenant.
Against a sandbox_svc without keys (a laptop) there are no tenants to act for:
the tenant is folded into the user id instead, so two gateway tenants can
never share a sandbox even then.
"""

from __future__ import annotations

import grpc

from gateway.sessions import ControlPlaneInfo, Lease, SessionKey
from gateway.telemetry import trace_metadata
from sandgate.sandbox.v1 import sandbox_service_pb2 as pb
from sandgate.sandbox.v1 import sandbox_service_pb2_grpc as pb_grpc
from sandgate.service.keys import DEFAULT_TENANT, TENANT_HEADER

__all__ = ["CHANNEL_OPTIONS", "GrpcSandboxControl"]

CHANNEL_OPTIONS = (("grpc.initial_reconnect_backoff_ms", 500),
                   ("grpc.max_reconnect_backoff_ms", 2000))
"""gRPC backs off reconnecting up to 120 s by default; after sandbox_svc restarts, new
sessions would be told it is unreachable long after it is back."""


class GrpcSandboxControl:
    """:class:`gateway.sessions.SandboxControl` over ``sandgate.sandbox.v1.SandboxService``."""

    def __init__(self, target: str, key: str = "", *, timeout_s: float = 60.0) -> None:
        self._channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        self._stub = pb_grpc.SandboxServiceStub(self._channel)
        self._key = key
        self._timeout = timeout_s
        self._enforces_tenants = True

    def _metadata(self, tenant: str) -> list[tuple[str, str]]:
        pairs = trace_metadata()
        if self._key:
            pairs.append(("authorization", f"Bearer {self._key}"))
            if tenant != DEFAULT_TENANT:
                pairs.append((TENANT_HEADER, tenant))
        return pairs

    def _session(self, key: SessionKey) -> pb.SessionKey:
        user = key.user_id
        if not self._enforces_tenants and key.tenant != DEFAULT_TENANT:
            user = f"{key.tenant}/{user}"
        return pb.SessionKey(user_id=user, session_id=key.session_id)

    async def describe(self) -> ControlPlaneInfo:
        """Templates sandbox_svc offers, and whether it tells tenants apart."""
        try:
            # A server that answers an anonymous call has no keys, hence no tenants.
            reply = await self._stub.ListTemplates(pb.ListTemplatesRequest(),
                                                   timeout=self._timeout)
            self._enforces_tenants = False
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAUTHENTICATED:
                raise
            reply = await self._stub.ListTemplates(
                pb.ListTemplatesRequest(), metadata=self._metadata(DEFAULT_TENANT),
                timeout=self._timeout)
            self._enforces_tenants = True
        return ControlPlaneInfo(frozenset(t.name for t in reply.templates))

    async def acquire(self, key: SessionKey, template: str) -> Lease:
        reply = await self._stub.AcquireSandbox(
            pb.AcquireSandboxRequest(template=template, session=self._session(key)),
            metadata=self._metadata(key.tenant), timeout=self._timeout)
        return Lease(reply.sandbox.sandbox_id, reply.connection.target, reply.connection.token,
                     reply.newly_bound, reply.pool_hit)

    async def renew(self, key: SessionKey, sandbox_id: str) -> None:
        await self._stub.RenewSandbox(pb.RenewSandboxRequest(sandbox_id=sandbox_id),
                                      metadata=self._metadata(key.tenant), timeout=self._timeout)

    async def release(self, key: SessionKey, template: str = "") -> list[str]:
        reply = await self._stub.ReleaseSession(
            pb.ReleaseSessionRequest(session=self._session(key), template=template),
            metadata=self._metadata(key.tenant), timeout=self._timeout)
        return list(reply.sandbox_ids)

    async def delete(self, key: SessionKey, sandbox_id: str) -> None:
        try:
            await self._stub.DeleteSandbox(pb.DeleteSandboxRequest(sandbox_id=sandbox_id),
                                           metadata=self._metadata(key.tenant),
                                           timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise

    async def close(self) -> None:
        await self._channel.close()
