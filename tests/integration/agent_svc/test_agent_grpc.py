"""AgentService over gRPC, on a real server (127.0.0.1:0) beside the HTTP face."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from sandgate.agent.v1 import agent_service_pb2 as pb
from sandgate.agent.v1 import agent_service_pb2_grpc as pb_grpc
from tests.integration.agent_svc.apps import Gate, echo_app, gated_app, tasks_app
from tests.integration.agent_svc.conftest import serving


def _query(text: str, **fields: object) -> pb.QueryRequest:
    body = {"input": [{"role": "user", "content": [{"type": "text", "text": text}]}], **fields}
    return pb.QueryRequest(request_json=json.dumps(body))


async def _events(stub: pb_grpc.AgentServiceStub, request: pb.QueryRequest,
                  metadata: tuple[tuple[str, str], ...] = ()) -> list[dict[str, Any]]:
    events = []
    async for reply in stub.Query(request, metadata=metadata, timeout=30):
        event = json.loads(reply.event_json)
        assert (reply.sequence_number, reply.object) == (event["sequence_number"],
                                                         event["object"])
        events.append(event)
    return events


async def test_query_streams_the_same_events_as_process(tmp_path: Path) -> None:
    async with serving(echo_app(), tmp_path, grpc_port=0) as server, \
            grpc.aio.insecure_channel(server.grpc_address) as channel:
        stub = pb_grpc.AgentServiceStub(channel)
        events = await _events(stub, _query("hello", id="g-1", session_id="gs"))
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await _events(stub, pb.QueryRequest(request_json='{"session_id": "x"}'))
    assert [(e["object"], e["status"]) for e in events] == [
        ("response", "created"), ("response", "in_progress"), ("message", "in_progress"),
        ("content", "in_progress"), ("content", "in_progress"), ("message", "completed"),
        ("response", "completed")]
    assert events[-1]["id"] == "g-1" and events[-1]["session_id"] == "gs"
    assert events[-1]["output"][0]["content"][0]["text"] == "you said: hello"
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "input" in (bad.value.details() or "")


async def test_cancel_run_ends_the_query_canceled_and_a_busy_session_is_aborted(
        tmp_path: Path) -> None:
    gate = Gate()
    async with serving(gated_app(gate), tmp_path, grpc_port=0) as server, \
            grpc.aio.insecure_channel(server.grpc_address) as channel:
        stub = pb_grpc.AgentServiceStub(channel)
        run = asyncio.create_task(_events(stub, _query("go", session_id="gc")))
        async with asyncio.timeout(10):
            await gate.entered.wait()
        with pytest.raises(grpc.aio.AioRpcError) as busy:
            await _events(stub, _query("again", session_id="gc"))
        reply = await stub.CancelRun(pb.CancelRunRequest(session_id="gc"), timeout=10)
        async with asyncio.timeout(10):
            events = await run
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await stub.CancelRun(pb.CancelRunRequest(session_id="gc"), timeout=10)
    assert busy.value.code() == grpc.StatusCode.ABORTED
    assert reply.response_id == events[0]["id"]
    assert events[-1]["status"] == "canceled" and gate.cancelled.is_set()
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_sessions_recorded_by_runs_are_listed_and_read(tmp_path: Path) -> None:
    async with serving(echo_app(), tmp_path, grpc_port=0, history="sqlite") as server, \
            grpc.aio.insecure_channel(server.grpc_address) as channel:
        stub = pb_grpc.AgentServiceStub(channel)
        await _events(stub, _query("first", session_id="s1", user_id="ada"))
        await _events(stub, _query("second", session_id="s2", user_id="ada"))
        listed = await stub.ListSessions(pb.ListSessionsRequest(user_id="ada"), timeout=10)
        got = await stub.GetSession(pb.GetSessionRequest(user_id="ada", session_id="s2"),
                                    timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetSession(pb.GetSessionRequest(user_id="bob", session_id="s2"),
                                  timeout=10)
    assert [s.id for s in listed.sessions] == ["s1", "s2"]
    texts = [json.loads(m)["content"][0]["text"] for m in got.session.messages_json]
    assert texts == ["second", "you said: second"]
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_tasks_are_submitted_and_polled_over_grpc(tmp_path: Path) -> None:
    async with serving(tasks_app(), tmp_path, grpc_port=0) as server, \
            grpc.aio.insecure_channel(server.grpc_address) as channel:
        stub = pb_grpc.AgentServiceStub(channel)
        submitted = await stub.SubmitTask(
            pb.SubmitTaskRequest(path="/square", payload_json='{"x": 9}'), timeout=10)
        async with asyncio.timeout(20):
            while True:
                task = await stub.GetTask(pb.GetTaskRequest(task_id=submitted.task_id),
                                          timeout=10)
                if task.status in (pb.TASK_STATUS_FINISHED, pb.TASK_STATUS_ERROR):
                    break
                await asyncio.sleep(0.02)
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await stub.SubmitTask(pb.SubmitTaskRequest(path="/nope"), timeout=10)
    assert task.status == pb.TASK_STATUS_FINISHED
    assert json.loads(task.result_json) == {"result": 81}
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_keys_are_required_and_tenants_never_see_each_others_sessions(
        tmp_path: Path) -> None:
    acme = (("authorization", "Bearer k-acme"),)
    globex = (("authorization", "Bearer k-globex"),)
    async with serving(echo_app(), tmp_path, grpc_port=0, history="memory",
                       api_keys="k-acme=acme,k-globex=globex") as server, \
            grpc.aio.insecure_channel(server.grpc_address) as channel:
        stub = pb_grpc.AgentServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await _events(stub, _query("hi"))
        await _events(stub, _query("secret", session_id="shared", user_id="u"), acme)
        mine = await stub.GetSession(pb.GetSessionRequest(user_id="u", session_id="shared"),
                                     metadata=acme, timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as theirs:
            await stub.GetSession(pb.GetSessionRequest(user_id="u", session_id="shared"),
                                  metadata=globex, timeout=10)
        # Both tenants may run the same session id at once: they are different sessions.
        await _events(stub, _query("mine too", session_id="shared", user_id="u"), globex)
        health = health_pb2_grpc.HealthStub(channel)
        served = await health.Check(health_pb2.HealthCheckRequest(
            service="sandgate.agent.v1.AgentService"), timeout=10)
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert len(mine.session.messages_json) == 2
    assert theirs.value.code() == grpc.StatusCode.NOT_FOUND
    assert served.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_agent_service(tmp_path: Path) -> None:
    async with serving(echo_app(), tmp_path, grpc_port=0) as server, \
            grpc.aio.insecure_channel(server.grpc_address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        async for reply in stub.ServerReflectionInfo(iter([request]), timeout=10):
            names = {s.name for s in reply.list_services_response.service}
            break
    assert "sandgate.agent.v1.AgentService" in names
    assert "grpc.health.v1.Health" in names
