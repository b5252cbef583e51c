"""Background work of the control plane: recovery, warm pools, reaping.

Runs beside the request path, acting through the same
:class:`~sandbox_svc.lifecycle.Lifecycle`. Every judgement takes its time from
the injected clock, so tests call :meth:`Upkeep.reap_once` with ``now``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sandbox_svc.errors import BackendError, SandboxLimitError
from sandbox_svc.events import EventType
from sandbox_svc.lifecycle import Lifecycle
from sandbox_svc.registry import SandboxStatus

__all__ = ["STARTING_GRACE_S", "PoolView", "Upkeep"]

logger = logging.getLogger(__name__)

STARTING_GRACE_S = 150.0
"""A STARTING record younger than this may be another replica's start in flight
(a registry several replicas share): recovery leaves it, and the reaper removes
it only once older, as no start takes this long (the manager waits 120 s for a
peer's start; backends time out sooner)."""
_POOL_RETRY_FIRST_S = 1.0
_POOL_RETRY_MAX_S = 60.0


@dataclass(frozen=True)
class PoolView:
    """One template's warm pool: its target, ready and starting sandboxes."""

    template: str
    target_size: int
    ready: int
    starting: int


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class Upkeep:
    """Re-adopts after a restart, keeps pools warm, reaps what should go.

    Raises:
        Nothing on construction; see each method.
    """

    def __init__(self, life: Lifecycle) -> None:
        self._life = life
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Run the pool and reaper tasks. Raises: nothing."""
        self._tasks = [
            asyncio.create_task(self._pool_loop(), name="sandgate-pool"),
            asyncio.create_task(self._reap_loop(), name="sandgate-reaper"),
        ]
        self._life.refill.set()

    async def stop(self) -> None:
        """Cancel the tasks and wait for them. Raises: nothing."""
        for task in self._tasks:
            task.cancel()
        # gather, not a suppressed await per task: a caller's own cancellation
        # (a stop with a deadline) must still reach the caller.
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def recover(self) -> None:
        """Adopt live sandboxes a previous run left; reap dead ones and orphans.

        Raises:
            BackendError: the backend cannot tell what is alive or left over.
        """
        life = self._life
        known: set[str] = set()
        now = life.clock()
        for record in await life.registry.all():
            if record.status is SandboxStatus.STARTING and not life.limits.sole_user and \
                    now - record.created_at < STARTING_GRACE_S:
                known.add(record.sandbox_id)  # maybe a peer's start: the reaper judges it later
                continue
            alive = await life.backend.alive(record.sandbox_id)
            if alive and record.status is SandboxStatus.READY:
                alive = await life.backend.probe(record.sandbox_id)
            if alive and record.status is not SandboxStatus.STARTING:
                known.add(record.sandbox_id)
                life.adopted.add(record.sandbox_id)
                life.events.publish(EventType.ADOPTED, record)
                logger.info("adopted sandbox %s (%s)", record.sandbox_id, record.template)
            else:
                logger.warning("reaping sandbox %s left %s by a previous run",
                               record.sandbox_id, record.status.value)
                await life.destroy(record, EventType.DELETED)
        for orphan in await life.backend.leftovers() - known:
            logger.warning("removing leftover sandbox resources %s", orphan)
            await life.backend.destroy(orphan)
        await life.update_gauges()

    # ----- pools -------------------------------------------------------------------

    async def pool_status(self, template: str = "") -> list[PoolView]:
        """Each template's pool (or one template's), counted from the registry.

        Raises:
            TemplateNotFoundError: ``template`` is not in the catalog.
        """
        catalog = self._life.catalog
        templates = [catalog.get(template)] if template else catalog.all()
        records = await self._life.registry.all()
        views = []
        for t in templates:
            pooled = [r for r in records if r.pooled and r.template == t.name]
            views.append(PoolView(
                t.name, t.pool_size,
                ready=sum(r.status is SandboxStatus.READY for r in pooled),
                starting=sum(r.status is SandboxStatus.STARTING for r in pooled)))
        return views

    async def fill_pools(self) -> None:
        """Start what the warm pools miss, as far as max_sandboxes leaves room.

        Raises:
            BackendError: a pooled sandbox did not start.
        """
        for template in self._life.catalog.all():
            # Counted again before each start, not once: managers sharing the
            # registry refill the same pool, and a count taken before a long
            # start would make each of them start what the others already have.
            for _ in range(template.pool_size):  # bound: never more starts than the target
                (view,) = await self.pool_status(template.name)
                if view.ready + view.starting >= view.target_size:
                    break
                try:
                    async with self._life.slot(evict=False):  # a pool waits for room
                        await self._life.launch(template, tenant="")
                except SandboxLimitError:
                    return
                await self._life.update_gauges()

    async def _pool_loop(self) -> None:
        refill = self._life.refill
        retry_s = _POOL_RETRY_FIRST_S
        while True:
            await refill.wait()
            refill.clear()
            try:
                await self._life.update_gauges()
                await self.fill_pools()
            except asyncio.CancelledError:
                raise
            except BackendError as exc:  # a template that keeps failing: wait longer each time
                if _being_cancelled():  # a clean-up error must not swallow the stop
                    raise asyncio.CancelledError from exc
                logger.warning("refilling warm pools failed; retrying in %.0f s: %s",
                               retry_s, exc)
                await asyncio.sleep(retry_s)
                retry_s = min(retry_s * 2, _POOL_RETRY_MAX_S)
                refill.set()
            except Exception as exc:
                if _being_cancelled():
                    raise asyncio.CancelledError from exc
                logger.exception("refilling warm pools failed; retrying in %.0f s", retry_s)
                await asyncio.sleep(retry_s)
                retry_s = min(retry_s * 2, _POOL_RETRY_MAX_S)
                refill.set()
            else:
                retry_s = _POOL_RETRY_FIRST_S

    # ----- reaping -----------------------------------------------------------------

    async def reap_once(self, now: float | None = None) -> list[str]:
        """Delete expired, idle and dead sandboxes; return their ids.

        Args:
            now: the time to judge expiry and idleness by (the clock's when omitted).

        Raises:
            BackendError: a sandbox could not be destroyed.
        """
        life = self._life
        now = life.clock() if now is None else now
        reaped = []
        for record in await life.registry.all():
            if record.status is SandboxStatus.STARTING:
                if now - record.created_at > STARTING_GRACE_S:  # its starter died
                    logger.warning("reaping sandbox %s: still starting after %.0f s",
                                   record.sandbox_id, now - record.created_at)
                    await life.destroy(record, EventType.EXPIRED)
                    reaped.append(record.sandbox_id)
                continue
            # A template removed from the config since the sandbox started: reap it.
            template = (life.catalog.get(record.template)
                        if record.template in life.catalog.names() else None)
            expired = record.expires_at is not None and now > record.expires_at
            idle = (not record.pooled and template is not None
                    and now - record.last_active_at > template.idle_timeout_s)
            try:
                dead = not await life.backend.alive(record.sandbox_id)
            except BackendError as exc:  # unknown is not dead: judge it next round
                logger.warning("cannot tell whether sandbox %s is alive: %s",
                               record.sandbox_id, exc)
                dead = False
            if expired or idle or dead or template is None:
                reason = "dead" if dead else "expired" if expired else "idle"
                logger.info("reaping sandbox %s (%s)", record.sandbox_id, reason)
                await life.destroy(record, EventType.EXPIRED)
                reaped.append(record.sandbox_id)
        if reaped:
            await life.update_gauges()
        return reaped

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(self._life.limits.reap_interval_s)
            try:
                await self.reap_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("reaping sandboxes failed")
