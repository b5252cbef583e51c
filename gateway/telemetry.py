"""Traces and metrics of tool calls.

A span per tool call; W3C trace context continues from the MCP HTTP headers or
gRPC metadata of the caller and is injected into the gRPC metadata sent to
sandbox_svc and sandboxd. Prometheus metrics count calls, errors and latency by
tool in a registry of their own (one per gateway, so tests can start several).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from opentelemetry import baggage, propagate, trace
from opentelemetry.context import Context
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["GatewayMetrics", "extract_context", "has_trace_context", "trace_metadata",
           "tracer_for"]

_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    60.0, 300.0)


def tracer_for(provider: trace.TracerProvider | None = None) -> trace.Tracer:
    """The gateway's tracer, from ``provider`` or the global one."""
    return trace.get_tracer("sandgate.gateway", tracer_provider=provider)


def has_trace_context() -> bool:
    """Whether the current context has anything to propagate (a valid span or baggage)."""
    return trace.get_current_span().get_span_context().is_valid or bool(baggage.get_all())


def trace_metadata() -> list[tuple[str, str]]:
    """The current trace context as gRPC metadata pairs (empty when not tracing)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return list(carrier.items())


def extract_context(headers: Mapping[str, str] | Iterable[tuple[str, str | bytes]]
                    ) -> Context | None:
    """The caller's trace context from HTTP headers or gRPC metadata, if it sent one."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    carrier = {k.lower(): v if isinstance(v, str) else v.decode(errors="replace")
               for k, v in items if k.lower() in ("traceparent", "tracestate", "baggage")}
    if "traceparent" not in carrier:
        return None
    return propagate.extract(carrier)


class GatewayMetrics:
    """Prometheus metrics of the gateway."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.calls = Counter(
            "sandgate_gateway_tool_calls", "Tool calls by tool and outcome",
            ("tool", "outcome"), registry=self.registry)
        self.errors = Counter(
            "sandgate_gateway_tool_errors", "Failed tool calls by tool and status code",
            ("tool", "code"), registry=self.registry)
        self.latency = Histogram(
            "sandgate_gateway_tool_call_seconds", "Tool call latency by tool", ("tool",),
            buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.rejected = Counter(
            "sandgate_gateway_rejected_requests", "Requests refused before reaching a tool",
            ("reason",), registry=self.registry)
        self.bound_sandboxes = Gauge(
            "sandgate_gateway_bound_sandboxes", "Sandboxes the gateway holds a binding to",
            registry=self.registry)
        self.upstreams_ready = Gauge(
            "sandgate_gateway_upstreams_ready", "Federated upstream MCP servers connected",
            registry=self.registry)
