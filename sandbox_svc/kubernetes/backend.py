"""The Kubernetes backend: one Pod per sandbox, reached at ``PODIP:8080``.

A start creates the sandbox's NetworkPolicy (before the Pod, so no Pod ever
runs unpoliced), then its Pod, then gives the Pod its token Secret: the
registry's record Secret when the Kubernetes registry made one (the backend
adds the token and makes the Pod its owner), else a new one. Secret and
NetworkPolicy are owned by the Pod, so deleting the Pod deletes them; destroy
deletes all three anyway (a Pod that was never created owns nothing). The start
then waits for the kubelet's gRPC readiness probe, logging progress, and ends
early with the kubelet's reason when the image cannot be pulled or sandboxd
keeps crashing. A ResourceQuota that refuses the Pod is a SandboxLimitError.

Pause and resume exist only where the platform can hibernate a Pod (ACS): a
template enables them with the annotation ``sandgate.io/pause-annotation:
<platform key>`` in its ``kubernetes.annotations``; pause sets that key to
"true" on the Pod, resume to "false". Elsewhere they raise
PauseUnsupportedError.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sandbox_svc.backend import StartSpec
from sandbox_svc.errors import (
    BackendError,
    IsolationUnavailableError,
    PauseUnsupportedError,
    SandboxLimitError,
)
from sandbox_svc.isolation import NETWORK_EGRESS, NETWORK_NONE, Isolation
from sandbox_svc.kubernetes import labels as lbl
from sandbox_svc.kubernetes.api import (
    Kind,
    KubeAlreadyExistsError,
    KubeApi,
    KubeApiError,
    KubeForbiddenError,
    KubeNotFoundError,
)
from sandbox_svc.kubernetes.backoff import StartBackoff
from sandbox_svc.kubernetes.config import KubernetesSettings
from sandbox_svc.kubernetes.manifest import Manifest, annotations_of, labels_of
from sandbox_svc.kubernetes.objects import (
    SANDBOX_UID,
    build_network_policy,
    build_pod,
    build_token_secret,
    owner_reference,
)
from sandbox_svc.kubernetes.pod_status import pod_state
from sandbox_svc.templates import HOST_LOOPBACK, Template

__all__ = ["KubernetesBackend"]

logger = logging.getLogger(__name__)

_PROGRESS_EVERY_S = 5.0
_POLL_FIRST_S = 0.05
_POLL_MAX_S = 1.0


class KubernetesBackend:
    """Implements :class:`sandbox_svc.backend.SandboxBackend` with Pods.

    Args:
        api: the API client (shared with the registry; each closes its share).
        settings: namespace, image, port, timeouts.
        backoff: per-template start back-off (a default one when omitted).

    Raises:
        Nothing on construction.
    """

    def __init__(self, api: KubeApi, settings: KubernetesSettings,
                 backoff: StartBackoff | None = None) -> None:
        self._api = api
        self._settings = settings
        self._backoff = backoff or StartBackoff()
        self._companions: list[asyncio.Task[None]] = []

    def run_alongside(self, task: asyncio.Task[None]) -> None:
        """Own ``task`` (the reconciler): :meth:`close` cancels it. Raises: nothing."""
        self._companions.append(task)

    # ----- start -------------------------------------------------------------------

    async def start(self, spec: StartSpec) -> str:
        """Create the sandbox's objects and wait for its Pod to be Ready.

        Returns:
            ``PODIP:PORT``.

        Raises:
            SandboxLimitError: a ResourceQuota refused the Pod or its Secret.
            BackendError: the template backs off after failures, the Pod failed
                (image pull, crash loop) or was not Ready within the start
                timeout, or the API refused; nothing of the sandbox is left.
        """
        template = spec.template.name
        self._backoff.check(template)
        try:
            target = await self._start(spec)
        except BackendError as exc:
            self._backoff.failed(template, str(exc))
            raise
        self._backoff.succeeded(template)
        return target

    async def _start(self, spec: StartSpec) -> str:
        settings = self._settings
        try:
            await self._api.create(Kind.NETWORK_POLICY, build_network_policy(
                spec.sandbox_id, spec.template, settings))
            pod = await self._api.create(
                Kind.POD, build_pod(spec.sandbox_id, spec.template, settings,
                                      warm_kernel=spec.warm_kernel))
            owner = owner_reference(pod)
            # One after the other: a failure then leaves no write in flight behind
            # the cleanup.
            await self._api.patch(Kind.NETWORK_POLICY, spec.sandbox_id,
                                  {"metadata": {"ownerReferences": [owner]}})
            await self._give_token(spec, owner)
            return await self._wait_ready(spec)
        except KubeForbiddenError as exc:
            await self._cleanup(spec.sandbox_id)
            if exc.quota_exceeded:
                raise SandboxLimitError(
                    f"the namespace's ResourceQuota has no room for sandbox {spec.sandbox_id} "
                    f"({exc.message}); delete sandboxes or raise the quota") from None
            raise BackendError(f"the Kubernetes API refused sandbox {spec.sandbox_id}: "
                               f"{exc.message}") from None
        except KubeApiError as exc:
            await self._cleanup(spec.sandbox_id)
            raise BackendError(f"sandbox {spec.sandbox_id} could not be created: {exc}") from None
        except BaseException:  # failed, timed out or cancelled: leave nothing behind
            await self._cleanup(spec.sandbox_id)
            raise

    async def _cleanup(self, sandbox_id: str) -> None:
        # Shielded: a second cancellation must not leave a half-deleted sandbox.
        with contextlib.suppress(BackendError):
            await asyncio.shield(self.destroy(sandbox_id))

    async def _give_token(self, spec: StartSpec, owner: Manifest) -> None:
        """Put the token in the sandbox's Secret (the registry's record, if it made one)."""
        token = base64.b64encode(spec.token.encode()).decode()
        try:
            await self._api.patch(Kind.SECRET, spec.sandbox_id, {
                "metadata": {"ownerReferences": [owner]},
                "data": {lbl.TOKEN_KEY: token},
            })
        except KubeNotFoundError:
            try:
                await self._api.create(Kind.SECRET, build_token_secret(
                    spec.sandbox_id, spec.template.name, spec.token, self._settings, owner))
            except KubeAlreadyExistsError:  # made meanwhile: own it
                await self._give_token(spec, owner)

    async def _wait_ready(self, spec: StartSpec) -> str:
        sandbox_id, timeout = spec.sandbox_id, self._settings.start_timeout_s
        started = time.monotonic()
        next_report = started + _PROGRESS_EVERY_S
        delay = _POLL_FIRST_S
        progress = "Pending"
        while True:
            pod = await self._api.get(Kind.POD, sandbox_id)
            if pod is None:
                raise BackendError(f"sandbox {sandbox_id}'s Pod was deleted while it started")
            state = pod_state(pod)
            if state.ready:
                return self._target(state.pod_ip)
            if state.failure:
                raise BackendError(f"sandbox {sandbox_id} (template {spec.template.name}) "
                                   f"failed to start: {state.failure}")
            progress = state.progress
            now = time.monotonic()
            if now - started > timeout:
                raise BackendError(
                    f"sandbox {sandbox_id} (template {spec.template.name}) was not ready "
                    f"within {timeout:.0f} s; its Pod is {progress}")
            if now >= next_report:
                logger.info("sandbox %s (template %s) still starting after %.0f s: %s",
                            sandbox_id, spec.template.name, now - started, progress)
                next_report = now + _PROGRESS_EVERY_S
            await asyncio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX_S)

    def _target(self, pod_ip: str) -> str:
        host = f"[{pod_ip}]" if ":" in pod_ip else pod_ip
        return f"{host}:{self._settings.sandboxd_port}"

    # ----- destroy, pause ----------------------------------------------------------

    async def destroy(self, sandbox_id: str) -> None:
        """Delete the sandbox's Pod, NetworkPolicy and Secret; missing ones are fine.

        Raises:
            BackendError: the API refused or did not answer; a later call retries.
        """
        results = await asyncio.gather(
            self._api.delete(Kind.POD, sandbox_id, grace_period_s=1),
            self._api.delete(Kind.NETWORK_POLICY, sandbox_id),
            self._api.delete(Kind.SECRET, sandbox_id),
            return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        for failure in failures:
            if not isinstance(failure, Exception):
                raise failure  # cancellation
        if failures:
            raise BackendError(f"sandbox {sandbox_id} could not be deleted: {failures[0]}")

    async def _pause_key(self, sandbox_id: str) -> str:
        pod = await self._read_pod(sandbox_id)
        if pod is None:
            raise BackendError(f"sandbox {sandbox_id} has no Pod")
        key = annotations_of(pod).get(lbl.PAUSE_ANNOTATION, "")
        if not key:
            raise PauseUnsupportedError(
                "this sandbox's Pods cannot be paused: the Kubernetes backend pauses only "
                f"where the platform hibernates Pods (ACS) and the template's "
                f"kubernetes.annotations set {lbl.PAUSE_ANNOTATION} to that annotation key")
        return key

    async def _set_hibernation(self, sandbox_id: str, hibernate: bool) -> None:
        key = await self._pause_key(sandbox_id)
        value = "true" if hibernate else "false"
        try:
            await self._api.patch(Kind.POD, sandbox_id, {"metadata": {"annotations": {key: value}}})
        except KubeApiError as exc:
            verb = "paused" if hibernate else "resumed"
            raise BackendError(f"sandbox {sandbox_id} could not be {verb}: {exc}") from None

    async def pause(self, sandbox_id: str) -> None:
        """Hibernate the Pod through the platform's annotation.

        Raises:
            PauseUnsupportedError: the template does not enable hibernation.
            BackendError: the Pod is gone or the API refused.
        """
        await self._set_hibernation(sandbox_id, True)

    async def resume(self, sandbox_id: str) -> None:
        """Wake a hibernated Pod; waking a running one is a no-op.

        Raises:
            PauseUnsupportedError: the template does not enable hibernation.
            BackendError: the Pod is gone or the API refused.
        """
        await self._set_hibernation(sandbox_id, False)

    # ----- probes and listings -----------------------------------------------------

    async def _read_pod(self, sandbox_id: str) -> Manifest | None:
        try:
            return await self._api.get(Kind.POD, sandbox_id)
        except KubeApiError as exc:
            raise BackendError(f"cannot read sandbox {sandbox_id}'s Pod: {exc}") from None

    async def probe(self, sandbox_id: str, timeout: float = 2.0) -> bool:
        """Whether the Pod's sandboxd answers SERVING within ``timeout`` seconds.

        Raises:
            Nothing but cancellation.
        """
        try:
            async with asyncio.timeout(timeout):
                pod = await self._read_pod(sandbox_id)
                state = pod_state(pod) if pod is not None else None
                if state is None or state.gone or not state.pod_ip:
                    return False
                async with grpc.aio.insecure_channel(self._target(state.pod_ip)) as channel:
                    reply = await health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(), wait_for_ready=True)
        except (BackendError, TimeoutError, grpc.aio.AioRpcError):
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def alive(self, sandbox_id: str) -> bool:
        """Whether the Pod exists and is neither terminated nor being deleted.

        Raises:
            BackendError: the API did not answer (unknown is not dead).
        """
        pod = await self._read_pod(sandbox_id)
        return pod is not None and not pod_state(pod).gone

    async def leftovers(self) -> set[str]:
        """Ids of every sandbox with a Pod, Secret or NetworkPolicy in the namespace.

        Raises:
            BackendError: the API refused or did not answer.
        """
        try:
            found = await asyncio.gather(
                self._api.list(Kind.POD, lbl.selector()),
                self._api.list(Kind.NETWORK_POLICY, lbl.selector()),
                self._api.list(Kind.SECRET, lbl.selector({lbl.OBJECT: lbl.OBJECT_SANDBOX})))
        except KubeApiError as exc:
            raise BackendError(f"cannot list sandbox objects: {exc}") from None
        return {labels_of(item).get(lbl.SANDBOX_ID, "") for items in found
                for item in items} - {""}

    async def check_template(self, template: Template) -> None:
        """Refuse templates a Pod cannot honour.

        Raises:
            IsolationUnavailableError: the template's name is no label value, it
                names a local root filesystem, or it allows host-loopback.
        """
        if not lbl.is_label_value(template.name) or len(template.name) > 63:
            raise IsolationUnavailableError(
                f"template {template.name!r} cannot label Kubernetes objects: use at most 63 "
                "letters, digits, '-' or '_', starting and ending with a letter or digit")
        if template.rootfs is not None:
            raise IsolationUnavailableError(
                f"template {template.name!r}: rootfs is a local-backend setting; on "
                "Kubernetes a template's root filesystem is its image (kubernetes.image)")
        if any(rule.address == HOST_LOOPBACK for rule in template.allow_rules()):
            raise IsolationUnavailableError(
                f"template {template.name!r}: allow entries with host-loopback mean this "
                "host's 127.0.0.1, which a Pod cannot reach; allow the service's address")

    def isolation(self, template: Template) -> Isolation:
        """A container of the template's RuntimeClass under the Pod's restricted context.

        ``RuntimeDefault`` seccomp (the container runtime's default profile)
        refuses namespace-creating clone/unshare to a process without
        CAP_SYS_ADMIN, and the Pod drops every capability, so no user namespaces
        are created inside.
        """
        return Isolation(
            runtime=f"kubernetes ({template.kubernetes.runtime_class_name or 'default runtime'})",
            namespaces=("mount", "pid", "net", "ipc", "uts"), inner_uid=SANDBOX_UID,
            seccomp_profile="RuntimeDefault", user_namespaces_disabled=True,
            network_policy=NETWORK_EGRESS if template.network else NETWORK_NONE,
            network_allow=tuple(template.allow) if template.network else ())

    async def close(self) -> None:
        """Stop the companions (the reconciler) and release this share of the API.

        Raises:
            Nothing.
        """
        for task in self._companions:
            task.cancel()
        for task in self._companions:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._companions = []
        await self._api.close()
