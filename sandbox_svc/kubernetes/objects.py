"""The Kubernetes objects of one sandbox, as pure functions of its template.

- a Pod running sandboxd on TCP with the restricted securityContext, the
  template's image, limits, runtime class, labels and annotations, and a native
  gRPC readiness probe;
- a Secret holding the sandbox's token (mounted read-only at
  /run/sandgate/token), owned by the Pod so it goes when the Pod goes;
- a NetworkPolicy letting only the gateway and sandbox-svc reach sandboxd and,
  for templates with ``network: true``, egress to DNS and the internet without
  cluster, private and metadata ranges (plus the template's ``allow`` list).

Everything here is data: the tests validate it with ``kubernetes-validate``.
"""

from __future__ import annotations

import base64

from sandbox_svc.kubernetes import labels as lbl
from sandbox_svc.kubernetes.config import KubernetesSettings
from sandbox_svc.kubernetes.manifest import Manifest, name, text
from sandbox_svc.pod_settings import Toleration
from sandbox_svc.templates import Template

__all__ = [
    "CONTAINER",
    "SANDBOX_GID",
    "SANDBOX_UID",
    "TOKEN_DIR",
    "build_network_policy",
    "build_pod",
    "build_token_secret",
    "owner_reference",
    "sandbox_labels",
]

CONTAINER = "sandboxd"
TOKEN_DIR = "/run/sandgate"
SANDBOX_UID = 10000
"""The sandbox image's user (deploy/docker/Dockerfile.sandbox)."""
SANDBOX_GID = 10000
_SHM_SIZE = "256Mi"
_TMP_SIZE = "256Mi"
_STOP_GRACE_S = 5
"""sandboxd drains calls for 5 s on SIGTERM."""


def sandbox_labels(sandbox_id: str, template: str) -> dict[str, str]:
    """The labels every object of one sandbox carries.

    Raises:
        Nothing.
    """
    return {
        lbl.MANAGED_BY: lbl.MANAGED_BY_VALUE,
        lbl.SANDBOX_ID: sandbox_id,
        lbl.TEMPLATE: template,
    }


def _restricted_container_context() -> Manifest:
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _sandboxd_command(template: Template, port: int, warm_kernel: bool) -> list[str]:
    return [
        "python", "-m", "sandbox_svc.sandboxd",
        "--listen", f"0.0.0.0:{port}",
        "--workspace", "/workspace",
        "--token-file", f"{TOKEN_DIR}/{lbl.TOKEN_KEY}",
        # Browser templates start Chromium before serving, so a pooled Pod's
        # first browser call pays no launch (as the local backend does).
        *(["--browser-warm"] if "browser" in template.tool_groups else []),
        *(["--kernel-warm"] if warm_kernel else []),
    ]


def build_pod(sandbox_id: str, template: Template, settings: KubernetesSettings, *,
              warm_kernel: bool = False) -> Manifest:
    """The Pod of one sandbox.

    Memory and CPU limits are the template's ``memory_mb`` and ``cpu_millis``
    (requested in full, so the Pod is Guaranteed and never overcommitted);
    ``max_pids`` has no per-Pod field in Kubernetes (the node's pod PID limit
    applies). ``restartPolicy: Always`` restarts a crashed sandboxd with the
    workspace intact; a start that keeps crashing shows as CrashLoopBackOff.
    ``warm_kernel`` starts the Python kernel before the first cell (pooled Pods).

    Raises:
        Nothing.
    """
    pod_settings = template.kubernetes
    port = settings.sandboxd_port
    resources = {"memory": f"{template.memory_mb}Mi", "cpu": f"{template.cpu_millis}m"}
    pod_labels = {
        **pod_settings.labels,
        **sandbox_labels(sandbox_id, template.name),
        lbl.NAME: lbl.SANDBOX_NAME_VALUE,
    }
    if template.network:
        pod_labels[lbl.EGRESS] = "internet"
    pod_spec: Manifest = {
        "hostname": "sandbox",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": _STOP_GRACE_S,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": SANDBOX_UID,
            "runAsGroup": SANDBOX_GID,
            "fsGroup": SANDBOX_GID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [{
            "name": CONTAINER,
            "image": pod_settings.image or settings.image,
            "imagePullPolicy": "IfNotPresent",
            "command": _sandboxd_command(template, port, warm_kernel),
            "ports": [{"name": "sandboxd", "containerPort": port, "protocol": "TCP"}],
            "readinessProbe": {
                "grpc": {"port": port},
                "periodSeconds": 1,
                "timeoutSeconds": 1,
                "failureThreshold": 3,
            },
            "resources": {"requests": dict(resources), "limits": dict(resources)},
            "securityContext": _restricted_container_context(),
            "volumeMounts": [
                {"name": "token", "mountPath": TOKEN_DIR, "readOnly": True},
                {"name": "workspace", "mountPath": "/workspace"},
                {"name": "tmp", "mountPath": "/tmp"},
                {"name": "shm", "mountPath": "/dev/shm"},
            ],
        }],
        "volumes": [
            {"name": "token", "secret": {
                "secretName": sandbox_id, "defaultMode": 0o440,
                "items": [{"key": lbl.TOKEN_KEY, "path": lbl.TOKEN_KEY}]}},
            {"name": "workspace", "emptyDir": {"sizeLimit": settings.workspace_size}},
            {"name": "tmp", "emptyDir": {"sizeLimit": _TMP_SIZE}},
            {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": _SHM_SIZE}},
        ],
    }
    if pod_settings.runtime_class_name:
        pod_spec["runtimeClassName"] = pod_settings.runtime_class_name
    if pod_settings.service_account:
        pod_spec["serviceAccountName"] = pod_settings.service_account
    if pod_settings.node_selector:
        pod_spec["nodeSelector"] = dict(pod_settings.node_selector)
    if pod_settings.tolerations:
        pod_spec["tolerations"] = [_toleration(t) for t in pod_settings.tolerations]
    metadata: Manifest = {"name": sandbox_id, "namespace": settings.namespace,
                          "labels": pod_labels}
    if pod_settings.annotations:
        metadata["annotations"] = dict(pod_settings.annotations)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec}


def _toleration(toleration: Toleration) -> Manifest:
    result: Manifest = {key: value for key, value in (
        ("key", toleration.key), ("operator", toleration.operator),
        ("value", toleration.value), ("effect", toleration.effect)) if value}
    if toleration.toleration_seconds is not None:
        result["tolerationSeconds"] = toleration.toleration_seconds
    return result


def owner_reference(owner: Manifest) -> Manifest:
    """An ownerReference to ``owner`` (a stored object): its dependents go with it.

    Raises:
        Nothing.
    """
    return {
        "apiVersion": text(owner, "apiVersion") or "v1",
        "kind": text(owner, "kind") or "Pod",
        "name": name(owner),
        "uid": text(owner, "metadata", "uid"),
        "blockOwnerDeletion": False,
    }


def build_token_secret(sandbox_id: str, template: str, token: str,
                       settings: KubernetesSettings, owner: Manifest | None = None) -> Manifest:
    """The Secret holding the sandbox's token, owned by its Pod when ``owner`` is given.

    Raises:
        Nothing.
    """
    metadata: Manifest = {
        "name": sandbox_id,
        "namespace": settings.namespace,
        "labels": {**sandbox_labels(sandbox_id, template), lbl.OBJECT: lbl.OBJECT_SANDBOX},
    }
    if owner is not None:
        metadata["ownerReferences"] = [owner_reference(owner)]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata,
        "data": {lbl.TOKEN_KEY: base64.b64encode(token.encode()).decode()},
    }


def _internet_egress(template: Template, settings: KubernetesSettings) -> list[Manifest]:
    rules: list[Manifest] = [
        {
            "to": [{
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        },
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": settings.blocked_cidrs()}}]},
    ]
    # The allow list opens single addresses inside the blocked ranges, port by port.
    for rule in template.allow_rules():
        rules.append({
            "to": [{"ipBlock": {"cidr": f"{rule.address}/32"}}],
            "ports": [{"protocol": "TCP", "port": rule.port}],
        })
    return rules


def build_network_policy(sandbox_id: str, template: Template,
                         settings: KubernetesSettings) -> Manifest:
    """The NetworkPolicy of one sandbox Pod: who may reach sandboxd, where it may go.

    Raises:
        Nothing.
    """
    ingress_peer: Manifest = {
        "namespaceSelector": {
            "matchLabels": {"kubernetes.io/metadata.name": settings.services_namespace}},
        "podSelector": {"matchExpressions": [{
            "key": lbl.NAME, "operator": "In", "values": list(settings.ingress_from)}]},
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": sandbox_id,
            "namespace": settings.namespace,
            "labels": sandbox_labels(sandbox_id, template.name),
        },
        "spec": {
            "podSelector": {"matchLabels": {lbl.SANDBOX_ID: sandbox_id}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{
                "from": [ingress_peer],
                "ports": [{"protocol": "TCP", "port": settings.sandboxd_port}],
            }],
            "egress": _internet_egress(template, settings) if template.network else [],
        },
    }
