"""The steps every control-plane path shares: start, destroy, pause, count.

:class:`Lifecycle` pairs each backend call with its registry write, its span,
metrics and event, and holds the accounting of ``max_sandboxes``. The manager
(requests) and the upkeep (pools, reaper, recovery) both act through it. No
gRPC, no backend detail: the backend is any ``SandboxBackend``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from opentelemetry import trace

from sandbox_svc.backend import SandboxBackend, StartSpec
from sandbox_svc.errors import InvalidRequestError, SandboxLimitError, SandboxNotFoundError
from sandbox_svc.events import EventBus, EventType
from sandbox_svc.metrics import ControlPlaneMetrics
from sandbox_svc.registry import Registry, SandboxRecord, SandboxStatus
from sandbox_svc.templates import Template, TemplateCatalog

__all__ = ["Lifecycle", "Limits"]

logger = logging.getLogger(__name__)
tracer = trace.get_tracer("sandgate.sandbox_svc")

_MAX_TTL_S = 30 * 86400


@dataclass(frozen=True)
class Limits:
    """Bounds the manager enforces, whatever the backend."""

    max_sandboxes: int = 64
    """Most live sandboxes (pooled and starting included) this manager runs."""
    id_prefix: str = "sbx-"
    reap_interval_s: float = 5.0
    sole_user: bool = False
    """No other manager uses the registry (the local state dir's lock is held): a
    STARTING record found at start-up is a dead run's, never a peer's start in flight."""


class Lifecycle:
    """Start, destroy, pause and count sandboxes: backend, registry, metrics, events.

    Raises:
        Nothing on construction; see each method.
    """

    def __init__(self, catalog: TemplateCatalog, registry: Registry, backend: SandboxBackend,
                 limits: Limits, metrics: ControlPlaneMetrics, events: EventBus,
                 clock: Callable[[], float]) -> None:
        self.catalog = catalog
        self.registry = registry
        self.backend = backend
        self.limits = limits
        self.metrics = metrics
        self.events = events
        self.clock = clock
        self.refill = asyncio.Event()
        """Set when a pool may be short or room for one may have appeared."""
        self.created: set[str] = set()
        """Ids this instance started and has not destroyed yet."""
        self.adopted: set[str] = set()
        """Ids this instance adopted from a previous run at start-up (see Upkeep.recover)."""
        self._in_flight = 0  # every start in flight (pooled or not)
        self._slot_lock = asyncio.Lock()

    def ttl(self, template: Template, ttl_s: float | None) -> float:
        """The lifetime to give: the template's default when ``ttl_s`` is unset or 0.

        Raises:
            InvalidRequestError: ``ttl_s`` is outside [1 s, 30 days].
        """
        if ttl_s is None or ttl_s == 0:
            return float(template.default_ttl_s)
        if not 1 <= ttl_s <= _MAX_TTL_S:
            raise InvalidRequestError(f"ttl must be between 1 s and {_MAX_TTL_S} s, got {ttl_s}")
        return ttl_s

    @contextlib.asynccontextmanager
    async def slot(self, *, evict: bool = True) -> AsyncIterator[None]:
        """Hold one of max_sandboxes for a start.

        Args:
            evict: when full, delete the oldest ready pooled sandbox to make room.

        Raises:
            SandboxLimitError: full, and nothing could (or might) be evicted.
        """
        async with self._slot_lock:
            if await self._live() >= self.limits.max_sandboxes:
                if not evict or not await self._evict_one_pooled():
                    raise SandboxLimitError(
                        f"the limit of {self.limits.max_sandboxes} live sandboxes is reached; "
                        "delete or release sandboxes, or raise SANDGATE_MAX_SANDBOXES")
            self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1

    async def _live(self) -> int:
        """Sandboxes that exist or are being started; a start is counted once, as in flight
        (its STARTING registry row is not counted again)."""
        records = await self.registry.all()
        return sum(r.status is not SandboxStatus.STARTING for r in records) + self._in_flight

    async def _evict_one_pooled(self) -> bool:
        for record in await self.registry.all():
            if record.pooled and record.status is SandboxStatus.READY:
                await self.destroy(record, EventType.DELETED)
                return True
        return False

    async def launch(self, template: Template, *, tenant: str, user_id: str = "",
                     session_id: str = "", ttl_s: float | None = None,
                     labels: dict[str, str] | None = None) -> SandboxRecord:
        """Register a STARTING record, start the sandbox, mark it READY.

        Call it inside :meth:`slot`. An empty ``tenant`` starts a pooled sandbox.

        Raises:
            SessionConflictError: another claimer bound the session first;
                nothing was started.
            SandboxNotFoundError: the sandbox was deleted while it started.
            SandboxLimitError: the backend has no room.
            BackendError: the sandbox did not start; its record is gone.
        """
        now = self.clock()
        record = SandboxRecord(
            sandbox_id=f"{self.limits.id_prefix}{secrets.token_hex(5)}",
            template=template.name, token=secrets.token_urlsafe(24),
            status=SandboxStatus.STARTING, created_at=now, last_active_at=now,
            tenant=tenant, user_id=user_id, session_id=session_id,
            expires_at=None if not tenant else now + (ttl_s or template.default_ttl_s),
            labels=dict(labels or {}),
        )
        with tracer.start_as_current_span("sandbox.start") as span:
            span.set_attribute("sandgate.sandbox_id", record.sandbox_id)
            span.set_attribute("sandgate.template", template.name)
            await self.registry.insert(record)
            self.created.add(record.sandbox_id)
            started = time.perf_counter()
            try:
                target = await self.backend.start(
                    StartSpec(record.sandbox_id, template, record.token,
                              warm_kernel=template.warm_kernel and record.pooled))
            except BaseException:
                self.created.discard(record.sandbox_id)
                await self.registry.remove(record.sandbox_id)
                self.metrics.operations.labels("start", "error").inc()
                raise
            self.metrics.start_seconds.labels(template.name).observe(
                time.perf_counter() - started)
        record = record.with_changes(status=SandboxStatus.READY, target=target)
        if not await self.registry.update(record):
            self.created.discard(record.sandbox_id)
            await self.backend.destroy(record.sandbox_id)
            raise SandboxNotFoundError(record.sandbox_id)  # deleted while it started
        self.metrics.operations.labels("start", "ok").inc()
        self.events.publish(EventType.CREATED, record)
        return record

    async def set_paused(self, record: SandboxRecord, *, paused: bool) -> SandboxRecord:
        """Pause or resume the sandbox and record its new status.

        Raises:
            PauseUnsupportedError: the backend cannot pause.
            BackendError: the backend failed to act.
            SandboxNotFoundError: the record went away meanwhile.
        """
        with tracer.start_as_current_span("sandbox.pause" if paused else "sandbox.resume"):
            if paused:
                await self.backend.pause(record.sandbox_id)
            else:
                await self.backend.resume(record.sandbox_id)
        record = record.with_changes(
            status=SandboxStatus.PAUSED if paused else SandboxStatus.READY,
            last_active_at=self.clock())
        if not await self.registry.update(record):
            raise SandboxNotFoundError(record.sandbox_id)
        self.metrics.operations.labels("pause" if paused else "resume", "ok").inc()
        self.events.publish(EventType.PAUSED if paused else EventType.RESUMED, record)
        return record

    async def destroy(self, record: SandboxRecord, event: EventType) -> None:
        """Destroy the sandbox, forget its record, publish ``event``.

        Raises:
            BackendError: the backend could not remove it (the record stays).
        """
        with tracer.start_as_current_span("sandbox.delete") as span:
            span.set_attribute("sandgate.sandbox_id", record.sandbox_id)
            await self.backend.destroy(record.sandbox_id)
            await self.registry.remove(record.sandbox_id)
        self.created.discard(record.sandbox_id)
        self.adopted.discard(record.sandbox_id)
        self.metrics.operations.labels("delete", event.value).inc()
        self.events.publish(event, record)
        self.refill.set()  # a pooled sandbox to replace, or room for a pool that waits

    async def update_gauges(self) -> None:
        """Refresh the live and pool-ready gauges from the registry. Raises: nothing."""
        records = await self.registry.all()
        for name in self.catalog.names():
            mine = [r for r in records if r.template == name]
            self.metrics.live.labels(name).set(len(mine))
            self.metrics.pool_ready.labels(name).set(
                sum(1 for r in mine if r.pooled and r.status is SandboxStatus.READY))
