"""The control plane's domain: create, acquire, pool, pause, reap sandboxes.

No gRPC here. The servicer translates requests into these calls and domain
errors into status codes; the backend (bwrap locally, Pods on Kubernetes)
does the isolation; the registry makes it all survive a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from opentelemetry import trace

from sandbox_svc.errors import (
    InvalidRequestError,
    SandboxLimitError,
    SandboxNotFoundError,
    SandboxStateError,
)
from sandbox_svc.events import EventBus, EventType
from sandbox_svc.isolation import Isolation
from sandbox_svc.local.backend import LaunchSpec
from sandbox_svc.metrics import ControlPlaneMetrics
from sandbox_svc.registry import Registry, SandboxRecord, SandboxStatus
from sandbox_svc.templates import Template, TemplateCatalog

__all__ = ["Limits", "PoolView", "SandboxBackend", "SandboxManager"]

logger = logging.getLogger(__name__)
tracer = trace.get_tracer("sandgate.sandbox_svc")

_MAX_TTL_S = 30 * 86400


class SandboxBackend(Protocol):
    """What the manager needs from an isolation backend."""

    async def start(self, spec: LaunchSpec) -> str: ...
    async def destroy(self, sandbox_id: str) -> None: ...
    async def pause(self, sandbox_id: str) -> None: ...
    async def resume(self, sandbox_id: str) -> None: ...
    async def probe(self, sandbox_id: str, timeout: float = 2.0) -> bool: ...
    def has_processes(self, sandbox_id: str) -> bool: ...
    def leftovers(self) -> set[str]: ...
    def close(self) -> None: ...
    def check_template(self, template: Template) -> None: ...
    def isolation(self, template: Template) -> Isolation: ...


@dataclass(frozen=True)
class Limits:
    max_sandboxes: int = 64
    uid_base: int = 200_000
    id_prefix: str = "sbx-"
    reap_interval_s: float = 5.0


@dataclass(frozen=True)
class PoolView:
    template: str
    target_size: int
    ready: int
    starting: int


class SandboxManager:
    """Owns every sandbox's lifecycle for one service instance."""

    def __init__(self, catalog: TemplateCatalog, registry: Registry,
                 backend: SandboxBackend, limits: Limits,
                 metrics: ControlPlaneMetrics | None = None,
                 events: EventBus | None = None) -> None:
        self.catalog = catalog
        self._registry = registry
        self.backend = backend
        self._limits = limits
        self.metrics = metrics or ControlPlaneMetrics()
        self.events = events or EventBus()
        self._starting: dict[str, int] = {}  # pooled starts in flight, per template
        self._in_flight = 0  # every start in flight (pooled or not)
        self._slot_lock = asyncio.Lock()
        self._session_locks: dict[tuple[str, str, str, str],
                                  tuple[asyncio.Lock, list[int]]] = {}
        self._refill = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # ----- start-up and shutdown -------------------------------------------------

    async def start(self) -> None:
        """Re-adopt or reap what a previous process left, then run pool and reaper."""
        for template in self.catalog.all():
            self.backend.check_template(template)
        await self._recover()
        self._tasks = [
            asyncio.create_task(self._pool_loop(), name="sandgate-pool"),
            asyncio.create_task(self._reap_loop(), name="sandgate-reaper"),
        ]
        self._refill.set()

    async def stop(self, *, delete_all: bool) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self.events.close()
        if delete_all:
            records = await self._registry.all()
            for start in range(0, len(records), 8):  # a few at a time, bounded
                await asyncio.gather(*(self._destroy(r, EventType.DELETED)
                                       for r in records[start:start + 8]))
        self.backend.close()

    async def _recover(self) -> None:
        await self._registry.clear_reservations()
        known: set[str] = set()
        for record in await self._registry.all():
            alive = self.backend.has_processes(record.sandbox_id)
            if alive and record.status is SandboxStatus.READY:
                alive = await self.backend.probe(record.sandbox_id)
            if alive and record.status is not SandboxStatus.STARTING:
                known.add(record.sandbox_id)
                self.events.publish(EventType.ADOPTED, record)
                logger.info("adopted sandbox %s (%s)", record.sandbox_id, record.template)
            else:
                logger.warning("reaping sandbox %s left %s by a previous run",
                               record.sandbox_id, record.status.value)
                await self._destroy(record, EventType.DELETED)
        for orphan in self.backend.leftovers() - known:
            logger.warning("removing leftover sandbox resources %s", orphan)
            await self.backend.destroy(orphan)
        await self._update_gauges()

    # ----- lifecycle ---------------------------------------------------------------

    def _ttl(self, template: Template, ttl_s: float | None) -> float:
        if ttl_s is None or ttl_s == 0:
            return float(template.default_ttl_s)
        if not 1 <= ttl_s <= _MAX_TTL_S:
            raise InvalidRequestError(f"ttl must be between 1 s and {_MAX_TTL_S} s, got {ttl_s}")
        return ttl_s

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        """Hold one of max_sandboxes for a start, evicting a pooled sandbox if needed."""
        async with self._slot_lock:
            if await self._live() >= self._limits.max_sandboxes:
                await self._evict_one_pooled()
            self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1

    async def _live(self) -> int:
        """Sandboxes that exist or are being started; a start is counted once, as in flight
        (its STARTING registry row is not counted again)."""
        records = await self._registry.all()
        return sum(r.status is not SandboxStatus.STARTING for r in records) + self._in_flight

    async def _evict_one_pooled(self) -> None:
        for record in await self._registry.all():
            if record.pooled and record.status is SandboxStatus.READY:
                await self._destroy(record, EventType.DELETED)
                return
        raise SandboxLimitError(
            f"the limit of {self._limits.max_sandboxes} live sandboxes is reached; "
            "delete or release sandboxes, or raise SANDGATE_MAX_SANDBOXES"
        )

    async def _launch(self, template: Template, *, tenant: str, user_id: str = "",
                      session_id: str = "", ttl_s: float | None = None,
                      labels: dict[str, str] | None = None) -> SandboxRecord:
        uid = await self._registry.allocate_uid(self._limits.uid_base,
                                                self._limits.max_sandboxes)
        if uid is None:
            raise SandboxLimitError("no free sandbox uid left; delete sandboxes first")
        now = time.time()
        record = SandboxRecord(
            sandbox_id=f"{self._limits.id_prefix}{secrets.token_hex(5)}",
            template=template.name, uid=uid, token=secrets.token_urlsafe(24),
            status=SandboxStatus.STARTING, created_at=now, last_active_at=now,
            tenant=tenant, user_id=user_id, session_id=session_id,
            expires_at=None if not tenant else now + (ttl_s or template.default_ttl_s),
            labels=dict(labels or {}),
        )
        with tracer.start_as_current_span("sandbox.start") as span:
            span.set_attribute("sandgate.sandbox_id", record.sandbox_id)
            span.set_attribute("sandgate.template", template.name)
            await self._registry.insert(record)
            started = time.perf_counter()
            try:
                target = await self.backend.start(
                    LaunchSpec(record.sandbox_id, template, uid, record.token))
            except BaseException:
                await self._registry.remove(record.sandbox_id)
                self.metrics.operations.labels("start", "error").inc()
                raise
            self.metrics.start_seconds.labels(template.name).observe(
                time.perf_counter() - started)
        record = record.with_changes(status=SandboxStatus.READY, target=target)
        await self._registry.update(record)
        self.metrics.operations.labels("start", "ok").inc()
        self.events.publish(EventType.CREATED, record)
        return record

    async def create(self, tenant: str, template_name: str, ttl_s: float | None = None,
                     labels: dict[str, str] | None = None) -> SandboxRecord:
        template = self.catalog.get(template_name)
        ttl = self._ttl(template, ttl_s)
        async with self._slot():
            record = await self._launch(template, tenant=tenant, ttl_s=ttl, labels=labels)
        await self._update_gauges()
        return record

    @contextlib.asynccontextmanager
    async def _session_guard(self, key: tuple[str, str, str, str]) -> AsyncIterator[None]:
        """Serialise acquires of one session key; the lock lives while anyone waits on it."""
        entry = self._session_locks.setdefault(key, (asyncio.Lock(), [0]))
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                self._session_locks.pop(key, None)

    async def acquire(self, tenant: str, user_id: str, session_id: str, template_name: str,
                      ttl_s: float | None = None) -> tuple[SandboxRecord, bool, bool]:
        """The session's sandbox of this template: (record, newly_bound, pool_hit)."""
        if not session_id:
            raise InvalidRequestError("session.session_id is required to acquire a sandbox")
        template = self.catalog.get(template_name)
        ttl = self._ttl(template, ttl_s)
        started = time.perf_counter()
        key = (tenant, user_id, session_id, template.name)
        async with self._session_guard(key):
            result = await self._acquire_locked(template, tenant, user_id, session_id, ttl)
        record, newly_bound, pool_hit = result
        if newly_bound:
            self.metrics.acquire_seconds.labels(
                template.name, "hit" if pool_hit else "miss").observe(
                time.perf_counter() - started)
        return result

    async def _acquire_locked(self, template: Template, tenant: str, user_id: str,
                              session_id: str, ttl: float) -> tuple[SandboxRecord, bool, bool]:
        now = time.time()
        existing = await self._registry.find_session(tenant, user_id, session_id, template.name)
        if existing is not None:
            if existing.status is SandboxStatus.PAUSED:
                existing = await self._set_paused(existing, paused=False)
            existing = existing.with_changes(last_active_at=now, expires_at=max(
                existing.expires_at or 0.0, now + ttl))
            await self._registry.update(existing)
            return existing, False, False
        claimed = await self._registry.claim_pooled(
            template.name, tenant, user_id, session_id, now, now + ttl)
        if claimed is not None:
            self._refill.set()  # the pool loop also refreshes the gauges, off this path
            self.events.publish(EventType.BOUND, claimed)
            return claimed, True, True
        async with self._slot():
            record = await self._launch(template, tenant=tenant, user_id=user_id,
                                        session_id=session_id, ttl_s=ttl)
        self.events.publish(EventType.BOUND, record)
        await self._update_gauges()
        return record, True, False

    async def get(self, tenant: str, sandbox_id: str) -> SandboxRecord:
        record = await self._registry.get(sandbox_id)
        if record is None or record.tenant != tenant:
            raise SandboxNotFoundError(sandbox_id)
        return record

    async def list_sandboxes(self, tenant: str, template: str = "") -> list[SandboxRecord]:
        if template:
            self.catalog.get(template)
        return [r for r in await self._registry.all()
                if r.tenant == tenant and (not template or r.template == template)]

    async def delete(self, tenant: str, sandbox_id: str) -> None:
        record = await self.get(tenant, sandbox_id)
        await self._destroy(record, EventType.DELETED)
        await self._update_gauges()

    async def release_session(self, tenant: str, user_id: str, session_id: str,
                              template: str = "") -> list[str]:
        if not session_id:
            raise InvalidRequestError("session.session_id is required to release a session")
        if template:
            self.catalog.get(template)
        released = []
        for record in await self._registry.all():
            if (record.tenant, record.user_id, record.session_id) == (
                    tenant, user_id, session_id) and (not template or record.template == template):
                await self._destroy(record, EventType.DELETED)
                released.append(record.sandbox_id)
        await self._update_gauges()
        return released

    async def renew(self, tenant: str, sandbox_id: str, ttl_s: float | None) -> SandboxRecord:
        record = await self.get(tenant, sandbox_id)
        ttl = self._ttl(self.catalog.get(record.template), ttl_s)
        now = time.time()
        record = record.with_changes(last_active_at=now, expires_at=now + ttl)
        await self._registry.update(record)
        return record

    async def pause(self, tenant: str, sandbox_id: str) -> SandboxRecord:
        record = await self.get(tenant, sandbox_id)
        if record.status is not SandboxStatus.READY:
            raise SandboxStateError(
                f"sandbox {sandbox_id} is {record.status.value}; only a ready sandbox can pause")
        return await self._set_paused(record, paused=True)

    async def resume(self, tenant: str, sandbox_id: str) -> SandboxRecord:
        record = await self.get(tenant, sandbox_id)
        if record.status is not SandboxStatus.PAUSED:
            raise SandboxStateError(
                f"sandbox {sandbox_id} is {record.status.value}; only a paused sandbox can resume")
        return await self._set_paused(record, paused=False)

    async def _set_paused(self, record: SandboxRecord, *, paused: bool) -> SandboxRecord:
        with tracer.start_as_current_span("sandbox.pause" if paused else "sandbox.resume"):
            if paused:
                await self.backend.pause(record.sandbox_id)
            else:
                await self.backend.resume(record.sandbox_id)
        record = record.with_changes(
            status=SandboxStatus.PAUSED if paused else SandboxStatus.READY,
            last_active_at=time.time())
        await self._registry.update(record)
        self.metrics.operations.labels("pause" if paused else "resume", "ok").inc()
        self.events.publish(EventType.PAUSED if paused else EventType.RESUMED, record)
        return record

    async def _destroy(self, record: SandboxRecord, event: EventType) -> None:
        with tracer.start_as_current_span("sandbox.delete") as span:
            span.set_attribute("sandgate.sandbox_id", record.sandbox_id)
            await self.backend.destroy(record.sandbox_id)
            await self._registry.remove(record.sandbox_id)
        self.metrics.operations.labels("delete", event.value).inc()
        self.events.publish(event, record)
        if record.pooled:
            self._refill.set()

    # ----- pools -------------------------------------------------------------------

    async def pool_status(self, template: str = "") -> list[PoolView]:
        templates = [self.catalog.get(template)] if template else self.catalog.all()
        records = await self._registry.all()
        views = []
        for t in templates:
            ready = sum(1 for r in records if r.pooled and r.template == t.name
                        and r.status is SandboxStatus.READY)
            views.append(PoolView(t.name, t.pool_size, ready, self._starting.get(t.name, 0)))
        return views

    async def _pool_loop(self) -> None:
        while True:
            await self._refill.wait()
            self._refill.clear()
            try:
                await self._update_gauges()
                await self._fill_pools()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("refilling warm pools failed; retrying in 1 s")
                await asyncio.sleep(1.0)
                self._refill.set()

    async def _fill_pools(self) -> None:
        for view in await self.pool_status():
            missing = view.target_size - view.ready - view.starting
            for _ in range(max(missing, 0)):
                async with self._slot_lock:
                    if await self._live() >= self._limits.max_sandboxes:
                        return  # the pool never evicts; it waits for room
                    self._in_flight += 1
                template = self.catalog.get(view.template)
                self._starting[template.name] = self._starting.get(template.name, 0) + 1
                try:
                    await self._launch(template, tenant="")
                finally:
                    self._starting[template.name] -= 1
                    self._in_flight -= 1
                await self._update_gauges()

    # ----- reaping -----------------------------------------------------------------

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(self._limits.reap_interval_s)
            try:
                await self.reap_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("reaping sandboxes failed")

    async def reap_once(self, now: float | None = None) -> list[str]:
        """Delete expired, idle and dead sandboxes; return their ids."""
        now = time.time() if now is None else now
        reaped = []
        for record in await self._registry.all():
            if record.status is SandboxStatus.STARTING:
                continue
            # A template removed from the config since the sandbox started: reap it.
            template = (self.catalog.get(record.template)
                        if record.template in self.catalog.names() else None)
            expired = record.expires_at is not None and now > record.expires_at
            idle = (not record.pooled and template is not None
                    and now - record.last_active_at > template.idle_timeout_s)
            dead = not self.backend.has_processes(record.sandbox_id)
            if expired or idle or dead or template is None:
                reason = "dead" if dead else "expired" if expired else "idle"
                logger.info("reaping sandbox %s (%s)", record.sandbox_id, reason)
                await self._destroy(record, EventType.EXPIRED)
                reaped.append(record.sandbox_id)
        if reaped:
            await self._update_gauges()
        return reaped

    async def _update_gauges(self) -> None:
        records = await self._registry.all()
        for name in self.catalog.names():
            mine = [r for r in records if r.template == name]
            self.metrics.live.labels(name).set(len(mine))
            self.metrics.pool_ready.labels(name).set(
                sum(1 for r in mine if r.pooled and r.status is SandboxStatus.READY))

    async def watch(self, tenant: str, template: str = "") -> AsyncIterator[
            tuple[EventType, SandboxRecord, float]]:
        async for event in self.events.subscribe():
            record = event.record
            if record.tenant == tenant and (not template or record.template == template):
                yield event.type, record, event.time
