"""The reconciler: removes what no start, bind or delete on any replica will finish.

The manager's own loops refill pools and reap expired, idle and dead sandboxes;
the backend backs off failing templates. What is left is debris of replicas
that died mid-operation, found by listing the namespace:

- a Pod without its Secret (its record was removed, the Pod outlived it);
- a Secret or NetworkPolicy without its Pod (a start that died before or
  after creating the Pod; the garbage collector handles those with an owner);
- a sandbox still STARTING long after any start would have timed out;
- a session lock whose record is gone or bound elsewhere, and a record bound
  to a session whose lock names another record (a claim that lost the race
  and was never given back).

Nothing younger than the start timeout plus a grace period is touched, so
work in flight on another replica is never mistaken for debris.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime

from sandbox_svc.kubernetes import labels as lbl
from sandbox_svc.kubernetes.api import Kind, KubeApi, KubeApiError, KubeConflictError
from sandbox_svc.kubernetes.config import KubernetesSettings
from sandbox_svc.kubernetes.manifest import Manifest, labels_of, name, text
from sandbox_svc.kubernetes.records import lock_holder, read_record
from sandbox_svc.registry import SandboxStatus

__all__ = ["Reconciler"]

logger = logging.getLogger(__name__)


def _created(obj: Manifest) -> float:
    stamp = text(obj, "metadata", "creationTimestamp")
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _by_id(items: list[Manifest]) -> dict[str, Manifest]:
    return {sid: item for item in items if (sid := labels_of(item).get(lbl.SANDBOX_ID, ""))}


class Reconciler:
    """Sweeps one namespace for debris; see the module docstring.

    Args:
        api: the API client.
        settings: the start timeout and grace period, and the namespace.
        clock: wall-clock seconds (``time.time``); tests pass ``now`` instead.

    Raises:
        Nothing on construction.
    """

    def __init__(self, api: KubeApi, settings: KubernetesSettings,
                 clock: Callable[[], float] = time.time) -> None:
        self._api = api
        self._grace_s = settings.start_timeout_s + settings.orphan_grace_s
        self._clock = clock

    async def run(self, interval_s: float) -> None:
        """Reconcile every ``interval_s`` seconds until cancelled.

        Raises:
            Nothing but cancellation: failures are logged and retried next round.
        """
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.reconcile_once()
            except KubeApiError as exc:
                logger.warning("reconciling sandbox objects failed (retrying in %.0f s): %s",
                               interval_s, exc)

    async def reconcile_once(self, now: float | None = None) -> list[str]:
        """One sweep; returns what it removed, as ``kind/name`` strings.

        Args:
            now: the time to judge ages by (the clock's when omitted).

        Raises:
            KubeApiError: listing failed (deletes that fail are logged and skipped).
        """
        now = self._clock() if now is None else now
        old = now - self._grace_s
        pods, policies, secrets, locks = await asyncio.gather(
            self._api.list(Kind.POD, lbl.selector()),
            self._api.list(Kind.NETWORK_POLICY, lbl.selector()),
            self._api.list(Kind.SECRET, lbl.selector({lbl.OBJECT: lbl.OBJECT_SANDBOX})),
            self._api.list(Kind.SECRET, lbl.selector({lbl.OBJECT: lbl.OBJECT_SESSION})))
        pod_of, policy_of, secret_of = _by_id(pods), _by_id(policies), _by_id(secrets)
        doomed: dict[str, str] = {}  # sandbox id -> why
        for sid, pod in pod_of.items():
            if sid not in secret_of and _created(pod) < old:
                doomed[sid] = "its Pod has no Secret"
        for sid, secret in secret_of.items():
            record = read_record(secret)
            if sid not in pod_of and _created(secret) < old:
                doomed[sid] = "its Secret has no Pod"
            elif record is not None and record.status is SandboxStatus.STARTING \
                    and record.created_at < old:
                doomed[sid] = "it is still starting long after any start would have timed out"
        for sid, policy in policy_of.items():
            if sid not in pod_of and _created(policy) < old:
                doomed.setdefault(sid, "its NetworkPolicy has no Pod")
        removed = await self._bindings(locks, secret_of, old, doomed)
        for sid, why in doomed.items():
            logger.warning("removing sandbox %s: %s", sid, why)
            for kind, present in ((Kind.POD, pod_of), (Kind.NETWORK_POLICY, policy_of),
                                  (Kind.SECRET, secret_of)):
                if sid in present and await self._delete(kind, present[sid]):
                    removed.append(f"{kind.name.lower()}/{sid}")
        return removed

    async def _bindings(self, locks: list[Manifest], secret_of: dict[str, Manifest],
                        old: float, doomed: dict[str, str]) -> list[str]:
        """Stale session locks go; records bound behind another record's lock are doomed."""
        removed: list[str] = []
        lock_of = {labels_of(lock).get(lbl.SESSION, ""): lock for lock in locks}
        for lock in locks:
            holder = secret_of.get(lock_holder(lock))
            record = read_record(holder) if holder is not None else None
            digest = labels_of(lock).get(lbl.SESSION, "")
            bound_here = record is not None and labels_of(holder or {}).get(lbl.SESSION) == digest
            if not bound_here and _created(lock) < old and await self._delete(Kind.SECRET, lock):
                logger.warning("removing session lock %s: its record is gone", name(lock))
                removed.append(f"secret/{name(lock)}")
        for sid, secret in secret_of.items():
            record = read_record(secret)
            digest = labels_of(secret).get(lbl.SESSION, "")
            bound_lock = lock_of.get(digest) if digest else None
            if record is not None and bound_lock is not None and lock_holder(bound_lock) != sid \
                    and record.last_active_at < old:
                doomed.setdefault(sid, f"session {record.session} is bound to another sandbox")
        return removed

    async def _delete(self, kind: Kind, obj: Manifest) -> bool:
        try:
            return await self._api.delete(kind, name(obj), uid=text(obj, "metadata", "uid"))
        except KubeConflictError:
            return False  # replaced meanwhile by a new object of the same name
        except KubeApiError as exc:
            logger.warning("cannot delete %s %s: %s", kind.name.lower(), name(obj), exc)
            return False
