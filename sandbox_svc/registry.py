"""The registry of sandboxes: records, session keys and the storage contract.

The registry is the source of truth for which sandboxes exist and which
session each is bound to. A restarted sandbox_svc reads it to re-adopt live
sandboxes and reap dead ones, so nothing it started is ever leaked silently.

It owns the one step that must be atomic across several manager instances:
binding a session to a sandbox (:meth:`Registry.bind_session`, then
:meth:`Registry.insert` of a STARTING row that carries the session key), and
handing a pooled sandbox to a tenant without a session
(:meth:`Registry.claim_pooled`).
Implementations: ``registry_sqlite.SqliteRegistry`` (the embedded default,
durable, safe for several processes on one file) and
``registry_memory.MemoryRegistry`` (one process, nothing survives it).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

__all__ = ["Binding", "Registry", "SandboxRecord", "SandboxStatus", "SessionKey"]


class SandboxStatus(StrEnum):
    """Where a sandbox is in its life."""

    STARTING = "starting"
    READY = "ready"
    PAUSED = "paused"


@dataclass(frozen=True)
class SessionKey:
    """Who a bound sandbox belongs to: one sandbox per key."""

    tenant: str
    user_id: str
    session_id: str
    template: str

    def __str__(self) -> str:
        return f"{self.tenant}/{self.user_id}/{self.session_id} ({self.template})"


@dataclass(frozen=True)
class SandboxRecord:
    """What the control plane remembers about one sandbox."""

    sandbox_id: str
    template: str
    token: str
    status: SandboxStatus
    created_at: float
    last_active_at: float
    tenant: str = ""
    """Empty while the sandbox waits in the warm pool."""
    user_id: str = ""
    session_id: str = ""
    """Set when the sandbox is bound to a session key."""
    expires_at: float | None = None
    target: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def pooled(self) -> bool:
        """True while the sandbox waits, unbound, in its template's warm pool."""
        return not self.tenant

    @property
    def session(self) -> SessionKey | None:
        """The session key the sandbox is bound to, if any."""
        if not self.session_id:
            return None
        return SessionKey(self.tenant, self.user_id, self.session_id, self.template)

    def with_changes(self, **changes: object) -> SandboxRecord:
        """A copy with ``changes`` applied.

        Raises:
            TypeError: a key is not a field of the record.
        """
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Binding:
    """The outcome of :meth:`Registry.bind_session`."""

    record: SandboxRecord
    """The session's sandbox, with the activity and expiry the bind wrote."""
    newly_bound: bool
    """False when the session already had this sandbox."""
    pool_hit: bool
    """True when the sandbox was just claimed from the warm pool."""


class Registry(Protocol):
    """Storage of sandbox records that several manager instances may share."""

    async def insert(self, record: SandboxRecord) -> None:
        """Add a new record (usually STARTING).

        Raises:
            SessionConflictError: the record carries a session key that another
                record already has: another claimer won; nothing was written.
        """
        ...

    async def update(self, record: SandboxRecord) -> bool:
        """Overwrite the record with this id, if it still exists.

        Returns:
            False when the record is gone (deleted meanwhile); nothing is written.

        Raises:
            SessionConflictError: the new session key is another record's.
        """
        ...

    async def remove(self, sandbox_id: str) -> None:
        """Forget the record; an unknown id is not an error.

        Raises:
            Nothing beyond storage failures.
        """
        ...

    async def get(self, sandbox_id: str) -> SandboxRecord | None:
        """The record with this id, or None.

        Raises:
            Nothing beyond storage failures.
        """
        ...

    async def all(self) -> list[SandboxRecord]:
        """Every record, oldest first.

        Raises:
            Nothing beyond storage failures.
        """
        ...

    async def bind_session(self, key: SessionKey, now: float,
                           expires_at: float) -> Binding | None:
        """Atomically: the session's sandbox, else the oldest READY pooled one claimed for it.

        One operation, so two managers never bind one sandbox to two sessions nor
        give one session two sandboxes. The session's existing record gets
        ``last_active_at = now`` and its expiry raised to at least ``expires_at``
        (its status is returned as stored: STARTING, READY or PAUSED); a claimed
        pooled record gets the key, ``now`` and ``expires_at``.

        Returns:
            The binding, or None when the session has no sandbox and the pool of
            ``key.template`` is empty: the caller then inserts a STARTING record
            carrying the key (which fails if another claimer won meanwhile).

        Raises:
            Nothing beyond storage failures.
        """
        ...

    async def claim_pooled(self, template: str, tenant: str, now: float, expires_at: float,
                           labels: dict[str, str]) -> SandboxRecord | None:
        """Atomically: the oldest READY pooled sandbox of ``template``, now the tenant's.

        One operation, so two managers never hand one pooled sandbox to two
        callers. The claimed record gets ``tenant``, ``now`` as its activity,
        ``expires_at`` and ``labels``, and no session.

        Returns:
            The claimed record, or None when the template's pool is empty.

        Raises:
            Nothing beyond storage failures.
        """
        ...

    async def close(self) -> None:
        """Release the storage; the registry is unusable afterwards.

        Raises:
            Nothing.
        """
        ...
