"""The control plane's domain: create, acquire, pool, pause, reap sandboxes.

No gRPC here, and no backend detail. The servicer translates requests into
these calls and domain errors into status codes; the backend (any
``sandbox_svc.backend.SandboxBackend``: bwrap on this host, Pods on Kubernetes) does
the isolation; the registry makes it all survive a restart and owns the atomic
session bind, so several managers may share one registry. The in-process locks
here only save work (a second start that would lose the bind); correctness
never rests on them.

Shared steps (start, destroy, pause, count) live in ``lifecycle``; background
work (recovery, pools, reaping) in ``upkeep``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from sandbox_svc.backend import SandboxBackend
from sandbox_svc.errors import (
    BackendError,
    InvalidRequestError,
    SandboxNotFoundError,
    SandboxStateError,
    SessionConflictError,
)
from sandbox_svc.events import EventBus, EventType
from sandbox_svc.lifecycle import Lifecycle, Limits
from sandbox_svc.metrics import ControlPlaneMetrics
from sandbox_svc.registry import Registry, SandboxRecord, SandboxStatus, SessionKey
from sandbox_svc.templates import Template, TemplateCatalog
from sandbox_svc.upkeep import PoolView, Upkeep

__all__ = ["Limits", "PoolView", "SandboxManager"]

logger = logging.getLogger(__name__)

# How long an acquire waits for a sandbox that another manager is starting
# for the same session; longer than any backend's own start timeout.
_PEER_START_WAIT_S = 120.0


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
        self._life = Lifecycle(catalog, registry, backend, limits,
                               metrics or ControlPlaneMetrics(), events or EventBus(), clock)
        self._upkeep = Upkeep(self._life)
        self._registry = registry
        self._clock = clock
        self._session_locks: dict[SessionKey, tuple[asyncio.Lock, list[int]]] = {}
        self.catalog = catalog
        self.backend = backend
        self.metrics = self._life.metrics
        self.events = self._life.events

    # ----- start-up and shutdown -------------------------------------------------

    async def start(self) -> None:
        """Re-adopt or reap what a previous process left, then run pool and reaper.

        Raises:
            IsolationUnavailableError: the backend cannot run a template.
            BackendError: the backend cannot tell what is alive or left over.
        """
        for template in self.catalog.all():
            await self.backend.check_template(template)
        await self._upkeep.recover()
        self._upkeep.start()

    async def stop(self, *, delete_all: bool, keep_adopted: bool = False) -> None:
        """Stop the pool and the reaper, optionally delete sandboxes, close the backend.

        Only this instance's sandboxes are ever deleted: those it started and those
        it adopted at start-up. With the state dir's lock held that is every
        sandbox of the registry; a registry shared with other managers keeps theirs.

        Args:
            delete_all: delete this instance's sandboxes.
            keep_adopted: of those, keep the ones adopted from a previous run (an
                instance whose start failed hands them on untouched).

        Raises:
            BackendError: a sandbox could not be deleted.
        """
        await self._upkeep.stop()
        self.events.close()
        if delete_all:
            mine = self._life.created | (set() if keep_adopted else self._life.adopted)
            records = [r for r in await self._registry.all() if r.sandbox_id in mine]
            for start in range(0, len(records), 8):  # a few at a time, bounded
                await asyncio.gather(*(self._life.destroy(r, EventType.DELETED)
                                       for r in records[start:start + 8]))
        await self.backend.close()

    # ----- requests ------------------------------------------------------------------

    async def create(self, tenant: str, template_name: str, ttl_s: float | None = None,
                     labels: dict[str, str] | None = None) -> SandboxRecord:
        """A sandbox for ``tenant``, bound to no session: from the warm pool if it has one.

        A pooled sandbox lacks nothing such a request asks for (its TTL and
        labels are written as it is claimed), so a new one starts only when the
        template's pool is empty; the pool then refills in the background.

        Raises:
            InvalidRequestError: unknown template or ttl out of range.
            SandboxLimitError: max_sandboxes is reached and no pooled one can go.
            BackendError: the sandbox did not start.
        """
        template = self.catalog.get(template_name)
        ttl = self._life.ttl(template, ttl_s)
        now = self._clock()
        claimed = await self._registry.claim_pooled(template.name, tenant, now, now + ttl,
                                                    dict(labels or {}))
        if claimed is not None:
            self._life.refill.set()  # the pool loop also refreshes the gauges, off this path
            self.events.publish(EventType.CREATED, claimed)
            return claimed
        async with self._life.slot():
            record = await self._life.launch(template, tenant=tenant, ttl_s=ttl, labels=labels)
        await self._life.update_gauges()
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
        ttl = self._life.ttl(template, ttl_s)
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
                    async with self._life.slot():
                        record = await self._life.launch(
                            template, tenant=key.tenant, user_id=key.user_id,
                            session_id=key.session_id, ttl_s=ttl)
                except SessionConflictError:
                    continue  # another manager bound the session first: take its sandbox
                self.events.publish(EventType.BOUND, record)
                await self._life.update_gauges()
                return record, True, False
            record = binding.record
            if binding.pool_hit:
                self._life.refill.set()  # the pool loop also refreshes the gauges, off this path
                self.events.publish(EventType.BOUND, record)
                return record, True, True
            if record.status is SandboxStatus.STARTING:
                # Another manager is starting the session's sandbox: wait for it, or
                # for its failure (the record goes away) and then try again.
                await self._await_peer_start(record.sandbox_id, deadline)
                continue
            if record.status is SandboxStatus.PAUSED:
                record = await self._life.set_paused(record, paused=False)
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
        await self._life.destroy(record, EventType.DELETED)
        await self._life.update_gauges()

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
                await self._life.destroy(record, EventType.DELETED)
                released.append(record.sandbox_id)
        await self._life.update_gauges()
        return released

    async def renew(self, tenant: str, sandbox_id: str, ttl_s: float | None) -> SandboxRecord:
        """Mark the sandbox active and let it live ``ttl_s`` more seconds from now.

        Raises:
            SandboxNotFoundError: no such sandbox, or another tenant's.
            InvalidRequestError: ttl out of range, or its template was removed.
        """
        record = await self.get(tenant, sandbox_id)
        ttl = self._life.ttl(self.catalog.get(record.template), ttl_s)
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
        return await self._life.set_paused(record, paused=True)

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
        return await self._life.set_paused(record, paused=False)

    # ----- pools and reaping (the upkeep's, exposed for the servicer and tests) -----

    async def pool_status(self, template: str = "") -> list[PoolView]:
        """Each template's pool (or one template's), counted from the registry.

        Raises:
            TemplateNotFoundError: ``template`` is not in the catalog.
        """
        return await self._upkeep.pool_status(template)

    async def fill_pools(self) -> None:
        """Start what the warm pools miss, as far as max_sandboxes leaves room.

        The pool task calls it whenever a pool may have shrunk; tests call it directly.

        Raises:
            BackendError: a pooled sandbox did not start.
        """
        await self._upkeep.fill_pools()

    async def reap_once(self, now: float | None = None) -> list[str]:
        """Delete expired, idle and dead sandboxes; return their ids.

        Args:
            now: the time to judge expiry and idleness by (the clock's when omitted).

        Raises:
            BackendError: a sandbox could not be destroyed.
        """
        return await self._upkeep.reap_once(now)

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
