"""ToolCalls: resolving, validating, running and reporting one tool call."""

from __future__ import annotations

import anyio
import grpc
import pytest
from gateway_fakes import FakeControl, build_calls, caller
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.errors import ProtocolError


async def test_a_session_binds_its_sandbox_once_and_reuses_it() -> None:
    calls, control, _ = build_calls()
    with anyio.fail_after(5):
        first = await calls.call(caller(), "echo", {"text": "a"})
        second = await calls.call(caller(), "echo", {"text": "b"})
        other = await calls.call(caller("s2"), "echo", {"text": "c"})
    assert first.sandbox_id == second.sandbox_id != other.sandbox_id
    assert [key.session_id for key, _ in control.acquired] == ["s1", "s2"]
    assert [template for _, template in control.acquired] == ["filesystem", "filesystem"]


async def test_unknown_tools_and_bad_arguments_are_error_results() -> None:
    calls, control, _ = build_calls()
    unknown = await calls.call(caller(), "nope", {})
    invalid = await calls.call(caller(), "echo", {"text": 3})
    assert unknown.is_error and "tools/list" in unknown.text
    assert invalid.is_error and "text" in invalid.text and "string" in invalid.text
    assert control.acquired == []  # nothing reached a sandbox


async def test_a_tool_outside_the_tenants_allowlist_is_unknown_to_it() -> None:
    calls, _, _ = build_calls(allowlist={"acme": ["echo"]})
    assert (await calls.call(caller(tenant="acme"), "sleep", {})).is_error
    assert not (await calls.call(caller(tenant="acme"), "echo", {"text": "x"})).is_error
    assert not (await calls.call(caller(tenant="other"), "sleep", {})).is_error


async def test_a_sandbox_error_status_becomes_an_error_result() -> None:
    calls, _, _ = build_calls()
    result = await calls.call(caller(), "fail", {"code": "NOT_FOUND"})
    assert result.is_error and "sandboxd said no" in result.text


async def test_a_lost_sandbox_fails_the_call_and_the_next_call_says_it_is_fresh() -> None:
    calls, control, _ = build_calls()
    first = await calls.call(caller(), "echo", {"text": "a"})
    # The fake sandboxd address answers no health check: the sandbox counts as gone.
    lost = await calls.call(caller(), "fail", {"code": "UNAVAILABLE"})
    fresh = await calls.call(caller(), "echo", {"text": "b"})
    later = await calls.call(caller(), "echo", {"text": "c"})
    assert lost.is_error and "stopped during the call" in lost.text
    assert control.deleted == [first.sandbox_id]
    assert fresh.sandbox_id != first.sandbox_id and "new one" in fresh.text
    assert "new one" not in later.text


async def test_misconfiguration_is_a_protocol_error_without_details() -> None:
    calls, _, _ = build_calls(FakeControl(templates=["base"]))
    with pytest.raises(ProtocolError) as raised:
        await calls.call(caller(), "echo", {"text": "a"})
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "filesystem" not in str(raised.value)  # the operator's log has the details


async def test_a_long_call_reports_progress_until_it_ends() -> None:
    calls, _, _ = build_calls(progress_interval_s=0.05)
    reports: list[float] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        reports.append(done)

    with anyio.fail_after(5):
        result = await calls.call(caller(), "sleep", {"seconds": 0.3}, progress)
    assert not result.is_error
    assert len(reports) >= 3 and reports == sorted(reports)


async def test_each_call_gets_a_span_and_its_context_reaches_sandboxd() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    calls, _, tools = build_calls(tracer_provider=provider)
    result = await calls.call(caller(), "echo", {"text": "traced"})
    (span,) = exporter.get_finished_spans()
    assert span.name == "tool.call"
    assert span.attributes is not None
    assert span.attributes["sandgate.tool"] == "echo"
    assert span.attributes["sandgate.sandbox_id"] == result.sandbox_id
    assert span.attributes["sandgate.outcome"] == "ok"
    sent = dict(tools.metadata[-1])
    assert sent["authorization"] == "Bearer token"
    assert sent["traceparent"].split("-")[1] == format(span.context.trace_id, "032x")


async def test_metrics_count_calls_and_errors_by_tool() -> None:
    calls, _, _ = build_calls()
    await calls.call(caller(), "echo", {"text": "a"})
    await calls.call(caller(), "fail", {"code": "NOT_FOUND"})
    await calls.call(caller(), "no-such-tool-" + "x" * 50, {})
    value = calls.metrics.registry.get_sample_value
    assert value("sandgate_gateway_tool_calls_total", {"tool": "echo", "outcome": "ok"}) == 1
    assert value("sandgate_gateway_tool_calls_total", {"tool": "fail", "outcome": "error"}) == 1
    assert value("sandgate_gateway_tool_calls_total",
                 {"tool": "(unknown)", "outcome": "error"}) == 1
    assert value("sandgate_gateway_tool_call_seconds_count", {"tool": "echo"}) == 1
