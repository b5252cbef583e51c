"""Choose the backend and the registry from settings, in one place.

``SANDGATE_DEPLOYMENT`` (seed alias ``CONTAINER_DEPLOYMENT``):

- ``local`` (the default): :class:`~sandbox_svc.local.backend.LocalBackend`
  (bubblewrap + cgroups on this host) and a
  :class:`~sandbox_svc.registry_sqlite.SqliteRegistry` in the state dir. The
  state dir's lock (:mod:`sandbox_svc.local.statelock`) is taken first, before
  the registry or any sandbox is looked at: a second instance refuses at once.
- ``k8s``: one Pod per sandbox in ``K8S_NAMESPACE``
  (:class:`~sandbox_svc.kubernetes.backend.KubernetesBackend`), the API server as
  the registry (:class:`~sandbox_svc.kubernetes.registry.KubernetesRegistry`);
  the cluster comes from ``KUBECONFIG_PATH``, else the in-cluster service
  account, else ``~/.kube/config``.

A caller may inject either part (tests do); only the missing one is built.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from sandbox_svc.backend import SandboxBackend
from sandbox_svc.errors import IsolationUnavailableError
from sandbox_svc.registry import Registry
from sandbox_svc.settings import SandboxServiceSettings

__all__ = ["Deployment", "open_deployment"]


@dataclass(frozen=True)
class Deployment:
    """The backend and the registry one sandbox_svc runs on; whoever opened it closes it."""

    backend: SandboxBackend
    registry: Registry
    release: Callable[[], None] = lambda: None
    """Gives up what the deployment holds exclusively (the state dir's lock); call it
    last, once the backend and the registry are closed."""
    sole_user: bool = False
    """This instance alone uses the registry (it holds the state dir's lock)."""


async def open_deployment(settings: SandboxServiceSettings, *,
                          backend: SandboxBackend | None = None,
                          registry: Registry | None = None) -> Deployment:
    """The backend and registry ``settings`` name, with injected ones taking precedence.

    Raises:
        StateDirInUseError: another running instance holds the state dir.
        IsolationUnavailableError: the deployment (or Redis) is not available in
            this build, or this host cannot isolate sandboxes.
        RegistryUnavailableError: the registry file cannot be used.
        OSError: the state dir or its lock file cannot be created.
    """
    if backend is not None and registry is not None:
        return Deployment(backend, registry)
    if settings.deployment == "k8s":
        return await _kubernetes(settings, backend, registry)
    return await _local(settings, backend, registry)


async def _local(settings: SandboxServiceSettings, backend: SandboxBackend | None,
                 registry: Registry | None) -> Deployment:
    if registry is None and settings.redis_enabled:
        raise IsolationUnavailableError(
            "REDIS_ENABLED=true is not available in this build; the registry is SQLite "
            f"under {settings.state_dir}")
    # Imported here: the local backend needs Linux modules a k8s build never loads.
    from sandbox_svc.local.backend import LocalBackend
    from sandbox_svc.local.statelock import StateLock
    from sandbox_svc.registry_sqlite import SqliteRegistry

    # Before anything in the state dir is looked at: a second instance touches nothing.
    lock = await asyncio.to_thread(StateLock.acquire, settings.state_dir)
    built: SandboxBackend | None = None
    try:
        if backend is None:
            # One host uid per sandbox: the range is as large as the sandbox limit.
            backend = built = await asyncio.to_thread(
                LocalBackend.for_host, settings.state_dir, uid_base=settings.uid_base,
                uid_count=settings.max_sandboxes, zygote=settings.zygote)
        if registry is None:
            registry = await asyncio.to_thread(
                SqliteRegistry, settings.state_dir / "registry.db")
    except BaseException:
        if built is not None:
            await built.close()
        lock.release()
        raise
    return Deployment(backend, registry, lock.release, sole_user=True)


async def _kubernetes(settings: SandboxServiceSettings, backend: SandboxBackend | None,
                      registry: Registry | None) -> Deployment:
    # Imported here: the official client takes over a second to import.
    from sandbox_svc.kubernetes.config import KubernetesSettings
    from sandbox_svc.kubernetes.deployment import open_kubernetes

    cidrs = tuple(c.strip() for c in settings.k8s_cluster_cidrs.split(",") if c.strip())
    kube = KubernetesSettings(
        namespace=settings.k8s_namespace, kubeconfig=settings.kubeconfig_path,
        image=settings.k8s_sandbox_image, sandboxd_port=settings.k8s_sandboxd_port,
        services_namespace=settings.k8s_services_namespace, cluster_cidrs=cidrs,
        start_timeout_s=settings.k8s_start_timeout_s)
    opened_backend, opened_registry = await open_kubernetes(
        kube, id_prefix=settings.id_prefix,
        reconcile_interval_s=settings.k8s_reconcile_interval_s)
    if registry is not None:
        await opened_registry.close()
    if backend is not None:
        await opened_backend.close()
    return Deployment(backend or opened_backend, registry or opened_registry)
