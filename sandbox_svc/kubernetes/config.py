"""What the Kubernetes backend needs to know, and how it reaches the API server.

:class:`KubernetesSettings` is filled by the deployment factory from
``SandboxServiceSettings`` (the one place that reads the environment).
:func:`open_api` finds the cluster the way ``kubectl`` users expect: an explicit
kubeconfig (``KUBECONFIG_PATH``), else the Pod's service account (in-cluster),
else ``~/.kube/config``; then proves it can list Pods in the namespace, so a
missing cluster or a bad kubeconfig stops sandbox_svc at start-up with a
message naming the fix instead of failing every sandbox later.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from sandbox_svc.errors import IsolationUnavailableError
from sandbox_svc.kubernetes.api import (
    Kind,
    KubeApi,
    KubeApiError,
    KubeForbiddenError,
    KubeUnreachableError,
)
from sandbox_svc.kubernetes.labels import is_object_name, selector

__all__ = ["BLOCKED_EGRESS_CIDRS", "KubernetesSettings", "open_api"]

BLOCKED_EGRESS_CIDRS: tuple[str, ...] = (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.100.100.200/32",
)
"""Never reachable from a networked sandbox: private ranges (where cluster Pods
and Services live on kind, ACK and ACS), link-local (cloud metadata) and
Alibaba Cloud's metadata address."""


@dataclass(frozen=True)
class KubernetesSettings:
    """Where and how sandbox Pods run."""

    namespace: str = "sandgate-sandboxes"
    """Namespace of the sandbox Pods, their Secrets and NetworkPolicies."""
    kubeconfig: Path | None = None
    """A kubeconfig file; None: in-cluster config, else ~/.kube/config."""
    image: str = "sandgate/sandbox:0.1.0"
    """Sandbox image for templates whose ``kubernetes.image`` is unset."""
    sandboxd_port: int = 8080
    """TCP port sandboxd listens on inside each Pod."""
    services_namespace: str = "sandgate"
    """Namespace of the gateway and sandbox-svc Pods: the only ones let in."""
    ingress_from: tuple[str, ...] = ("gateway", "sandbox-svc")
    """``app.kubernetes.io/name`` of the Pods that may connect to sandboxd."""
    cluster_cidrs: tuple[str, ...] = ()
    """More IPv4 ranges networked sandboxes must not reach (your Pod and Service
    CIDRs when they lie outside the private ranges)."""
    start_timeout_s: float = 90.0
    """How long a Pod may take to become Ready (image pull included)."""
    api_timeout_s: float = 10.0
    """Connect and read timeout of each API request."""
    workspace_size: str = "1Gi"
    """Size limit of each sandbox's /workspace (an emptyDir)."""
    orphan_grace_s: float = 120.0
    """Objects without their partners are deleted only once this much older than
    the start timeout, so a start still in flight on another replica is never
    mistaken for a leftover."""

    def validate(self) -> None:
        """Check the values before anything talks to the cluster.

        Raises:
            IsolationUnavailableError: naming the setting, the value and what is allowed.
        """
        for setting, value in (("K8S_NAMESPACE", self.namespace),
                               ("SANDGATE_K8S_SERVICES_NAMESPACE", self.services_namespace)):
            if not is_object_name(value):
                raise IsolationUnavailableError(
                    f"{setting}={value!r} is not a namespace name (lower-case letters, digits "
                    "and '-', at most 63)")
        if not 1 <= self.sandboxd_port <= 65535:
            raise IsolationUnavailableError(
                f"SANDGATE_K8S_SANDBOXD_PORT={self.sandboxd_port} must be in [1, 65535]")
        for cidr in self.cluster_cidrs:
            try:
                network = ipaddress.ip_network(cidr)
            except ValueError:
                network = None
            if network is None or network.version != 4:
                raise IsolationUnavailableError(
                    f"SANDGATE_K8S_CLUSTER_CIDRS entry {cidr!r} must be an IPv4 range such "
                    "as 10.96.0.0/12")
        if self.start_timeout_s <= 0 or self.api_timeout_s <= 0:
            raise IsolationUnavailableError("Kubernetes timeouts must be positive")

    def blocked_cidrs(self) -> list[str]:
        """Every range networked sandboxes must not reach, without duplicates.

        Raises:
            Nothing.
        """
        return list(dict.fromkeys([*BLOCKED_EGRESS_CIDRS, *self.cluster_cidrs]))


def _load_client(kubeconfig: Path | None) -> tuple[object, str]:
    """A configured ApiClient and a sentence saying where its configuration came from."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    if kubeconfig is None:
        try:
            config.load_incluster_config(client_configuration=configuration)
            return client.ApiClient(configuration), "the in-cluster service account"
        except ConfigException:
            kubeconfig = Path.home() / ".kube" / "config"
            if not kubeconfig.is_file():
                raise IsolationUnavailableError(
                    "no Kubernetes cluster configured: sandbox-svc is not running in a "
                    f"cluster and {kubeconfig} does not exist; set KUBECONFIG_PATH to a "
                    "kubeconfig, or use SANDGATE_DEPLOYMENT=local") from None
    elif not kubeconfig.is_file():
        raise IsolationUnavailableError(
            f"KUBECONFIG_PATH={kubeconfig} does not exist; point it at a kubeconfig file "
            "(kind get kubeconfig > FILE writes one for a kind cluster)")
    try:
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration,
                                persist_config=False)
    except Exception as exc:  # the loader lets yaml, key and type errors out unwrapped
        detail = (str(exc).splitlines() or [""])[0] or type(exc).__name__
        raise IsolationUnavailableError(
            f"{kubeconfig} is not a usable kubeconfig ({detail}); check it with "
            "'kubectl --kubeconfig FILE get pods', or set KUBECONFIG_PATH to another file"
        ) from None
    return client.ApiClient(configuration), str(kubeconfig)


async def open_api(settings: KubernetesSettings) -> KubeApi:
    """Connect to the cluster and check that sandbox Pods can be listed.

    Raises:
        IsolationUnavailableError: no cluster is configured, the kubeconfig is
            unusable, the API server does not answer, or RBAC forbids managing
            Pods in the namespace; the message names the fix.
    """
    settings.validate()
    api_client, source = await asyncio.to_thread(_load_client, settings.kubeconfig)
    api = KubeApi(api_client, settings.namespace, settings.api_timeout_s)
    try:
        await api.list(Kind.POD, selector())
    except KubeUnreachableError as exc:
        await api.close()
        raise IsolationUnavailableError(
            f"cannot reach the Kubernetes API at {api.host} (from {source}): {exc.message}; "
            "check that the cluster is up and KUBECONFIG_PATH points at it") from None
    except KubeForbiddenError as exc:
        await api.close()
        raise IsolationUnavailableError(
            f"the Kubernetes API refused to list Pods in namespace {settings.namespace!r} "
            f"({exc.message}); grant sandbox-svc's service account the Role in "
            "deploy/kustomize/base/sandbox-svc.yaml") from None
    except KubeApiError as exc:
        await api.close()
        raise IsolationUnavailableError(
            f"the Kubernetes API at {api.host} answered {exc}; check KUBECONFIG_PATH "
            f"and K8S_NAMESPACE={settings.namespace!r}") from None
    return api
