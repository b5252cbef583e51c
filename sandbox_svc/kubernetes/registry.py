"""The registry on the API server: records are Secrets, bindings are lock Secrets.

The API server is the source of truth; sandbox_svc replicas keep nothing.
Two steps are atomic across replicas, and nothing else needs to be:

- claiming a warm sandbox (for a session, or for a tenant by ``claim_pooled``)
  is a patch carrying the record's ``metadata.resourceVersion``: of two
  replicas claiming one record, the second gets 409 Conflict and moves on to
  the next record, so no record (and no Pod) is ever handed out twice;
- binding a session is creating the lock Secret named after the session's
  hash: of two replicas binding one session, the second gets 409
  AlreadyExists, gives back what it claimed and follows the lock, so no
  session ever gets two sandboxes.

The claim comes before the lock. A replica that dies between the two leaves a
bound record without a lock: the next bind of that session adopts it, and the
reconciler removes it if the session found another sandbox meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sandbox_svc.errors import BackendError, SessionConflictError
from sandbox_svc.kubernetes import labels as lbl
from sandbox_svc.kubernetes.api import (
    Kind,
    KubeAlreadyExistsError,
    KubeApi,
    KubeApiError,
    KubeConflictError,
    KubeNotFoundError,
)
from sandbox_svc.kubernetes.manifest import Manifest, text
from sandbox_svc.kubernetes.records import (
    STATE_WARM,
    key_hash,
    lock_holder,
    lock_secret,
    read_record,
    record_patch,
    record_secret,
)
from sandbox_svc.registry import Binding, SandboxRecord, SandboxStatus, SessionKey

__all__ = ["KubernetesRegistry"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
_ATTEMPTS = 8
"""Rounds of a compare-and-swap before contention is reported as a failure."""


def _version(obj: Manifest) -> str:
    return text(obj, "metadata", "resourceVersion")


def _uid(obj: Manifest) -> str:
    return text(obj, "metadata", "uid")


class KubernetesRegistry:
    """Implements :class:`sandbox_svc.registry.Registry` on Secrets in one namespace.

    Args:
        api: the API client (shared with the backend; each closes its share).

    Raises:
        Nothing on construction. Every method raises BackendError when the API
        server refuses or does not answer (a storage failure).
    """

    def __init__(self, api: KubeApi) -> None:
        self._api = api

    async def _guard(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except KubeApiError as exc:
            raise BackendError(f"the registry could not {what}: {exc}") from None

    # ----- reads -------------------------------------------------------------------

    async def _secret(self, name: str) -> Manifest | None:
        return await self._api.get(Kind.SECRET, name)

    async def _records(self, match: dict[str, str]) -> list[tuple[SandboxRecord, Manifest]]:
        found = await self._api.list(
            Kind.SECRET, lbl.selector({lbl.OBJECT: lbl.OBJECT_SANDBOX, **match}))
        pairs = [(record, secret) for secret in found
                 if (record := read_record(secret)) is not None]
        return sorted(pairs, key=lambda pair: pair[0].created_at)

    async def get(self, sandbox_id: str) -> SandboxRecord | None:
        """See :meth:`Registry.get`.

        Raises:
            BackendError: the API server refused or did not answer.
        """
        if not lbl.is_object_name(sandbox_id):
            return None  # no Secret can have this name
        secret = await self._guard("read a record", lambda: self._secret(sandbox_id))
        return read_record(secret) if secret is not None else None

    async def all(self) -> list[SandboxRecord]:
        """See :meth:`Registry.all`.

        Raises:
            BackendError: the API server refused or did not answer.
        """
        pairs = await self._guard("list records", lambda: self._records({}))
        return [record for record, _ in pairs]

    # ----- writes ------------------------------------------------------------------

    async def insert(self, record: SandboxRecord) -> None:
        """See :meth:`Registry.insert`.

        Raises:
            SessionConflictError: another live record holds the session key.
            ValueError: a record with this id exists, or the id cannot name a Secret.
            BackendError: the API server refused or did not answer.
        """
        if not lbl.is_object_name(record.sandbox_id):
            raise ValueError(f"sandbox id {record.sandbox_id!r} cannot name a Kubernetes object")
        await self._guard("insert a record", lambda: self._insert(record))

    async def _insert(self, record: SandboxRecord) -> None:
        try:
            created = await self._api.create(
                Kind.SECRET, record_secret(record, self._api.namespace))
        except KubeAlreadyExistsError:
            raise ValueError(f"sandbox {record.sandbox_id} is already registered") from None
        key = record.session
        if key is None:
            return
        try:
            await self._lock(key, created)
        except BaseException:
            await self._api.delete(Kind.SECRET, record.sandbox_id, uid=_uid(created))
            raise

    async def _lock(self, key: SessionKey, holder: Manifest) -> None:
        """Bind ``key`` to the record Secret ``holder`` by creating the key's lock.

        Raises:
            SessionConflictError: the lock exists and names another live record
                bound to ``key``.
        """
        holder_id = text(holder, "metadata", "name")
        name = lbl.session_lock_name(key_hash(key))
        for _ in range(_ATTEMPTS):
            try:
                await self._api.create(
                    Kind.SECRET, lock_secret(key, holder, self._api.namespace))
                return
            except KubeAlreadyExistsError:
                lock = await self._secret(name)
            if lock is None:
                continue  # removed meanwhile: try again
            if lock_holder(lock) == holder_id:
                return  # a peer adopted our record for us
            if await self._bound_to(lock_holder(lock), key) is not None:
                raise SessionConflictError(str(key))
            await self._drop(lock)
        raise SessionConflictError(str(key))

    async def _bound_to(self, sandbox_id: str, key: SessionKey) -> tuple[
            SandboxRecord, Manifest] | None:
        secret = await self._secret(sandbox_id) if sandbox_id else None
        record = read_record(secret) if secret is not None else None
        if record is None or secret is None or record.session != key:
            return None
        return record, secret

    async def _drop(self, lock: Manifest) -> None:
        """Delete a lock whose record is gone or no longer bound to its session."""
        try:
            await self._api.delete(Kind.SECRET, text(lock, "metadata", "name"), uid=_uid(lock))
        except KubeConflictError:
            pass  # replaced meanwhile by a live one: keep it

    async def update(self, record: SandboxRecord) -> bool:
        """See :meth:`Registry.update`.

        Raises:
            SessionConflictError: the new session key is another record's.
            BackendError: the API server refused or did not answer, or the
                record kept changing under the update.
        """
        if not lbl.is_object_name(record.sandbox_id):
            return False
        return await self._guard("update a record", lambda: self._update(record))

    async def _update(self, record: SandboxRecord) -> bool:
        for _ in range(_ATTEMPTS):
            secret = await self._secret(record.sandbox_id)
            old = read_record(secret) if secret is not None else None
            if old is None or secret is None:
                return False
            key = record.session
            if key is not None and key != old.session:
                await self._lock(key, secret)
            try:
                await self._api.patch(Kind.SECRET, record.sandbox_id,
                                      record_patch(record, _version(secret)))
            except KubeConflictError:
                continue
            except KubeNotFoundError:
                return False
            if old.session is not None and old.session != key:
                await self._release(old.session, record.sandbox_id)
            return True
        raise BackendError(f"sandbox {record.sandbox_id}'s record kept changing; try again")

    async def _release(self, key: SessionKey, sandbox_id: str) -> None:
        lock = await self._secret(lbl.session_lock_name(key_hash(key)))
        if lock is not None and lock_holder(lock) == sandbox_id:
            await self._drop(lock)

    async def remove(self, sandbox_id: str) -> None:
        """See :meth:`Registry.remove`.

        Raises:
            BackendError: the API server refused or did not answer.
        """
        if lbl.is_object_name(sandbox_id):
            await self._guard("remove a record", lambda: self._remove(sandbox_id))

    async def _remove(self, sandbox_id: str) -> None:
        secret = await self._secret(sandbox_id)
        if secret is None:
            return
        record = read_record(secret)
        await self._api.delete(Kind.SECRET, sandbox_id)
        if record is not None and record.session is not None:
            await self._release(record.session, sandbox_id)

    # ----- binding -----------------------------------------------------------------

    async def bind_session(self, key: SessionKey, now: float,
                           expires_at: float) -> Binding | None:
        """See :meth:`Registry.bind_session`.

        Raises:
            BackendError: the API server refused or did not answer, or the
                session's records kept changing under the bind.
        """
        return await self._guard("bind a session",
                                 lambda: self._bind(key, now, expires_at))

    async def _bind(self, key: SessionKey, now: float, expires_at: float) -> Binding | None:
        lock_name = lbl.session_lock_name(key_hash(key))
        for _ in range(_ATTEMPTS):
            lock = await self._secret(lock_name)
            if lock is not None:
                touched = await self._touch(lock_holder(lock), key, now, expires_at)
                if touched is not None:
                    return Binding(touched, newly_bound=False, pool_hit=False)
                await self._drop(lock)
                continue
            # A bound record without a lock: its binder died before locking it.
            orphans = [pair for pair in await self._records({lbl.SESSION: key_hash(key)})
                       if pair[0].session == key]
            if orphans:
                with_lock = await self._try_lock(key, orphans[0][1])
                if with_lock:
                    touched = await self._touch(orphans[0][0].sandbox_id, key, now, expires_at)
                    if touched is not None:
                        return Binding(touched, newly_bound=False, pool_hit=False)
                continue
            claimed = await self._claim(key, now, expires_at)
            if claimed is not None:
                return claimed
            if not await self._records({lbl.STATE: STATE_WARM, lbl.TEMPLATE: key.template}):
                return None
        logger.warning("session %s: binding kept losing races; starting a new sandbox", key)
        return None

    async def _try_lock(self, key: SessionKey, holder: Manifest) -> bool:
        try:
            await self._lock(key, holder)
        except SessionConflictError:
            return False
        return True

    async def _touch(self, sandbox_id: str, key: SessionKey, now: float,
                     expires_at: float) -> SandboxRecord | None:
        """Refresh the activity and expiry of the session's record; None if it is not."""
        for _ in range(_ATTEMPTS):
            found = await self._bound_to(sandbox_id, key)
            if found is None:
                return None
            record, secret = found
            touched = record.with_changes(
                last_active_at=now, expires_at=max(record.expires_at or 0.0, expires_at))
            try:
                await self._api.patch(Kind.SECRET, sandbox_id,
                                      record_patch(touched, _version(secret)))
            except KubeConflictError:
                continue
            except KubeNotFoundError:
                return None
            return touched
        raise BackendError(f"sandbox {sandbox_id}'s record kept changing; try again")

    async def _claim(self, key: SessionKey, now: float, expires_at: float) -> Binding | None:
        """Claim the oldest warm record of the key's template, then lock the session."""
        warm = await self._records({lbl.STATE: STATE_WARM, lbl.TEMPLATE: key.template})
        for record, secret in warm:
            if record.status is not SandboxStatus.READY or not record.pooled:
                continue
            claimed = record.with_changes(
                tenant=key.tenant, user_id=key.user_id, session_id=key.session_id,
                last_active_at=now, expires_at=expires_at)
            try:
                stored = await self._api.patch(Kind.SECRET, record.sandbox_id,
                                               record_patch(claimed, _version(secret)))
            except (KubeConflictError, KubeNotFoundError):
                continue  # another replica claimed (or deleted) it first: next one
            if await self._try_lock(key, stored):
                return Binding(claimed, newly_bound=True, pool_hit=True)
            await self._give_back(record, stored)
            return None  # the session is bound elsewhere: the caller follows the lock
        return None

    async def claim_pooled(self, template: str, tenant: str, now: float, expires_at: float,
                           labels: dict[str, str]) -> SandboxRecord | None:
        """See :meth:`Registry.claim_pooled`: a compare-and-swap patch of one warm record.

        Raises:
            BackendError: the API server refused or did not answer.
        """
        return await self._guard("claim a pooled sandbox", lambda: self._claim_for_tenant(
            template, tenant, now, expires_at, labels))

    async def _claim_for_tenant(self, template: str, tenant: str, now: float,
                                expires_at: float, labels: dict[str, str]) -> SandboxRecord | None:
        warm = await self._records({lbl.STATE: STATE_WARM, lbl.TEMPLATE: template})
        for record, secret in warm:
            if record.status is not SandboxStatus.READY or not record.pooled:
                continue
            claimed = record.with_changes(tenant=tenant, last_active_at=now,
                                          expires_at=expires_at, labels=dict(labels))
            try:
                await self._api.patch(Kind.SECRET, record.sandbox_id,
                                      record_patch(claimed, _version(secret)))
            except (KubeConflictError, KubeNotFoundError):
                continue  # another replica claimed (or deleted) it first: next one
            return claimed
        return None

    async def _give_back(self, pooled: SandboxRecord, stored: Manifest) -> None:
        """Return a claimed record to the pool, unless someone changed it since."""
        try:
            await self._api.patch(Kind.SECRET, pooled.sandbox_id,
                                  record_patch(pooled, _version(stored)))
        except (KubeConflictError, KubeNotFoundError):
            logger.info("sandbox %s changed before it could go back to the pool; "
                        "the reconciler will sort it out", pooled.sandbox_id)

    async def close(self) -> None:
        """Release this share of the API client. Raises: nothing."""
        await self._api.close()
