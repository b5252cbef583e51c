"""Kubernetes backend details beyond the shared contract: hibernation, templates, reconciling."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from conftest import NAMESPACE

from sandbox_svc.backend import StartSpec
from sandbox_svc.errors import IsolationUnavailableError, PauseUnsupportedError
from sandbox_svc.kubernetes import labels as lbl
from sandbox_svc.kubernetes.api import Kind, KubeApi
from sandbox_svc.kubernetes.backend import KubernetesBackend
from sandbox_svc.kubernetes.config import KubernetesSettings
from sandbox_svc.kubernetes.reconciler import Reconciler
from sandbox_svc.kubernetes.records import record_secret
from sandbox_svc.pod_settings import PodSettings
from sandbox_svc.registry import SandboxRecord, SandboxStatus
from sandbox_svc.templates import Template
from tests.fixtures.fake_kube_api import FakeKubeApi
from tests.fixtures.fake_kubelet import FakeKubelet, free_port

HIBERNATE = "platform.example/hibernate"


@pytest.fixture
async def backend(fake_api: FakeKubeApi, kube_settings: KubernetesSettings,
                  kube_api: KubeApi) -> AsyncIterator[KubernetesBackend]:
    kubelet = FakeKubelet(fake_api, NAMESPACE, port=free_port(), mode="shared")
    await kubelet.start()
    yield KubernetesBackend(kube_api.share(), replace(kube_settings,
                                                      sandboxd_port=kubelet.port))
    await kubelet.stop()


def _pod_annotations(fake: FakeKubeApi, name: str) -> dict[str, str]:
    pod = fake.get("pods", NAMESPACE, name)
    assert pod is not None
    return dict(pod["metadata"].get("annotations", {}))  # type: ignore[union-attr]


async def test_a_template_that_names_the_platforms_annotation_can_hibernate(
        backend: KubernetesBackend, fake_api: FakeKubeApi) -> None:
    template = Template("acs", kubernetes=PodSettings(
        annotations={lbl.PAUSE_ANNOTATION: HIBERNATE}))
    await backend.start(StartSpec("sbx-h", template, "t"))
    await backend.pause("sbx-h")
    assert _pod_annotations(fake_api, "sbx-h")[HIBERNATE] == "true"
    assert await backend.alive("sbx-h")
    await backend.resume("sbx-h")
    assert _pod_annotations(fake_api, "sbx-h")[HIBERNATE] == "false"


async def test_other_templates_cannot_pause_and_nothing_changes(
        backend: KubernetesBackend, fake_api: FakeKubeApi) -> None:
    await backend.start(StartSpec("sbx-p", Template("base"), "t"))
    before = fake_api.get("pods", NAMESPACE, "sbx-p")
    with pytest.raises(PauseUnsupportedError, match=lbl.PAUSE_ANNOTATION):
        await backend.pause("sbx-p")
    assert fake_api.get("pods", NAMESPACE, "sbx-p") == before


@pytest.mark.parametrize("template", [
    Template("_odd"), Template("local", rootfs="/"),
    Template("loopback", network=True, allow=("host-loopback:8080",)),
], ids=["name", "rootfs", "host-loopback"])
async def test_templates_a_pod_cannot_honour_are_refused_at_start_up(
        backend: KubernetesBackend, template: Template) -> None:
    with pytest.raises(IsolationUnavailableError, match=repr(template.name)):
        await backend.check_template(template)


async def test_the_reconciler_removes_only_debris_older_than_a_start_could_take(
        kube_api: KubeApi, kube_settings: KubernetesSettings, fake_api: FakeKubeApi) -> None:
    now = time.time()
    starting = SandboxRecord("sbx-stuck", "base", "t", SandboxStatus.STARTING, now, now)
    await kube_api.create(Kind.SECRET, record_secret(starting, NAMESPACE))  # its Pod never came
    lonely_pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "sbx-lonely", "labels": {lbl.MANAGED_BY: "sandgate", lbl.SANDBOX_ID: "sbx-lonely"}},
        "spec": {"containers": [{"name": "sandboxd", "image": "sandgate/sandbox:0.1.0"}]}}
    await kube_api.create(Kind.POD, lonely_pod)  # its record was removed
    reconciler = Reconciler(kube_api, kube_settings)
    assert await reconciler.reconcile_once(now=now + 1) == []  # maybe work in flight
    later = now + kube_settings.start_timeout_s + kube_settings.orphan_grace_s + 60
    removed = await reconciler.reconcile_once(now=later)
    assert sorted(removed) == ["pod/sbx-lonely", "secret/sbx-stuck"]
    assert fake_api.names("pods") == fake_api.names("secrets") == set()
