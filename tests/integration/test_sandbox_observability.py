"""Lifecycle operations show up as Prometheus metrics and OpenTelemetry spans."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sandbox_svc.server import build_server
from sandgate.sdk import AsyncSandbox

from .conftest import make_settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_metrics_and_spans_record_a_sandbox_lifecycle(state_dir: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    port = _free_port()
    running = await build_server(make_settings(state_dir, metrics_port=port))
    try:
        sbx = await AsyncSandbox.create("base", target=running.address)
        await sbx.pause()
        await sbx.resume()
        await sbx.kill()
        body = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
            .read().decode())
    finally:
        await running.stop(grace=0.5)
    assert 'sandgate_lifecycle_operations_total{operation="start",outcome="ok"} 1.0' in body
    assert 'sandgate_lifecycle_operations_total{operation="pause",outcome="ok"} 1.0' in body
    assert "sandgate_sandbox_start_seconds_count" in body
    names = [span.name for span in exporter.get_finished_spans()]
    assert names == ["sandbox.start", "sandbox.pause", "sandbox.resume", "sandbox.delete"]
    started = exporter.get_finished_spans()[0]
    assert started.attributes is not None
    assert started.attributes["sandgate.sandbox_id"] == sbx.sandbox_id
