"""The rest of SandboxService's surface over real gRPC: templates, pools, renew,
release, watch, auth, health and reflection."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from sandbox_svc.server import RunningService, build_server
from sandgate.sandbox.v1 import sandbox_service_pb2 as pb
from sandgate.sandbox.v1 import sandbox_service_pb2_grpc as pb_grpc

from .conftest import make_settings


async def test_templates_and_pool_status_describe_the_catalog(
        service: RunningService) -> None:
    async with grpc.aio.insecure_channel(service.address) as channel:
        stub = pb_grpc.SandboxServiceStub(channel)
        templates = (await stub.ListTemplates(pb.ListTemplatesRequest())).templates
        pools = (await stub.GetPoolStatus(pb.GetPoolStatusRequest())).pools
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.GetPoolStatus(pb.GetPoolStatusRequest(template="nope"))
    assert [t.name for t in templates] == ["base", "browser", "filesystem"]
    assert list(templates[2].tool_groups) == ["base", "filesystem"]
    assert templates[0].limits.memory_bytes == 512 * 1024 * 1024
    assert [(p.template, p.target_size) for p in pools] == [
        ("base", 0), ("browser", 0), ("filesystem", 0)]
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_templates_show_the_isolation_in_force(service: RunningService) -> None:
    async with grpc.aio.insecure_channel(service.address) as channel:
        stub = pb_grpc.SandboxServiceStub(channel)
        templates = {t.name: t.isolation for t in
                     (await stub.ListTemplates(pb.ListTemplatesRequest())).templates}
    base, browser = templates["base"], templates["browser"]
    assert base.runtime == "bubblewrap" and base.inner_uid == 65534
    assert set(base.namespaces) == {"user", "mount", "pid", "net", "ipc", "uts", "cgroup"}
    assert base.user_namespaces_disabled and browser.user_namespaces_disabled
    assert (base.seccomp_profile, templates["filesystem"].seccomp_profile,
            browser.seccomp_profile) == ("default", "default", "browser")
    assert (base.network_policy, browser.network_policy) == ("none", "egress")


async def test_renew_release_and_watch_report_the_lifecycle(service: RunningService) -> None:
    async with grpc.aio.insecure_channel(service.address) as channel:
        stub = pb_grpc.SandboxServiceStub(channel)
        watch = stub.WatchSandboxes(pb.WatchSandboxesRequest(template="base"))
        events: list[int] = []

        async def collect() -> None:
            async for event in watch:
                events.append(event.type)
                if event.type == pb.SANDBOX_EVENT_TYPE_DELETED:
                    return

        collector = asyncio.create_task(collect())
        await asyncio.sleep(0.1)  # let the subscription start
        session = pb.SessionKey(user_id="u1", session_id="s1")
        acquired = await stub.AcquireSandbox(pb.AcquireSandboxRequest(template="base",
                                                                      session=session))
        renewed = await stub.RenewSandbox(pb.RenewSandboxRequest(
            sandbox_id=acquired.sandbox.sandbox_id, ttl={"seconds": 7200}))
        assert renewed.sandbox.expires_at.seconds > acquired.sandbox.expires_at.seconds
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.RenewSandbox(pb.RenewSandboxRequest(
                sandbox_id=acquired.sandbox.sandbox_id, ttl={"seconds": 10**9}))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        released = await stub.ReleaseSession(pb.ReleaseSessionRequest(session=session))
        assert list(released.sandbox_ids) == [acquired.sandbox.sandbox_id]
        async with asyncio.timeout(10):
            await collector
        watch.cancel()
    assert events == [pb.SANDBOX_EVENT_TYPE_CREATED, pb.SANDBOX_EVENT_TYPE_BOUND,
                      pb.SANDBOX_EVENT_TYPE_DELETED]


async def test_missing_or_wrong_key_is_unauthenticated(state_dir: Path) -> None:
    running = await build_server(make_settings(state_dir, api_keys="k1=acme"))
    try:
        async with grpc.aio.insecure_channel(running.address) as channel:
            stub = pb_grpc.SandboxServiceStub(channel)
            for metadata in ((), (("authorization", "Bearer wrong"),)):
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await stub.ListSandboxes(pb.ListSandboxesRequest(), metadata=metadata)
                assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            ok = await stub.ListSandboxes(pb.ListSandboxesRequest(),
                                          metadata=(("authorization", "Bearer k1"),))
            assert list(ok.sandboxes) == []
    finally:
        await running.stop(grace=0.5)


async def test_health_and_reflection_are_served(service: RunningService) -> None:
    async with grpc.aio.insecure_channel(service.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(
            service="sandgate.sandbox.v1.SandboxService"))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name async for r in responses for s in r.list_services_response.service}
    assert "sandgate.sandbox.v1.SandboxService" in names
