"""deploy/kustomize: every overlay renders, validates against Kubernetes 1.30 with
unknown fields refused, and keeps the invariants the design promises."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_validate import utils as kubernetes_validate
from rendered_manifests import (
    KUSTOMIZE,
    containers,
    find,
    kubectl,
    pod_specs,
    render,
    render_with,
)

from sandbox_svc.templates import TemplateCatalog, load_templates

pytestmark = pytest.mark.skipif(kubectl() is None, reason="needs kubectl (kubectl kustomize)")

Docs = tuple[dict[str, Any], ...]
OVERLAYS = ("overlays/kind", "overlays/ack", "overlays/acs")
WITH_COMPONENTS = {"base+otel-collector": ("otel-collector",),
                   "base+sandbox-runtime-class": ("sandbox-runtime-class",)}
VARIANTS = ("base", *OVERLAYS, *WITH_COMPONENTS)
SERVICES = ("gateway", "sandbox-svc", "agent-svc")
SANDBOX_IMAGE = "sandgate/sandbox:0.1.0"
PINNED_IMAGE = re.compile(r"^[a-z0-9][a-z0-9./_-]*:(?!latest$)[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Docs]:
    docs = {name: render(name) for name in ("base", *OVERLAYS)}
    for name, components in WITH_COMPONENTS.items():
        docs[name] = render_with(components, tmp_path_factory.mktemp(name))
    return docs


@pytest.fixture(params=VARIANTS)
def variant(request: pytest.FixtureRequest, rendered: dict[str, Docs]) -> tuple[str, Docs]:
    name: str = request.param
    return name, rendered[name]


def _catalog(docs: Docs, tmp_path: Path) -> TemplateCatalog:
    (config_map,) = [d for d in find(docs, "ConfigMap")
                     if d["metadata"]["name"].startswith("sandgate-templates")]
    path = tmp_path / "templates.yaml"
    path.write_text(config_map["data"]["templates.yaml"])
    return load_templates(path)


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def _service_container(docs: Docs, name: str) -> dict[str, Any]:
    (deployment,) = find(docs, "Deployment", name)
    (container,) = [c for c in containers(deployment["spec"]["template"]) if c["name"] == name]
    return container


def _all_containers(docs: Docs) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for workload, template in pod_specs(docs):
        for container in containers(template):
            yield workload["metadata"]["name"], template, container


_VALIDATED: set[str] = set()
"""Resources already validated: most are the same in every variant, and each
validation reads the schema files again (about 50 ms)."""


def test_every_variant_validates_strictly_against_kubernetes_1_30(
        variant: tuple[str, Docs]) -> None:
    name, docs = variant
    assert len(docs) > 20, f"{name} renders too little"
    for doc in docs:
        key = json.dumps(doc, sort_keys=True)
        if key not in _VALIDATED:
            kubernetes_validate.validate(doc, "1.30.0", strict=True)
            _VALIDATED.add(key)


def test_every_container_has_requests_and_limits(variant: tuple[str, Docs]) -> None:
    for workload, _, container in _all_containers(variant[1]):
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            assert set(resources.get(kind, {})) >= {"cpu", "memory"}, (workload, kind)


def test_every_container_is_probed_and_grpc_ports_natively(variant: tuple[str, Docs]) -> None:
    for workload, _, container in _all_containers(variant[1]):
        probes = [container[k] for k in ("startupProbe", "readinessProbe", "livenessProbe")
                  if k in container]
        assert "readinessProbe" in container and "livenessProbe" in container, workload
        grpc_probed = {p["grpc"]["port"] for p in probes if "grpc" in p}
        for port in container.get("ports", []):
            if port["name"] == "grpc":
                assert port["containerPort"] in grpc_probed, (workload, port)


def test_every_pod_runs_restricted(variant: tuple[str, Docs]) -> None:
    for workload, template in pod_specs(variant[1]):
        spec = template["spec"]
        assert not (spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"))
        pod_context = spec.get("securityContext", {})
        assert pod_context.get("seccompProfile") == {"type": "RuntimeDefault"}, workload
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        assert not any("hostPath" in v for v in volumes.values()), workload
        for container in containers(template):
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True and pod_context["runAsNonRoot"] is True
            assert context["allowPrivilegeEscalation"] is False, workload
            assert context["readOnlyRootFilesystem"] is True, workload
            assert context["capabilities"] == {"drop": ["ALL"]}, workload
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, workload
            assert not context.get("privileged"), workload
            for mount in container.get("volumeMounts", []):
                if not mount.get("readOnly"):
                    assert "emptyDir" in volumes[mount["name"]], (workload, mount)


def test_every_image_is_pinned_by_tag(variant: tuple[str, Docs], tmp_path: Path) -> None:
    name, docs = variant
    images = [c["image"] for _, _, c in _all_containers(docs)]
    images += [t.kubernetes.image or "" for t in _catalog(docs, tmp_path).all()]
    for image in images:
        assert PINNED_IMAGE.match(image), f"{name}: {image!r} is not pinned"
    assert {c["image"] for _, _, c in _all_containers(docs)
            if c["name"] in SERVICES} == {"sandgate/sandgate:0.1.0"}


def test_resources_carry_the_recommended_labels_but_selectors_do_not(
        variant: tuple[str, Docs]) -> None:
    for doc in variant[1]:
        labels = doc["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == "sandgate", doc["metadata"]["name"]
        assert "app.kubernetes.io/name" in labels, doc["metadata"]["name"]
    for workload, template in pod_specs(variant[1]):
        name = workload["metadata"]["name"]
        assert workload["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": name}}
        assert template["metadata"]["labels"]["app.kubernetes.io/part-of"] == "sandgate"
        assert "app.kubernetes.io/component" in template["metadata"]["labels"]


def test_both_namespaces_deny_everything_by_default(variant: tuple[str, Docs]) -> None:
    policies = find(variant[1], "NetworkPolicy", "default-deny")
    assert {p["metadata"]["namespace"] for p in policies} == {"sandgate", "sandgate-sandboxes"}
    for policy in policies:
        assert policy["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_rbac_is_namespaced_to_the_sandbox_namespace(variant: tuple[str, Docs]) -> None:
    docs = variant[1]
    assert not find(docs, "ClusterRole") and not find(docs, "ClusterRoleBinding")
    (role,) = find(docs, "Role")
    assert role["metadata"]["namespace"] == "sandgate-sandboxes"
    granted = {(resource, verb) for rule in role["rules"] for resource in rule["resources"]
               for verb in rule["verbs"]}
    for resource in ("pods", "secrets", "networkpolicies"):
        assert {(resource, v) for v in ("get", "list", "watch", "create", "delete")} <= granted
    assert ("pods/status", "patch") in granted and ("events", "get") in granted
    assert not any(resource == "events" and verb not in ("get", "list", "watch")
                   for resource, verb in granted)
    (binding,) = find(docs, "RoleBinding")
    assert binding["metadata"]["namespace"] == "sandgate-sandboxes"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "sandbox-svc", "namespace": "sandgate"}]


def test_only_sandbox_svc_gets_an_api_token(variant: tuple[str, Docs]) -> None:
    for workload, template in pod_specs(variant[1]):
        name = workload["metadata"]["name"]
        mounted = template["spec"].get("automountServiceAccountToken", True)
        assert mounted is (name == "sandbox-svc"), name


def test_no_secret_value_is_shipped(variant: tuple[str, Docs]) -> None:
    docs = variant[1]
    assert not find(docs, "Secret")
    for _, _, container in _all_containers(docs):
        for entry in container.get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == "sandgate-keys"
            assert not re.search(r"KEY|TOKEN|PASSWORD", entry["name"]) or "value" not in entry


def test_every_service_has_a_disruption_budget_and_the_gateway_an_autoscaler(
        variant: tuple[str, Docs]) -> None:
    docs = variant[1]
    for name in SERVICES:
        (budget,) = find(docs, "PodDisruptionBudget", name)
        assert budget["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": name}}
    (hpa,) = find(docs, "HorizontalPodAutoscaler", "gateway")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": "gateway"}
    (gateway,) = find(docs, "Deployment", "gateway")
    assert "replicas" not in gateway["spec"], "the autoscaler owns the gateway's replicas"


def test_services_point_at_ports_their_containers_open(variant: tuple[str, Docs]) -> None:
    docs = variant[1]
    for service in find(docs, "Service"):
        name = service["spec"]["selector"]["app.kubernetes.io/name"]
        (deployment,) = find(docs, "Deployment", name)
        named = {p["name"] for c in containers(deployment["spec"]["template"])
                 for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in named, (name, port)


def test_the_services_settings_read_the_deployed_environment(
        variant: tuple[str, Docs], monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.settings import GatewaySettings
    from sandbox_svc.settings import SandboxServiceSettings

    docs = variant[1]
    control = _service_container(docs, "sandbox-svc")
    for key, value in _env(control).items():
        monkeypatch.setenv(key, value)
    settings = SandboxServiceSettings.load()
    assert (settings.deployment, settings.k8s_namespace) == ("k8s", "sandgate-sandboxes")
    assert (settings.host, settings.port, settings.metrics_port) == ("0.0.0.0", 8002, 9090)
    assert settings.auto_cleanup is False
    mounts = {m["name"]: m["mountPath"] for m in control["volumeMounts"]}
    assert settings.templates_file == Path(mounts["templates"], "templates.yaml")
    (deployment,) = find(docs, "Deployment", "sandbox-svc")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["templates"]["configMap"]["name"].startswith("sandgate-templates")
    assert settings.state_dir == Path(mounts["state"])
    assert control["args"] == ["sandbox-server"]

    gateway = _service_container(docs, "gateway")
    for key, value in _env(gateway).items():
        monkeypatch.setenv(key, value)
    gateway_settings = GatewaySettings.load()
    assert (gateway_settings.host, gateway_settings.port, gateway_settings.grpc_port) == (
        "0.0.0.0", 8000, 8001)
    assert gateway_settings.sandbox_target == "sandbox-svc:8002"
    assert gateway["args"] == ["gateway-server"]
    assert _service_container(docs, "agent-svc")["args"] == ["agent-server"]


def test_agent_state_is_shared_in_redis_exactly_where_agents_scale_out(
        variant: tuple[str, Docs]) -> None:
    name, docs = variant
    (agent,) = find(docs, "Deployment", "agent-svc")
    env = _env(_service_container(docs, "agent-svc"))
    if find(docs, "Deployment", "redis"):
        assert env["SANDGATE_REDIS_URL"].startswith("redis://redis:6379/")
        assert agent["spec"]["replicas"] == 2
    else:
        assert "SANDGATE_REDIS_URL" not in env
        assert agent["spec"]["replicas"] == 1
    assert bool(find(docs, "Deployment", "redis")) is (name in ("overlays/ack", "overlays/acs"))


def test_every_templates_file_loads_with_pinned_sandbox_images(
        variant: tuple[str, Docs], tmp_path: Path) -> None:
    catalog = _catalog(variant[1], tmp_path)
    assert catalog.names() == ["base", "browser", "filesystem"]
    for template in catalog.all():
        assert template.kubernetes.image == SANDBOX_IMAGE
    assert catalog.get("browser").network and not catalog.get("base").network


def test_acs_settings_appear_in_the_acs_overlay_only(
        variant: tuple[str, Docs], tmp_path: Path) -> None:
    name, docs = variant
    text = json.dumps(docs)
    catalog = _catalog(docs, tmp_path)
    if name != "overlays/acs":
        assert "alibabacloud.com" not in text
        return
    for template in catalog.all():
        pod = template.kubernetes
        assert pod.labels == {"alibabacloud.com/acs": "true",
                              "alibabacloud.com/compute-class": "general-purpose"}
        assert pod.annotations == {"alibabacloud.com/enable-network-policy-agent": "true",
                                   "image.alibabacloud.com/enable-image-cache": "true"}
        assert pod.runtime_class_name is None
    for service in SERVICES:
        (deployment,) = find(docs, "Deployment", service)
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["alibabacloud.com/enable-network-policy-agent"] == "true"


def test_runv_appears_in_the_ack_overlay_only(variant: tuple[str, Docs], tmp_path: Path) -> None:
    name, docs = variant
    runtime_classes = {t.kubernetes.runtime_class_name for t in _catalog(docs, tmp_path).all()}
    if name == "overlays/ack":
        assert runtime_classes == {"runv"}
    else:
        assert "runv" not in json.dumps(docs)
        expected = {"gvisor"} if name == "base+sandbox-runtime-class" else {None}
        assert runtime_classes == expected


def test_the_runtime_class_component_brings_the_runtime_class_its_templates_use(
        rendered: dict[str, Docs]) -> None:
    (runtime_class,) = find(rendered["base+sandbox-runtime-class"], "RuntimeClass")
    assert (runtime_class["metadata"]["name"], runtime_class["handler"]) == ("gvisor", "runsc")
    assert not find(rendered["overlays/ack"], "RuntimeClass"), "ACK installs runv itself"


def test_ack_spreads_every_service_across_zones(rendered: dict[str, Docs]) -> None:
    for name in SERVICES:
        (deployment,) = find(rendered["overlays/ack"], "Deployment", name)
        spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        zone = [c for c in spread if c["topologyKey"] == "topology.kubernetes.io/zone"]
        assert zone and zone[0]["labelSelector"] == {
            "matchLabels": {"app.kubernetes.io/name": name}}


def test_kind_is_small(rendered: dict[str, Docs], tmp_path: Path) -> None:
    docs = rendered["overlays/kind"]
    for workload, _, container in _all_containers(docs):
        assert container["resources"]["requests"]["memory"] in ("64Mi", "128Mi"), workload
    catalog = _catalog(docs, tmp_path)
    assert sum(t.pool_size for t in catalog.all()) == 1
    assert max(t.memory_mb for t in catalog.all()) <= 1024


def test_otel_component_points_every_service_at_the_collector(
        rendered: dict[str, Docs]) -> None:
    docs = rendered["base+otel-collector"]
    assert find(docs, "Deployment", "otel-collector") and find(docs, "Service", "otel-collector")
    for name in SERVICES:
        env = _env(_service_container(docs, name))
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4317"
        assert env["OTEL_SERVICE_NAME"] == f"sandgate-{name}"


def test_every_component_has_a_readme_and_is_a_component() -> None:
    import yaml

    components = sorted(p for p in (KUSTOMIZE / "components").iterdir() if p.is_dir())
    assert [p.name for p in components] == ["acs", "otel-collector", "redis",
                                            "sandbox-runtime-class"]
    for path in components:
        assert (path / "README.md").read_text().startswith(f"# Component: {path.name}")
        kustomization = yaml.safe_load((path / "kustomization.yaml").read_text())
        assert kustomization["kind"] == "Component"


def test_overlays_only_compose_and_patch() -> None:
    import yaml

    for overlay in OVERLAYS:
        kustomization = yaml.safe_load((KUSTOMIZE / overlay / "kustomization.yaml").read_text())
        assert all(r.startswith("../../") for r in kustomization.get("resources", [])), overlay
        for generator in kustomization.get("configMapGenerator", []):
            assert generator["behavior"] == "replace", overlay
