"""The Kubernetes API as Sandgate uses it: a few verbs on three kinds, async, typed.

The official ``kubernetes`` client does the talking (configuration, auth, TLS,
paths); it blocks, so every call runs on this module's own small thread pool
with a request timeout, and objects travel as plain JSON (see manifest.py).
Its exceptions are translated here, once, into :class:`KubeApiError`::

    KubeApiError                 status, reason and message from the API server
     +-- KubeNotFoundError       404
     +-- KubeConflictError       409 Conflict: a resourceVersion precondition failed
     +-- KubeAlreadyExistsError  409 AlreadyExists: the name is taken
     +-- KubeForbiddenError      403: RBAC, admission, or an exceeded ResourceQuota
     +-- KubeUnreachableError    no answer: connection refused, TLS, timeout

A write that is cancelled still waits for its request to finish (a thread
cannot be stopped), so whoever cleans up after a cancellation sees its effect;
a cancelled read returns at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from typing import TYPE_CHECKING

from sandbox_svc.kubernetes.manifest import Manifest, field, text

if TYPE_CHECKING:  # the client takes over a second to import: only where it is used
    from kubernetes.client import ApiClient

__all__ = [
    "Kind",
    "KubeAlreadyExistsError",
    "KubeApi",
    "KubeApiError",
    "KubeConflictError",
    "KubeForbiddenError",
    "KubeNotFoundError",
    "KubeUnreachableError",
]

_WORKERS = 8


class Kind(Enum):
    """The kinds Sandgate creates, by the suffix of the client's method names."""

    POD = ("CoreV1Api", "pod")
    SECRET = ("CoreV1Api", "secret")
    NETWORK_POLICY = ("NetworkingV1Api", "network_policy")


class KubeApiError(Exception):
    """The API server refused or could not be reached."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{reason or status}: {message}" if message else reason or str(status))
        self.status = status
        self.reason = reason
        self.message = message


class KubeNotFoundError(KubeApiError):
    """The object does not exist."""


class KubeConflictError(KubeApiError):
    """A precondition (resourceVersion, uid) did not hold: someone else wrote first."""


class KubeAlreadyExistsError(KubeApiError):
    """An object with this name exists already."""


class KubeForbiddenError(KubeApiError):
    """RBAC, admission or a ResourceQuota refused the request."""

    @property
    def quota_exceeded(self) -> bool:
        """True when a ResourceQuota refused it ("exceeded quota")."""
        return "exceeded quota" in self.message


class KubeUnreachableError(KubeApiError):
    """No answer from the API server (connection, TLS, timeout)."""


def _translate(exc: BaseException) -> KubeApiError:
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException) and exc.status:
        try:
            body: object = json.loads(exc.body or b"{}")
        except ValueError:
            body = {}
        status = int(exc.status)
        reason = text(body, "reason") or str(exc.reason or "")
        message = text(body, "message") or str(exc.reason or "")
        if status == 404:
            return KubeNotFoundError(status, reason, message)
        if status == 409:
            cls = KubeAlreadyExistsError if reason == "AlreadyExists" else KubeConflictError
            return cls(status, reason, message)
        if status == 403:
            return KubeForbiddenError(status, reason, message)
        return KubeApiError(status, reason, message)
    detail = str(getattr(exc, "reason", "") or exc) or type(exc).__name__
    return KubeUnreachableError(0, "Unreachable", detail.splitlines()[0])


class KubeApi:
    """Create, read, list, patch, replace and delete in one namespace.

    Args:
        api_client: a configured ``kubernetes.client.ApiClient``; this object closes it.
        namespace: where every object lives.
        timeout_s: each request's connect and read timeout.

    Raises:
        Nothing on construction.
    """

    def __init__(self, api_client: ApiClient, namespace: str, timeout_s: float = 10.0) -> None:
        from kubernetes import client

        self.namespace = namespace
        self.host: str = api_client.configuration.host
        self._client = api_client
        self._apis: dict[str, object] = {
            "CoreV1Api": client.CoreV1Api(api_client),
            "NetworkingV1Api": client.NetworkingV1Api(api_client),
        }
        self._timeout = (timeout_s, timeout_s)
        self._pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="sandgate-kube")
        self._users = 1

    def share(self) -> KubeApi:
        """Count one more user; :meth:`close` releases the client after the last one.

        Raises:
            Nothing.
        """
        self._users += 1
        return self

    def _method(self, verb: str, kind: Kind) -> Callable[..., object]:
        api_name, suffix = kind.value
        method: Callable[..., object] = getattr(self._apis[api_name], f"{verb}_namespaced_{suffix}")
        return method

    async def _call(self, verb: str, kind: Kind, *args: object, **kwargs: object) -> object:
        method = self._method(verb, kind)
        writes = verb not in ("read", "list")

        def request() -> object:
            try:
                response = method(*args, self.namespace, _preload_content=False,
                                  _request_timeout=self._timeout, **kwargs)
            except Exception as exc:  # the client's and urllib3's, translated once
                raise _translate(exc) from None
            try:
                data = response.data  # type: ignore[attr-defined]  # urllib3.HTTPResponse
            finally:
                response.release_conn()  # type: ignore[attr-defined]
            return json.loads(data) if data else {}

        future = asyncio.get_running_loop().run_in_executor(self._pool, request)
        if not writes:
            return await future
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await future
            raise

    @staticmethod
    def _manifest(value: object) -> Manifest:
        if not isinstance(value, dict):
            raise KubeApiError(0, "BadResponse", "the API server answered with a non-object")
        return value

    async def create(self, kind: Kind, body: Manifest) -> Manifest:
        """Create ``body``; return the object as stored (with uid and resourceVersion).

        Raises:
            KubeAlreadyExistsError: the name is taken.
            KubeForbiddenError: RBAC, admission or a quota refused it.
            KubeApiError: any other refusal, or no answer.
        """
        return self._manifest(await self._call("create", kind, body=body))

    async def get(self, kind: Kind, name: str) -> Manifest | None:
        """The object, or None when it does not exist.

        Raises:
            KubeApiError: a refusal other than not-found, or no answer.
        """
        try:
            return self._manifest(await self._call("read", kind, name))
        except KubeNotFoundError:
            return None

    async def list(self, kind: Kind, label_selector: str) -> list[Manifest]:
        """Every object whose labels match ``label_selector``.

        Raises:
            KubeApiError: a refusal, or no answer.
        """
        found = await self._call("list", kind, label_selector=label_selector)
        items = field(found, "items")
        return [item for item in items if isinstance(item, dict)] if isinstance(
            items, list) else []

    async def patch(self, kind: Kind, name: str, patch: Manifest) -> Manifest:
        """Apply a strategic merge patch; one carrying ``metadata.resourceVersion``
        applies only if the object still has that version.

        Raises:
            KubeNotFoundError: the object does not exist.
            KubeConflictError: the resourceVersion in the patch is stale.
            KubeApiError: any other refusal, or no answer.
        """
        return self._manifest(await self._call("patch", kind, name, body=patch))

    async def replace(self, kind: Kind, name: str, body: Manifest) -> Manifest:
        """Replace the object; ``body.metadata.resourceVersion`` must be the stored one.

        Raises:
            KubeNotFoundError: the object does not exist.
            KubeConflictError: the resourceVersion is stale.
            KubeApiError: any other refusal, or no answer.
        """
        return self._manifest(await self._call("replace", kind, name, body=body))

    async def delete(self, kind: Kind, name: str, *, uid: str = "",
                     grace_period_s: int | None = None) -> bool:
        """Delete the object (its dependents follow in the background).

        Args:
            kind: what to delete.
            name: its name.
            uid: delete only the object with this uid (not a namesake made since).
            grace_period_s: the Pod's grace period; None keeps the object's own.

        Returns:
            False when there was nothing to delete.

        Raises:
            KubeConflictError: ``uid`` is not the stored object's.
            KubeApiError: any other refusal, or no answer.
        """
        options: Manifest = {"propagationPolicy": "Background"}
        if uid:
            options["preconditions"] = {"uid": uid}
        if grace_period_s is not None:
            options["gracePeriodSeconds"] = grace_period_s
        try:
            await self._call("delete", kind, name, body=options)
        except KubeNotFoundError:
            return False
        return True

    async def close(self) -> None:
        """Release the client once its last user closes it. Raises: nothing."""
        self._users -= 1
        if self._users > 0:
            return
        self._pool.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self._client.close)
