"""Traces of agent runs: a span ``agent.run`` per run, continuing the caller's trace.

The W3C trace context comes from the HTTP headers (``traceparent``) or gRPC
metadata of the request, so a client's trace continues through the run and on
into the tool gateway (the ReAct agent's gRPC calls carry it further).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context

__all__ = ["extract_context", "tracer_for"]

_TRACE_KEYS = ("traceparent", "tracestate", "baggage")


def tracer_for(provider: trace.TracerProvider | None = None) -> trace.Tracer:
    """The agent service's tracer, from ``provider`` or the global one."""
    return trace.get_tracer("sandgate.agent", tracer_provider=provider)


def extract_context(headers: Mapping[str, str] | Iterable[tuple[str, str | bytes]]
                    ) -> Context | None:
    """The caller's trace context from HTTP headers or gRPC metadata, if it sent one."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    carrier = {k.lower(): v if isinstance(v, str) else v.decode(errors="replace")
               for k, v in items if k.lower() in _TRACE_KEYS}
    if "traceparent" not in carrier:
        return None
    return propagate.extract(carrier)
