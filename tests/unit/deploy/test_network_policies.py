"""The rendered NetworkPolicies allow exactly the paths the services need."""

from __future__ import annotations

from typing import Any

import pytest
from network_policy_model import External, Pod, allows
from rendered_manifests import find, kubectl, render

pytestmark = pytest.mark.skipif(kubectl() is None, reason="needs kubectl (kubectl kustomize)")

Policies = list[dict[str, Any]]
SERVICES = "sandgate"
SANDBOXES = "sandgate-sandboxes"


def _service(name: str) -> Pod:
    return Pod(SERVICES, {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "sandgate"})


GATEWAY, CONTROL, AGENT = _service("gateway"), _service("sandbox-svc"), _service("agent-svc")
REDIS = _service("redis")
DNS = Pod("kube-system", {"k8s-app": "kube-dns"})
SANDBOX = Pod(SANDBOXES, {"app.kubernetes.io/name": "sandbox", "sandgate.io/template": "base"})
BROWSER = Pod(SANDBOXES, {"app.kubernetes.io/name": "sandbox", "sandgate.io/template": "browser",
                          "sandgate.io/egress": "internet"})
OUTSIDE = Pod("default", {"app": "client"})
SANDBOXD_PORT = 8080


@pytest.fixture(scope="module", params=["base", "overlays/kind", "overlays/ack", "overlays/acs"])
def policies(request: pytest.FixtureRequest) -> Policies:
    return find(render(request.param), "NetworkPolicy")


@pytest.mark.parametrize("source, destination, port", [
    (OUTSIDE, GATEWAY, 8000),
    (AGENT, GATEWAY, 8001),
    (GATEWAY, CONTROL, 8002),
    (GATEWAY, SANDBOX, SANDBOXD_PORT),
    (GATEWAY, BROWSER, SANDBOXD_PORT),
    (CONTROL, SANDBOX, SANDBOXD_PORT),
    (OUTSIDE, AGENT, 8090),
    (OUTSIDE, AGENT, 8003),
    (OUTSIDE, CONTROL, 9090),
    (GATEWAY, DNS, 53),
    (AGENT, DNS, 53),
    (BROWSER, DNS, 53),
])
def test_the_paths_the_services_need_are_open(
        policies: Policies, source: Pod, destination: Pod, port: int) -> None:
    assert allows(policies, source, destination, port)


@pytest.mark.parametrize("source, destination, port", [
    (OUTSIDE, GATEWAY, 8001),        # ToolGateway gRPC is for agent-svc
    (AGENT, CONTROL, 8002),          # agents reach sandboxes through the gateway only
    (OUTSIDE, CONTROL, 8002),
    (OUTSIDE, SANDBOX, SANDBOXD_PORT),
    (AGENT, SANDBOX, SANDBOXD_PORT),
    (SANDBOX, SANDBOX, SANDBOXD_PORT),
    (BROWSER, SANDBOX, SANDBOXD_PORT),
    (GATEWAY, SANDBOX, 22),
    (SANDBOX, GATEWAY, 8000),
    (SANDBOX, CONTROL, 8002),
    (BROWSER, GATEWAY, 8001),
    (SANDBOX, DNS, 53),              # no egress at all for templates without network
    (GATEWAY, AGENT, 8090),
])
def test_everything_else_between_pods_is_closed(
        policies: Policies, source: Pod, destination: Pod, port: int) -> None:
    assert not allows(policies, source, destination, port)


def test_a_sandbox_without_network_reaches_nothing_outside(policies: Policies) -> None:
    for address in ("93.184.215.14", "8.8.8.8", "10.96.0.1", "169.254.169.254"):
        for port in (53, 80, 443):
            assert not allows(policies, SANDBOX, External(address), port)


@pytest.mark.parametrize("address, reachable", [
    ("93.184.215.14", True),
    ("8.8.8.8", True),
    ("10.96.0.1", False),           # a typical Service address
    ("172.18.0.2", False),          # kind's node network
    ("192.168.1.10", False),
    ("169.254.169.254", False),     # cloud metadata
    ("100.100.100.200", False),     # Alibaba Cloud metadata
])
def test_a_networked_sandbox_reaches_the_internet_but_not_cluster_or_metadata(
        policies: Policies, address: str, reachable: bool) -> None:
    assert allows(policies, BROWSER, External(address), 443) is reachable


def test_only_the_agent_reaches_redis() -> None:
    policies = find(render("overlays/ack"), "NetworkPolicy")
    assert allows(policies, AGENT, REDIS, 6379)
    assert not allows(policies, GATEWAY, REDIS, 6379)
    assert not allows(policies, BROWSER, REDIS, 6379)
