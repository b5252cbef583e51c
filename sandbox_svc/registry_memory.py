"""The registry in memory: one process, nothing survives it.

For tests and for throwaway runs. Each operation first yields to the event
loop, as real storage would, so callers that wrongly count on two calls running
back to back fail here too; then it runs without awaiting, so on one event loop
it is as atomic as the SQLite registry's transactions, also for several
managers sharing one instance.
"""

from __future__ import annotations

import asyncio

from sandbox_svc.errors import SessionConflictError
from sandbox_svc.registry import Binding, SandboxRecord, SandboxStatus, SessionKey

__all__ = ["MemoryRegistry"]


class MemoryRegistry:
    """Registry kept in a dict; implements :class:`sandbox_svc.registry.Registry`."""

    def __init__(self) -> None:
        self._records: dict[str, SandboxRecord] = {}

    def _holder(self, key: SessionKey) -> SandboxRecord | None:
        return next((r for r in self._records.values() if r.session == key), None)

    def _check_session(self, record: SandboxRecord) -> None:
        key = record.session
        holder = None if key is None else self._holder(key)
        if holder is not None and holder.sandbox_id != record.sandbox_id:
            raise SessionConflictError(str(key))

    async def insert(self, record: SandboxRecord) -> None:
        """See :meth:`Registry.insert`.

        Raises:
            SessionConflictError: another record has the session key.
            ValueError: a record with this id exists.
        """
        await asyncio.sleep(0)
        if record.sandbox_id in self._records:
            raise ValueError(f"sandbox {record.sandbox_id} is already registered")
        self._check_session(record)
        self._records[record.sandbox_id] = record

    async def update(self, record: SandboxRecord) -> bool:
        """See :meth:`Registry.update`.

        Raises:
            SessionConflictError: another record has the session key.
        """
        await asyncio.sleep(0)
        if record.sandbox_id not in self._records:
            return False
        self._check_session(record)
        self._records[record.sandbox_id] = record
        return True

    async def remove(self, sandbox_id: str) -> None:
        """See :meth:`Registry.remove`. Raises: nothing."""
        await asyncio.sleep(0)
        self._records.pop(sandbox_id, None)

    async def get(self, sandbox_id: str) -> SandboxRecord | None:
        """See :meth:`Registry.get`. Raises: nothing."""
        await asyncio.sleep(0)
        return self._records.get(sandbox_id)

    async def all(self) -> list[SandboxRecord]:
        """See :meth:`Registry.all`. Raises: nothing."""
        await asyncio.sleep(0)
        return sorted(self._records.values(), key=lambda r: r.created_at)

    async def bind_session(self, key: SessionKey, now: float,
                           expires_at: float) -> Binding | None:
        """See :meth:`Registry.bind_session`. Raises: nothing."""
        await asyncio.sleep(0)
        existing = self._holder(key)
        if existing is not None:
            touched = existing.with_changes(
                last_active_at=now, expires_at=max(existing.expires_at or 0.0, expires_at))
            self._records[touched.sandbox_id] = touched
            return Binding(touched, newly_bound=False, pool_hit=False)
        pooled = self._pooled(key.template)
        if not pooled:
            return None
        claimed = min(pooled, key=lambda r: r.created_at).with_changes(
            tenant=key.tenant, user_id=key.user_id, session_id=key.session_id,
            last_active_at=now, expires_at=expires_at)
        self._records[claimed.sandbox_id] = claimed
        return Binding(claimed, newly_bound=True, pool_hit=True)

    async def claim_pooled(self, template: str, tenant: str, now: float, expires_at: float,
                           labels: dict[str, str]) -> SandboxRecord | None:
        """See :meth:`Registry.claim_pooled`. Raises: nothing."""
        await asyncio.sleep(0)
        pooled = self._pooled(template)
        if not pooled:
            return None
        claimed = min(pooled, key=lambda r: r.created_at).with_changes(
            tenant=tenant, last_active_at=now, expires_at=expires_at, labels=dict(labels))
        self._records[claimed.sandbox_id] = claimed
        return claimed

    def _pooled(self, template: str) -> list[SandboxRecord]:
        return [r for r in self._records.values()
                if r.pooled and r.template == template and r.status is SandboxStatus.READY]

    async def close(self) -> None:
        """Nothing to release; the records stay (a restarted manager may share them).

        Raises:
            Nothing.
        """

