from __future__ import annotations

from pathlib import Path

import pytest

from sandbox_svc.errors import InvalidRequestError
from sandbox_svc.pod_settings import PodSettings, Toleration
from sandbox_svc.templates import load_templates

FULL_BLOCK = """\
templates:
  - name: browser
    network: true
    tool_groups: [base, filesystem, browser]
    kubernetes:
      image: registry.example:5000/sandgate/sandbox:0.1.0
      runtime_class_name: runv
      service_account: sandbox-runner
      labels: {alibabacloud.com/compute-class: general-purpose, alibabacloud.com/acs: "true"}
      annotations: {alibabacloud.com/enable-network-policy-agent: "true"}
      node_selector: {kubernetes.io/arch: amd64}
      tolerations:
        - {key: sandbox, operator: Equal, value: "true", effect: NoSchedule}
        - {operator: Exists, effect: NoExecute, tolerationSeconds: 30}
"""


def _load(tmp_path: Path, text: str, name: str = "x") -> PodSettings:
    path = tmp_path / "templates.yaml"
    path.write_text(text)
    return load_templates(path).get(name).kubernetes


def test_a_full_kubernetes_block_becomes_pod_settings(tmp_path: Path) -> None:
    pod = _load(tmp_path, FULL_BLOCK, "browser")
    assert pod.image == "registry.example:5000/sandgate/sandbox:0.1.0"
    assert pod.runtime_class_name == "runv"
    assert pod.service_account == "sandbox-runner"
    assert pod.labels == {"alibabacloud.com/compute-class": "general-purpose",
                          "alibabacloud.com/acs": "true"}
    assert pod.annotations == {"alibabacloud.com/enable-network-policy-agent": "true"}
    assert pod.node_selector == {"kubernetes.io/arch": "amd64"}
    assert pod.tolerations == (
        Toleration(key="sandbox", operator="Equal", value="true", effect="NoSchedule"),
        Toleration(operator="Exists", effect="NoExecute", toleration_seconds=30))


def test_templates_without_a_block_get_the_backend_defaults(tmp_path: Path) -> None:
    pod = _load(tmp_path, "templates:\n  - {name: x, memory_mb: 1024}\n")
    assert pod == PodSettings()
    assert load_templates(None).get("base").kubernetes == PodSettings()


def test_an_empty_service_account_means_none(tmp_path: Path) -> None:
    pod = _load(tmp_path, "templates:\n  - {name: x, kubernetes: {service_account: ''}}\n")
    assert pod.service_account is None


def test_the_existing_keys_keep_working_beside_the_block(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("templates:\n"
                    "  - name: data\n"
                    "    memory_mb: 2048\n"
                    "    pool_size: 0\n"
                    "    kubernetes: {runtime_class_name: gvisor}\n")
    data = load_templates(path).get("data")
    assert (data.memory_mb, data.pool_size) == (2048, 0)
    assert data.kubernetes.runtime_class_name == "gvisor"


@pytest.mark.parametrize("block, fragments", [
    ("{colour: red}", ["unknown keys ['colour']", "runtime_class_name"]),
    ("[runv]", ["must be a mapping"]),
    ("{image: sandgate/sandbox}", ["kubernetes.image", "must be pinned"]),
    ("{image: 'sandgate/sandbox:latest'}", ["kubernetes.image", "not latest"]),
    ("{runtime_class_name: Run_V}", ["kubernetes.runtime_class_name", "DNS subdomain"]),
    ("{service_account: 'a b'}", ["kubernetes.service_account", "DNS subdomain"]),
    ("{labels: {alibabacloud.com/acs: true}}", ["kubernetes.labels", "quote values"]),
    ("{labels: {'bad key!': x}}", ["kubernetes.labels key 'bad key!'", "label key"]),
    ("{labels: {a: 'not a value'}}", ["kubernetes.labels['a']", "at most 63"]),
    ("{labels: {sandgate.io/egress: internet}}", ["'sandgate.io/egress' is set by Sandgate"]),
    ("{labels: {app.kubernetes.io/name: x}}", ["is set by Sandgate", "sandgate.io/ prefix"]),
    ("{node_selector: [a]}", ["kubernetes.node_selector", "mapping of strings"]),
    ("{annotations: {'x/y/z': v}}", ["kubernetes.annotations key 'x/y/z'"]),
    ("{tolerations: {key: a}}", ["kubernetes.tolerations must be a list"]),
    ("{tolerations: [{key: a, operator: In}]}", ["operator 'In'", "Equal, Exists"]),
    ("{tolerations: [{key: a, effect: Never}]}", ["effect 'Never'", "NoSchedule"]),
    ("{tolerations: [{key: a, color: b}]}", ["unknown keys ['color']", "tolerationSeconds"]),
    ("{tolerations: [{value: b}]}", ["empty key needs operator Exists"]),
    ("{tolerations: [{key: a, tolerationSeconds: 5}]}", ["needs effect NoExecute"]),
])
def test_bad_blocks_are_rejected_naming_the_key_and_what_is_allowed(
        tmp_path: Path, block: str, fragments: list[str]) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(f"templates:\n  - name: x\n    kubernetes: {block}\n")
    with pytest.raises(InvalidRequestError) as info:
        load_templates(path)
    message = str(info.value)
    assert message.startswith("template 'x': kubernetes")
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("image", [
    "sandgate/sandbox:0.1.0",
    "registry.example:5000/team/sandbox:2026.11-slim",
    "sandgate/sandbox@sha256:" + "a" * 64,
])
def test_pinned_images_are_accepted(image: str) -> None:
    PodSettings(image=image).validate("x")


@pytest.mark.parametrize("image", ["registry.example:5000/sandbox", "sandbox:", ":1.0"])
def test_unpinned_images_are_refused(image: str) -> None:
    with pytest.raises(InvalidRequestError, match="must be pinned"):
        PodSettings(image=image).validate("x")
