"""Open the Kubernetes backend and registry on one API client, with the reconciler.

Called by ``sandbox_svc.deployment`` for ``SANDGATE_DEPLOYMENT=k8s``.
"""

from __future__ import annotations

import asyncio
import re

from sandbox_svc.errors import IsolationUnavailableError
from sandbox_svc.kubernetes.backend import KubernetesBackend
from sandbox_svc.kubernetes.config import KubernetesSettings, open_api
from sandbox_svc.kubernetes.reconciler import Reconciler
from sandbox_svc.kubernetes.registry import KubernetesRegistry

__all__ = ["check_id_prefix", "open_kubernetes"]

_PREFIX = re.compile(r"([a-z0-9][-a-z0-9]*)?")


def check_id_prefix(prefix: str) -> None:
    """Sandbox ids name Pods and Secrets: the prefix must suit an object name.

    Raises:
        IsolationUnavailableError: naming the setting and what is allowed.
    """
    if not _PREFIX.fullmatch(prefix):
        raise IsolationUnavailableError(
            f"SANDGATE_ID_PREFIX={prefix!r} cannot start a Kubernetes object name: use "
            "lower-case letters, digits and '-', starting with a letter or digit")


async def open_kubernetes(settings: KubernetesSettings, *, id_prefix: str,
                          reconcile_interval_s: float) -> tuple[
                              KubernetesBackend, KubernetesRegistry]:
    """The backend (running the reconciler beside it) and the registry.

    Raises:
        IsolationUnavailableError: bad settings, no cluster, a bad kubeconfig or
            missing RBAC; the message names the fix.
    """
    check_id_prefix(id_prefix)
    api = await open_api(settings)
    backend = KubernetesBackend(api, settings)
    registry = KubernetesRegistry(api.share())
    reconciler = Reconciler(api, settings)
    backend.run_alongside(asyncio.create_task(reconciler.run(reconcile_interval_s),
                                              name="sandgate-k8s-reconciler"))
    return backend, registry
