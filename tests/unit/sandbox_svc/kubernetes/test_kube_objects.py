"""The objects of one sandbox: valid for Kubernetes 1.30 (strict), restricted, policed.

Every template the kustomize overlays ship is built and validated, so a
template option that produces an invalid Pod fails here, not in a cluster.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from kubernetes_validate import utils as kubernetes_validate

from sandbox_svc.kubernetes import labels as lbl
from sandbox_svc.kubernetes.config import BLOCKED_EGRESS_CIDRS, KubernetesSettings
from sandbox_svc.kubernetes.manifest import Manifest, field
from sandbox_svc.kubernetes.objects import (
    build_network_policy,
    build_pod,
    build_token_secret,
)
from sandbox_svc.pod_settings import PodSettings, Toleration
from sandbox_svc.templates import Template, load_templates

REPO = Path(__file__).resolve().parents[4]
TEMPLATE_FILES = sorted((REPO / "deploy" / "kustomize").glob("**/templates.yaml"))
SETTINGS = KubernetesSettings(cluster_cidrs=("100.64.0.0/10",))


def _templates() -> list[tuple[str, Template]]:
    found = []
    for path in TEMPLATE_FILES:
        for template in load_templates(path).all():
            found.append((f"{path.parent.name}/{template.name}", template))
    return found


def _validate(obj: Manifest) -> None:
    kubernetes_validate.validate(obj, "1.30.0", strict=True)


def _container(pod: Manifest) -> Manifest:
    containers = field(pod, "spec", "containers")
    assert isinstance(containers, list) and len(containers) == 1
    container: Manifest = containers[0]
    return container


def test_the_overlays_ship_templates_to_build() -> None:
    assert len(TEMPLATE_FILES) >= 4 and len(_templates()) >= 12


@pytest.mark.parametrize(("where", "template"), _templates(), ids=lambda v: str(v)[:40])
def test_every_shipped_template_builds_objects_kubernetes_accepts(
        where: str, template: Template) -> None:
    _validate(build_pod("sbx-0123456789", template, SETTINGS))
    _validate(build_token_secret("sbx-0123456789", template.name, "t0k3n", SETTINGS))
    _validate(build_network_policy("sbx-0123456789", template, SETTINGS))


def test_the_pod_is_restricted_probed_limited_and_mounts_its_token() -> None:
    template = Template("data", memory_mb=768, cpu_millis=1500, tool_groups=("base", "browser"))
    pod = build_pod("sbx-a", template, SETTINGS)
    spec = pod["spec"]
    assert isinstance(spec, dict)
    assert spec["automountServiceAccountToken"] is False
    assert field(spec, "securityContext", "runAsNonRoot") is True
    assert field(spec, "securityContext", "seccompProfile", "type") == "RuntimeDefault"
    container = _container(pod)
    assert container["securityContext"] == {
        "runAsNonRoot": True, "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"}}
    assert field(container, "readinessProbe", "grpc", "port") == 8080
    limits = {"memory": "768Mi", "cpu": "1500m"}
    assert container["resources"] == {"requests": limits, "limits": limits}
    assert "--browser-warm" in container["command"]  # type: ignore[operator]
    assert "--kernel-warm" not in container["command"]  # type: ignore[operator]
    assert container["command"][3:5] == ["--listen", "0.0.0.0:8080"]  # type: ignore[index]
    token_mount = [m for m in container["volumeMounts"]  # type: ignore[attr-defined]
                   if m["name"] == "token"]
    assert token_mount == [{"name": "token", "mountPath": "/run/sandgate", "readOnly": True}]
    token_volume = [v for v in spec["volumes"] if v["name"] == "token"]  # type: ignore[attr-defined]
    assert field(token_volume[0], "secret", "secretName") == "sbx-a"


def test_template_settings_reach_the_pod_but_never_replace_sandgates_labels() -> None:
    template = Template("acs", kubernetes=PodSettings(
        image="registry.example/team/sandbox:1.2", runtime_class_name="runv",
        service_account="sandbox-runner", labels={"alibabacloud.com/acs": "true"},
        annotations={"alibabacloud.com/enable-network-policy-agent": "true"},
        node_selector={"kubernetes.io/arch": "amd64"},
        tolerations=(Toleration(key="sandbox", value="true", effect="NoSchedule"),)))
    pod = build_pod("sbx-a", template, SETTINGS)
    _validate(pod)
    assert field(pod, "metadata", "labels") == {
        "alibabacloud.com/acs": "true", lbl.MANAGED_BY: "sandgate", lbl.SANDBOX_ID: "sbx-a",
        lbl.TEMPLATE: "acs", lbl.NAME: "sandbox"}
    assert field(pod, "metadata", "annotations") == {
        "alibabacloud.com/enable-network-policy-agent": "true"}
    assert _container(pod)["image"] == "registry.example/team/sandbox:1.2"
    assert field(pod, "spec", "runtimeClassName") == "runv"
    assert field(pod, "spec", "serviceAccountName") == "sandbox-runner"
    assert field(pod, "spec", "tolerations") == [
        {"key": "sandbox", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]


def test_a_pod_without_network_may_be_reached_by_the_services_only_and_reach_nothing() -> None:
    policy = build_network_policy("sbx-a", Template("base"), SETTINGS)
    assert field(policy, "spec", "podSelector") == {"matchLabels": {lbl.SANDBOX_ID: "sbx-a"}}
    assert field(policy, "spec", "policyTypes") == ["Ingress", "Egress"]
    assert field(policy, "spec", "egress") == []
    ingress = field(policy, "spec", "ingress")
    assert ingress == [{
        "from": [{"namespaceSelector": {"matchLabels": {
                      "kubernetes.io/metadata.name": "sandgate"}},
                  "podSelector": {"matchExpressions": [{
                      "key": lbl.NAME, "operator": "In", "values": ["gateway", "sandbox-svc"]}]}}],
        "ports": [{"protocol": "TCP", "port": 8080}]}]
    pod_labels = field(build_pod("sbx-a", Template("base"), SETTINGS), "metadata", "labels")
    assert isinstance(pod_labels, dict) and lbl.EGRESS not in pod_labels


def test_a_networked_pod_reaches_dns_and_the_internet_but_no_cluster_or_metadata_range() -> None:
    template = Template("web", network=True, allow=("192.168.1.5:8443",))
    policy = build_network_policy("sbx-a", template, SETTINGS)
    dns, internet, allowed = field(policy, "spec", "egress")  # type: ignore[misc]
    assert field(dns, "ports") == [{"protocol": "UDP", "port": 53},
                                   {"protocol": "TCP", "port": 53}]
    assert field(internet, "to") == [{"ipBlock": {
        "cidr": "0.0.0.0/0", "except": [*BLOCKED_EGRESS_CIDRS, "100.64.0.0/10"]}}]
    assert "100.100.100.200/32" in BLOCKED_EGRESS_CIDRS and "169.254.0.0/16" in BLOCKED_EGRESS_CIDRS
    assert allowed == {"to": [{"ipBlock": {"cidr": "192.168.1.5/32"}}],
                       "ports": [{"protocol": "TCP", "port": 8443}]}
    pod_labels = field(build_pod("sbx-a", template, SETTINGS), "metadata", "labels")
    assert isinstance(pod_labels, dict) and pod_labels[lbl.EGRESS] == "internet"


def test_the_token_secret_is_owned_by_the_pod_when_one_is_given() -> None:
    owner: Manifest = {"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": "sbx-a", "uid": "u-1"}}
    secret = build_token_secret("sbx-a", "base", "s3cr3t", SETTINGS, owner)
    _validate(secret)
    assert field(secret, "metadata", "ownerReferences") == [
        {"apiVersion": "v1", "kind": "Pod", "name": "sbx-a", "uid": "u-1",
         "blockOwnerDeletion": False}]
    assert base64.b64decode(str(field(secret, "data", "token"))) == b"s3cr3t"


def test_a_warm_kernel_template_starts_its_kernel_in_the_pod() -> None:
    container = _container(build_pod("sbx-a", Template("data", warm_kernel=True), SETTINGS,
                                     warm_kernel=True))
    assert "--kernel-warm" in container["command"]  # type: ignore[operator]
