"""Prometheus metrics of the control plane (one registry per server)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ControlPlaneMetrics"]


class ControlPlaneMetrics:
    """Acquire latency (pool hit or miss), live and pooled sandboxes, lifecycle outcomes."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.acquire_seconds = Histogram(
            "sandgate_acquire_seconds", "AcquireSandbox latency.", ["template", "pool"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.start_seconds = Histogram(
            "sandgate_sandbox_start_seconds", "Time to start a sandbox until sandboxd answers.",
            ["template"], registry=self.registry,
        )
        self.live = Gauge("sandgate_live_sandboxes", "Live sandboxes, pooled included.",
                          ["template"], registry=self.registry)
        self.pool_ready = Gauge("sandgate_pool_ready", "Ready unbound sandboxes.",
                                ["template"], registry=self.registry)
        self.operations = Counter("sandgate_lifecycle_operations_total",
                                  "Lifecycle operations by outcome.", ["operation", "outcome"],
                                  registry=self.registry)
