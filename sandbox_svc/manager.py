"""The control plane's domain: create, acquire, pool, pause, reap sandboxes.

No gRPC here, and no backend detail. The servicer translates requests into
these calls and domain errors into status codes; the backend (any
``sandbox_svc.backend.SandboxBackend``: bwrap locally, Pods on Kubernetes) does
the isolation; the registry makes it all survive a restart and owns the atomic
session bind, so several managers may share one registry. The in-process locks
here only save work (a second start that would lose the bind); correctness
never rests on them.
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
from sandbox_svc.errors import (
    BackendError,
    InvalidRequestError,
    SandboxLimitError,
    SandboxNotFoundError,
    SandboxStateError,
    SessionConflictError,
)
from sandbox_svc.events import EventBus, EventType
from sandbox_svc.metrics import ControlPlaneMetrics
from sandbox_svc.registry import Registry, SandboxRecord, SandboxStatus, SessionKey
from sandbox_svc.templates import Template, TemplateCatalog

__all__ = ["Limits", "PoolView", "SandboxManager"]

logger = logging.getLogger(__name__)
tracer = trace.get_tracer("sandgate.sandbox_svc")

_MAX_TTL_S = 30 * 86400
# How long an acquire waits for a sandbox that another manager is starting
# for the same session; longer than any backend's own start timeout.
_PEER_START_WAIT_S = 120.0


@dataclass(frozen=True)
class Limits:
    """Bounds the manager enforces, whatever the backend."""

    max_sandboxes: int = 64
    """Most live sandboxes (pooled and starting included) this manager runs."""
    id_prefix: str = "sbx-"
    reap_interval_s: float = 5.0


@dataclass(frozen=True)
class PoolView:
    """One template's warm pool: its target, ready and starting sandboxes."""

    template: str
    target_size: int
    ready: int
    starting: int


class SandboxManager:
    """Owns every sandbox's lifecycle for one service instance.

    Args:
        catalog: the templates this service offers.
        registry: where records live; may be shared with other managers.
        backend: starts and stops the sandboxes; the manager closes it on stop.
        limits: bounds on live sandboxes, id prefix, reap interval.
        metrics: Prometheus metrics (a private registry when omitted).
        events: the lifecycle event bus (a new one when omitted).
        clock: wall-clock seconds (``time.time``); tests inject their own.

    Raises:
        Nothing on construction; see each method.
    """

    def __init__(self, catalog: TemplateCatalog, registry: Registry,
                 backend: SandboxBackend, limits: Limits,
                 metrics: ControlPlaneMetrics | None = None,
                 events: EventBus | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.catalog = catalog
        self._registry = registry
        self.backend = backend
        self._limits = limits
        self.metrics = metrics or ControlPlaneMetrics()
        self.events = events or EventBus()
        self._clock = clock
        self._in_flight = 0  # every start in flight (pooled or not)
        self._slot_lock = asyncio.Lock()
        self._session_locks: dict[SessionKey, tuple[asyncio.Lock, list[int]]] = {}
        self._refill = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # ----- start-up and shutdown -------------------------------------------------

    async def start(self) -> None:
        """Re-adopt or reap what a previous process left, then run pool and reaper.

        Raises:
            IsolationUnavailableError: the backend cannot run a template.
            BackendError: the backend cannot tell what is alive or left over.
        """
        for template in self.catalog.all():
            await self.backend.check_template(template)
        await self._recover()
        self._tasks = [
            asyncio.create_task(self._pool_loop(), name="sandgate-pool"),
            asyncio.create_task(self._reap_loop(), name="sandgate-reaper"),
        ]
        self._refill.set()

    async def stop(self, *, delete_all: bool) -> None:
        """Stop the pool and the reaper, optionally delete every sandbox, close the backend.

        Raises:
            BackendError: a sandbox could not be deleted.
        """
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
        await self.backend.close()

    async def _recover(self) -> None:
        known: set[str] = set()
        for record in await self._registry.all():
            alive = await self.backend.alive(record.sandbox_id)
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
        for orphan in await self.backend.leftovers() - known:
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
        """Register a STARTING record, start the sandbox, mark it READY.

        Raises:
            SessionConflictError: another claimer bound the session first;
                nothing was started.
            SandboxNotFoundError: the sandbox was deleted while it started.
        """
        now = self._clock()
        record = SandboxRecord(
            sandbox_id=f"{self._limits.id_prefix}{secrets.token_hex(5)}",
            template=template.name, token=secrets.token_urlsafe(24),
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
                    StartSpec(record.sandbox_id, template, record.token))
            except BaseException:
                await self._registry.remove(record.sandbox_id)
                self.metrics.operations.labels("start", "error").inc()
                raise
            self.metrics.start_seconds.labels(template.name).observe(
                time.perf_counter() - started)
        record = record.with_changes(status=SandboxStatus.READY, target=target)
        if not await self._registry.update(record):
            await self.backend.destroy(record.sandbox_id)
            raise SandboxNotFoundError(record.sandbox_id)  # deleted while it started
        self.metrics.operations.labels("start", "ok").inc()
        self.events.publish(EventType.CREATED, record)
        return record

    async def create(self, tenant: str, template_name: str, ttl_s: float | None = None,
                     labels: dict[str, str] | None = None) -> SandboxRecord:
        """Start a new sandbox for ``tenant``, bound to no session.

        Raises:
            InvalidRequestError: unknown template or ttl out of range.
            SandboxLimitError: max_sandboxes is reached and no pooled one can go.
            BackendError: the sandbox did not start.
        """
        template = self.catalog.get(template_name)
        ttl = self._ttl(template, ttl_s)
        async with self._slot():
            record = await self._launch(template, tenant=tenant, ttl_s=ttl, labels=labels)
        await self._update_gauges()
        return record

    @contextlib.asynccontextmanager
    async def _session_guard(self, key: SessionKey) -> AsyncIterator[None]:
        """Serialise this manager's acquires of one session key, so a second one does
        not start a sandbox only to lose the registry's bind. An optimisation only:
        the registry keeps several managers correct. The lock lives while anyone
        waits on it."""
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
        """The session's sandbox of this template: (record, newly_bound, pool_hit).

        Idempotent per (tenant, user_id, session_id, template): the first call
        claims a pooled sandbox (or starts one), later calls return the same
        sandbox (resumed if paused), with its activity and expiry refreshed.

        Raises:
            InvalidRequestError: no session id, unknown template, ttl out of range.
            SandboxLimitError: max_sandboxes is reached and no pooled one can go.
            SandboxNotFoundError: the sandbox was deleted while it started.
            BackendError: the sandbox did not start (or resume).
        """
        if not session_id:
            raise InvalidRequestError("session.session_id is required to acquire a sandbox")
        template = self.catalog.get(template_name)
        ttl = self._ttl(template, ttl_s)
        started = time.perf_counter()
        key = SessionKey(tenant, user_id, session_id, template.name)
        async with self._session_guard(key):
            result = await self._bind(template, key, ttl)
        record, newly_bound, pool_hit = result
        if newly_bound:
            self.metrics.acquire_seconds.labels(
                template.name, "hit" if pool_hit else "miss").observe(
                time.perf_counter() - started)
        return result

    async def _bind(self, template: Template, key: SessionKey,
                    ttl: float) -> tuple[SandboxRecord, bool, bool]:
        deadline = time.monotonic() + _PEER_START_WAIT_S
        while True:
            if time.monotonic() > deadline:
                raise BackendError(f"session {key} found no sandbox within "
                                   f"{_PEER_START_WAIT_S:.0f}s; try again later")
            now = self._clock()
            binding = await self._registry.bind_session(key, now, now + ttl)
            if binding is None:
                try:
                    async with self._slot():
                        record = await self._launch(
                            template, tenant=key.tenant, user_id=key.user_id,
                            session_id=key.session_id, ttl_s=ttl)
                except SessionConflictError:
                    continue  # another manager bound the session first: take its sandbox
                self.events.publish(EventType.BOUND, record)
                await self._update_gauges()
                return record, True, False
            record = binding.record
            if binding.pool_hit:
                self._refill.set()  # the pool loop also refreshes the gauges, off this path
                self.events.publish(EventType.BOUND, record)
                return record, True, True
            if record.status is SandboxStatus.STARTING:
                # Another manager is starting the session's sandbox: wait for it, or
                # for its failure (the record goes away) and then try again.
                await self._await_peer_start(record.sandbox_id, deadline)
                continue
            if record.status is SandboxStatus.PAUSED:
                record = await self._set_paused(record, paused=False)
            return record, False, False

    async def _await_peer_start(self, sandbox_id: str, deadline: float) -> None:
        delay = 0.005
        while (record := await self._registry.get(sandbox_id)) is not None \
                and record.status is SandboxStatus.STARTING:
            if time.monotonic() > deadline:
                raise BackendError(f"sandbox {sandbox_id} is still starting after "
                                   f"{_PEER_START_WAIT_S:.0f}s; try again later")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)

    async def get(self, tenant: str, sandbox_id: str) -> SandboxRecord:
        """The tenant's sandbox with this id.

        Raises:
            SandboxNotFoundError: no such sandbox, or another tenant's.
        """
        record = await self._registry.get(sandbox_id)
        if record is None or record.tenant != tenant:
            raise SandboxNotFoundError(sandbox_id)
        return record

    async def list_sandboxes(self, tenant: str, template: str = "") -> list[SandboxRecord]:
        """The tenant's sandboxes, of one template if given.

        Raises:
            TemplateNotFoundError: ``template`` is not in the catalog.
        """
        if template:
            self.catalog.get(template)
        return [r for r in await self._registry.all()
                if r.tenant == tenant and (not template or r.template == template)]

    async def delete(self, tenant: str, sandbox_id: str) -> None:
        """Destroy the tenant's sandbox and forget it.

        Raises:
            SandboxNotFoundError: no such sandbox, or another tenant's.
            BackendError: the backend could not remove it.
        """
        record = await self.get(tenant, sandbox_id)
        await self._destroy(record, EventType.DELETED)
        await self._update_gauges()

    async def release_session(self, tenant: str, user_id: str, session_id: str,
                              template: str = "") -> list[str]:
        """Delete the session's sandboxes (of one template if given); return their ids.

        Raises:
            InvalidRequestError: no session id, or an unknown template.
            BackendError: the backend could not remove one.
        """
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
        """Mark the sandbox active and let it live ``ttl_s`` more seconds from now.

        Raises:
            SandboxNotFoundError: no such sandbox, or another tenant's.
            InvalidRequestError: ttl out of range, or its template was removed.
        """
        record = await self.get(tenant, sandbox_id)
        ttl = self._ttl(self.catalog.get(record.template), ttl_s)
        now = self._clock()
        record = record.with_changes(last_active_at=now, expires_at=now + ttl)
        if not await self._registry.update(record):
            raise SandboxNotFoundError(sandbox_id)
        return record

    async def pause(self, tenant: str, sandbox_id: str) -> SandboxRecord:
        """Freeze a ready sandbox.

        Raises:
            SandboxNotFoundError: no such sandbox, or another tenant's.
            SandboxStateError: it is not ready (PauseUnsupportedError: the
                backend cannot pause).
            BackendError: the backend failed to pause it.
        """
        record = await self.get(tenant, sandbox_id)
        if record.status is not SandboxStatus.READY:
            raise SandboxStateError(
                f"sandbox {sandbox_id} is {record.status.value}; only a ready sandbox can pause")
        return await self._set_paused(record, paused=True)

    async def resume(self, tenant: str, sandbox_id: str) -> SandboxRecord:
        """Let a paused sandbox run again.

        Raises:
            SandboxNotFoundError: no such sandbox, or another tenant's.
            SandboxStateError: it is not paused.
            BackendError: the backend failed to resume it.
        """
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
            last_active_at=self._clock())
        if not await self._registry.update(record):
            raise SandboxNotFoundError(record.sandbox_id)
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
        self._refill.set()  # a pooled sandbox to replace, or room for a pool that waits

    # ----- pools -------------------------------------------------------------------

    async def pool_status(self, template: str = "") -> list[PoolView]:
        """Each template's pool (or one template's), counted from the registry.

        Raises:
            TemplateNotFoundError: ``template`` is not in the catalog.
        """
        templates = [self.catalog.get(template)] if template else self.catalog.all()
        records = await self._registry.all()
        views = []
        for t in templates:
            pooled = [r for r in records if r.pooled and r.template == t.name]
            views.append(PoolView(
                t.name, t.pool_size,
                ready=sum(r.status is SandboxStatus.READY for r in pooled),
                starting=sum(r.status is SandboxStatus.STARTING for r in pooled)))
        return views

    async def _pool_loop(self) -> None:
        while True:
            await self._refill.wait()
            self._refill.clear()
            try:
                await self._update_gauges()
                await self.fill_pools()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("refilling warm pools failed; retrying in 1 s")
                await asyncio.sleep(1.0)
                self._refill.set()

    async def fill_pools(self) -> None:
        """Start what the warm pools miss, as far as max_sandboxes leaves room.

        The pool task calls it whenever a pool may have shrunk; tests call it directly.

        Raises:
            BackendError: a pooled sandbox did not start.
        """
        for view in await self.pool_status():
            missing = view.target_size - view.ready - view.starting
            for _ in range(max(missing, 0)):
                async with self._slot_lock:
                    if await self._live() >= self._limits.max_sandboxes:
                        return  # the pool never evicts; it waits for room
                    self._in_flight += 1
                try:
                    await self._launch(self.catalog.get(view.template), tenant="")
                finally:
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
        """Delete expired, idle and dead sandboxes; return their ids.

        Args:
            now: the time to judge expiry and idleness by (the clock's when omitted).

        Raises:
            BackendError: a sandbox could not be destroyed.
        """
        now = self._clock() if now is None else now
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
            try:
                dead = not await self.backend.alive(record.sandbox_id)
            except BackendError as exc:  # unknown is not dead: judge it next round
                logger.warning("cannot tell whether sandbox %s is alive: %s",
                               record.sandbox_id, exc)
                dead = False
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
        """Lifecycle events of the tenant's sandboxes: (type, record, time).

        Raises:
            Nothing: the stream ends when the bus closes or drops a slow subscriber.
        """
        async for event in self.events.subscribe():
            record = event.record
            if record.tenant == tenant and (not template or record.template == template):
                yield event.type, record, event.time
