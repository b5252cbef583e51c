"""Server assembly: busy ports fail, health goes NOT_SERVING before the drain, signals stop."""

from __future__ import annotations

import asyncio
import signal

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from sandgate.sandbox.v1 import runtime_service_pb2 as pb
from sandgate.sandbox.v1 import runtime_service_pb2_grpc as pb_grpc
from sandgate.service.assembly import (
    GrpcServer,
    ListenError,
    bound_address,
    create_grpc_server,
    serve_until_signal,
)
from sandgate.service.boundary import ErrorBoundary

RUNTIME = pb.DESCRIPTOR.services_by_name["SandboxRuntime"].full_name
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def new_server(address: str = "127.0.0.1:0") -> GrpcServer:
    return await create_grpc_server(
        address, lambda s: pb_grpc.add_SandboxRuntimeServicer_to_server(
            pb_grpc.SandboxRuntimeServicer(), s),
        boundary=ErrorBoundary({}, server="fake"), services=[RUNTIME])


async def test_a_second_server_on_a_busy_port_fails_to_start() -> None:
    # gRPC's default server sets SO_REUSEPORT; ours must not share its port anyway.
    squatter = grpc.aio.server()
    port = squatter.add_insecure_port("127.0.0.1:0")
    await squatter.start()
    try:
        with pytest.raises(ListenError, match=f"127.0.0.1:{port}"):
            await new_server(f"127.0.0.1:{port}")
    finally:
        await squatter.stop(None)


async def test_a_started_server_serves_health_and_reflection_for_its_services() -> None:
    server = await new_server()
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address) as channel, asyncio.timeout(10):
            health = health_pb2_grpc.HealthStub(channel)
            statuses = [(await health.Check(health_pb2.HealthCheckRequest(service=name))).status
                        for name in ("", RUNTIME)]
            reflected = [r async for r in reflection_pb2_grpc.ServerReflectionStub(
                channel).ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(
                    list_services="")]))]
    finally:
        await server.stop(0)
    assert server.address == f"127.0.0.1:{server.port}" and server.port > 0
    assert statuses == [SERVING, SERVING]
    names = {s.name for s in reflected[0].list_services_response.service}
    assert {RUNTIME, "grpc.health.v1.Health"} <= names


async def test_stop_turns_health_not_serving_before_draining_then_closes_in_reverse_order(
) -> None:
    server = await new_server()
    closed: list[str] = []

    async def close_async() -> None:
        closed.append("async")

    server.close_with(lambda: closed.append("sync"))
    server.close_with(close_async)
    await server.start()
    async with grpc.aio.insecure_channel(server.address) as channel, asyncio.timeout(10):
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=RUNTIME))
        first = await watch.read()
        stopping = asyncio.create_task(server.stop(1.0))
        second = await watch.read()
        assert not stopping.done() and closed == []  # still draining the Watch call
        await stopping
    assert (first.status, second.status) == (SERVING, NOT_SERVING)
    assert closed == ["async", "sync"]


async def test_a_stop_signal_runs_the_stop_callable_once() -> None:
    stopped: list[str] = []

    async def stop() -> None:
        stopped.append("stopped")

    task = asyncio.create_task(serve_until_signal(stop))
    await asyncio.sleep(0)  # the task installs its handlers before its first wait
    assert not task.done()
    signal.raise_signal(signal.SIGTERM)
    async with asyncio.timeout(10):
        await task
    assert stopped == ["stopped"]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_the_bound_address_carries_the_real_port() -> None:
    assert bound_address("0.0.0.0:0", 4242) == "0.0.0.0:4242"
    assert bound_address("[::1]:0", 4242) == "[::1]:4242"
    assert bound_address("unix:/run/s.sock", 1) == "unix:/run/s.sock"
