"""The built-in app (what ``sandgate up`` serves at /process): the ReAct agent over HTTP.

The model is the scripted model server; the gateway is real (a real sandbox_svc
with bwrap sandboxes) where a tool runs, a fake ToolClient where none does.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agent_svc.builtin import build_builtin_app
from agent_svc.react import ReactSettings
from agent_svc.react.toolbox import ToolClient
from agent_svc.server import RunningAgentServer
from gateway.server import build_gateway
from gateway.settings import GatewaySettings
from sandbox_svc.server import RunningService
from sandgate.sdk import AsyncToolGateway, ToolCallResult, ToolInfo
from sandgate.sdk.tools import ProgressCallback
from tests.fixtures.scripted_model import ScriptedModel, bubble_sort
from tests.integration.agent_svc.conftest import read_events, serving
from tests.integration.gateway.conftest import SERVICE_KEY

from .conftest import react_settings

SEED_REQUEST = "请帮我使用python生成一段冒泡排序算法,并执行"
SORTED = "[11, 12, 22, 25, 34, 64, 90]"


class RecordingTools:
    """A fake gateway (implements ToolClient): no tools; records listings and closing."""

    def __init__(self) -> None:
        self.listings = 0
        self.closed = False

    async def list_tools(self, *, timeout: float = 30.0) -> list[ToolInfo]:
        self.listings += 1
        return []

    async def call_tool(self, name: str, arguments: Mapping[str, object] | None = None, *,
                        session: str | None = None, user: str | None = None,
                        on_progress: ProgressCallback | None = None,
                        timeout: float = 600.0) -> ToolCallResult:
        raise AssertionError("no tool should be called")

    async def close(self) -> None:
        self.closed = True


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _ask(text: str, session_id: str, **more: Any) -> dict[str, Any]:
    return {"input": [{"role": "user", "content": [{"type": "text", "text": text}]}],
            "session_id": session_id, **more}


def _unconfigured() -> ReactSettings:
    return ReactSettings(_env_file=None, model_base_url="", model="", model_api_key="")


async def test_without_model_settings_process_fails_naming_the_keys_to_set(
        tmp_path: Path) -> None:
    app = build_builtin_app(_unconfigured(), tools=RecordingTools)
    async with serving(app, tmp_path) as server, httpx.AsyncClient() as client:
        status, events = await read_events(client, f"{server.http_url}/process",
                                           _ask("hi", "unconfigured"))
        whole = await client.post(f"{server.http_url}/process",
                                  json=_ask("hi", "unconfigured", stream=False))
    assert status == 200
    final = events[-1]
    assert final["object"] == "response" and final["status"] == "failed"
    assert final["error"]["code"] == "model_not_configured"
    message = final["error"]["message"]
    assert {"SANDGATE_MODEL_BASE_URL", "SANDGATE_MODEL_API_KEY", "OPENAI_API_KEY",
            "DASHSCOPE_API_KEY", "SANDGATE_MODEL"} <= set(re.findall(r"[A-Z_]+", message))
    assert not message.startswith("ModelNotConfiguredError")
    assert whole.status_code == 200
    assert whole.json()["status"] == "failed"
    assert whole.json()["error"] == final["error"]


async def test_readiness_waits_for_the_gateway_and_shutdown_closes_its_client(
        tmp_path: Path) -> None:
    port = _closed_port()
    down = build_builtin_app(_unconfigured(),
                             tools=lambda: AsyncToolGateway(f"127.0.0.1:{port}"))
    async with serving(down, tmp_path / "down") as server, httpx.AsyncClient() as client:
        with anyio.fail_after(30):
            not_ready = await client.get(f"{server.http_url}/readiness")
    tools = RecordingTools()
    up = build_builtin_app(_unconfigured(), tools=lambda: tools)
    async with serving(up, tmp_path / "up") as server, httpx.AsyncClient() as client:
        ready = await client.get(f"{server.http_url}/readiness")
        assert not tools.closed
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"] == {"tool_gateway": False}
    assert ready.status_code == 200 and ready.json()["checks"] == {"tool_gateway": True}
    assert tools.listings == 1 and tools.closed


@asynccontextmanager
async def traced_gateway(service: RunningService, provider: TracerProvider
                         ) -> AsyncIterator[str]:
    running = await build_gateway(GatewaySettings(  # type: ignore[call-arg]
        port=0, grpc_port=0, sandbox_target=service.address, sandbox_key=SERVICE_KEY),
        tracer_provider=provider)
    try:
        yield running.grpc_address
    finally:
        with anyio.fail_after(30):
            await running.stop(grace=0.5)


async def _bubble_sort_run(server: RunningAgentServer) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=120) as client:
        with anyio.fail_after(120):
            status, events = await read_events(client, f"{server.http_url}/process",
                                               _ask(SEED_REQUEST, "seed"))
    assert status == 200
    return events


def _spans(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


async def test_the_seeds_request_runs_in_a_sandbox_in_one_trace_through_the_gateway(
        sandbox_service: RunningService, tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with ScriptedModel(bubble_sort) as model, \
            traced_gateway(sandbox_service, provider) as target:
        settings = react_settings(model.base_url, gateway_target=target)
        tools: ToolClient = AsyncToolGateway(target)
        app = build_builtin_app(settings, tools=lambda: tools, tracer_provider=provider)
        async with serving(app, tmp_path) as server:
            events = await _bubble_sort_run(server)
    assert events[-1]["status"] == "completed"
    messages = [e for e in events if e["object"] == "message" and e["status"] == "completed"]
    call = next(m for m in messages if m["type"] == "plugin_call")
    output = next(m for m in messages if m["type"] == "plugin_call_output")
    assert json.loads(call["content"][0]["data"]["arguments"])["code"].count("bubble_sort")
    assert SORTED in output["content"][0]["data"]["output"]
    assert messages[-1]["type"] == "message" and SORTED in messages[-1]["content"][0]["text"]

    run, = _spans(exporter, "agent.run")
    model_calls = _spans(exporter, "agent.model_call")
    tool_call, = _spans(exporter, "agent.tool_call")
    gateway_calls = [s for s in _spans(exporter, "tool.call")
                     if s.attributes and s.attributes.get("sandgate.tool") == "run_ipython_cell"]
    assert len(model_calls) == 2 and len(gateway_calls) == 1
    trace_id = run.context.trace_id
    assert {s.context.trace_id for s in [*model_calls, tool_call, *gateway_calls]} == {trace_id}
    assert {s.parent.span_id for s in [*model_calls, tool_call] if s.parent} == {
        run.context.span_id}
    gateway_call, = gateway_calls
    assert gateway_call.parent is not None
    assert gateway_call.parent.span_id == tool_call.context.span_id
