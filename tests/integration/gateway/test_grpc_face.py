"""``sandgate.gateway.v1.ToolGateway``: the same catalog and sessions over gRPC."""

from __future__ import annotations

import anyio
import grpc
import pytest
from google.protobuf.struct_pb2 import Struct
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gateway.server import RunningGateway
from sandbox_svc.server import RunningService
from sandgate.gateway.v1 import gateway_service_pb2 as pb
from sandgate.gateway.v1 import gateway_service_pb2_grpc as pb_grpc

from .conftest import SERVICE_KEY, run_gateway


def _args(**values: object) -> Struct:
    message = Struct()
    message.update(values)
    return message


async def _call(stub: pb_grpc.ToolGatewayStub, request: pb.CallToolRequest,
                metadata: tuple[tuple[str, str], ...] = ()) -> list[pb.CallToolResponse]:
    with anyio.fail_after(30):
        return [event async for event in stub.CallTool(request, metadata=metadata)]


async def test_call_tool_streams_progress_then_one_result(gateway: RunningGateway) -> None:
    session = pb.SessionKey(session_id="grpc-1")
    async with grpc.aio.insecure_channel(gateway.grpc_address) as channel:
        stub = pb_grpc.ToolGatewayStub(channel)
        listed = await stub.ListTools(pb.ListToolsRequest())
        events = await _call(stub, pb.CallToolRequest(
            session=session, name="run_shell_command",
            arguments=_args(command="sleep 1; echo done > f; cat f")))
        again = await _call(stub, pb.CallToolRequest(
            session=session, name="read_file", arguments=_args(path="f")))
        unknown = await _call(stub, pb.CallToolRequest(session=session, name="nope"))
    tools = {t.name: t for t in listed.tools}
    assert tools["run_shell_command"].source == pb.TOOL_SOURCE_SANDBOX
    assert tools["sandbox_release"].source == pb.TOOL_SOURCE_GATEWAY
    assert tools["read_file"].input_schema["required"] == ["path"]
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[-1] == "result" and kinds.count("result") == 1 and "progress" in kinds
    result = events[-1].result
    assert not result.is_error and result.sandbox_id.startswith("sbx-")
    assert [(b.label, b.text.text) for b in result.content] == [("stdout", "done\n"),
                                                                 ("returncode", "0")]
    assert again[-1].result.content[0].text.text == "done\n"
    assert again[-1].result.sandbox_id == result.sandbox_id
    assert unknown[-1].result.is_error


async def test_bad_requests_and_missing_keys_answer_status_codes(
        sandbox_service: RunningService) -> None:
    async with run_gateway(sandbox_service, api_keys="k=acme", bearer_token=SERVICE_KEY) as gw:
        async with grpc.aio.insecure_channel(gw.grpc_address) as channel:
            stub = pb_grpc.ToolGatewayStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as anonymous:
                await stub.ListTools(pb.ListToolsRequest())
            with pytest.raises(grpc.aio.AioRpcError) as no_session:
                await _call(stub, pb.CallToolRequest(name="run_shell_command"),
                            (("authorization", "Bearer k"),))
            listed = await stub.ListTools(pb.ListToolsRequest(),
                                          metadata=(("authorization", "Bearer k"),))
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="sandgate.gateway.v1.ToolGateway"))
            reflected = [r async for r in reflection_pb2_grpc.ServerReflectionStub(
                channel).ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(
                    list_services="")]))]
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert no_session.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "session_id" in (no_session.value.details() or "")
    assert listed.tools
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    services = {s.name for s in reflected[0].list_services_response.service}
    assert "sandgate.gateway.v1.ToolGateway" in services


async def test_a_tenant_over_its_rate_limit_gets_resource_exhausted_with_a_retry_hint(
        sandbox_service: RunningService) -> None:
    async with run_gateway(sandbox_service, rate_limit_per_s=0.5, rate_limit_burst=1) as gw:
        async with grpc.aio.insecure_channel(gw.grpc_address) as channel:
            stub = pb_grpc.ToolGatewayStub(channel)
            await stub.ListTools(pb.ListToolsRequest())
            with pytest.raises(grpc.aio.AioRpcError) as limited:
                await stub.ListTools(pb.ListToolsRequest())
    assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert dict(limited.value.trailing_metadata() or ())["retry-after"] == "2"
