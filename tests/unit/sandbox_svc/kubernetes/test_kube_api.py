"""The API adapter against the fake API server: verbs, preconditions, translated errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import NAMESPACE

from sandbox_svc.errors import IsolationUnavailableError
from sandbox_svc.kubernetes.api import (
    Kind,
    KubeAlreadyExistsError,
    KubeApi,
    KubeConflictError,
    KubeForbiddenError,
)
from sandbox_svc.kubernetes.config import KubernetesSettings, open_api
from sandbox_svc.kubernetes.labels import selector
from sandbox_svc.kubernetes.manifest import Manifest, labels_of, text
from tests.fixtures.fake_kube_api import FakeKubeApi
from tests.fixtures.fake_kubelet import free_port


def _secret(name: str, **extra_labels: str) -> Manifest:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": name, "labels": {"app.kubernetes.io/managed-by": "sandgate", **extra_labels}}}


async def test_created_objects_are_read_listed_by_label_and_deleted(kube_api: KubeApi) -> None:
    created = await kube_api.create(Kind.SECRET, _secret("a", role="x"))
    await kube_api.create(Kind.SECRET, _secret("b", role="y"))
    assert text(created, "metadata", "uid")
    assert (await kube_api.get(Kind.SECRET, "a")) == created
    listed = await kube_api.list(Kind.SECRET, selector({"role": "x"}))
    assert [text(s, "metadata", "name") for s in listed] == ["a"]
    assert await kube_api.delete(Kind.SECRET, "a")
    assert not await kube_api.delete(Kind.SECRET, "a")
    assert await kube_api.get(Kind.SECRET, "a") is None


async def test_a_patch_with_a_stale_resource_version_conflicts(kube_api: KubeApi) -> None:
    created = await kube_api.create(Kind.SECRET, _secret("a"))
    version = text(created, "metadata", "resourceVersion")
    await kube_api.patch(Kind.SECRET, "a", {"metadata": {"resourceVersion": version,
                                                         "labels": {"won": "yes"}}})
    with pytest.raises(KubeConflictError):
        await kube_api.patch(Kind.SECRET, "a", {"metadata": {"resourceVersion": version,
                                                             "labels": {"won": "no"}}})
    stored = await kube_api.get(Kind.SECRET, "a")
    assert stored is not None and labels_of(stored)["won"] == "yes"


async def test_creating_a_taken_name_and_deleting_another_uid_are_refused(
        kube_api: KubeApi) -> None:
    await kube_api.create(Kind.SECRET, _secret("a"))
    with pytest.raises(KubeAlreadyExistsError):
        await kube_api.create(Kind.SECRET, _secret("a"))
    with pytest.raises(KubeConflictError):
        await kube_api.delete(Kind.SECRET, "a", uid="not-its-uid")


async def test_an_exceeded_quota_is_a_forbidden_error_that_says_so(
        kube_api: KubeApi, fake_api: FakeKubeApi) -> None:
    fake_api.pod_quota = 0
    pod: Manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                     "spec": {"containers": [{"name": "c", "image": "i:1"}]}}
    with pytest.raises(KubeForbiddenError) as refused:
        await kube_api.create(Kind.POD, pod)
    assert refused.value.quota_exceeded and refused.value.status == 403


async def test_deleting_an_owner_deletes_its_dependents(kube_api: KubeApi) -> None:
    owner = await kube_api.create(Kind.SECRET, _secret("owner"))
    dependent = _secret("dependent")
    dependent["metadata"]["ownerReferences"] = [  # type: ignore[index]
        {"apiVersion": "v1", "kind": "Secret", "name": "owner",
         "uid": text(owner, "metadata", "uid")}]
    await kube_api.create(Kind.SECRET, dependent)
    await kube_api.delete(Kind.SECRET, "owner")
    assert await kube_api.get(Kind.SECRET, "dependent") is None


async def test_a_cancelled_write_still_lands_before_the_cancellation_returns(
        kube_api: KubeApi, fake_api: FakeKubeApi) -> None:
    task = asyncio.create_task(kube_api.create(Kind.SECRET, _secret("late")))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Whether it was sent or not, nothing of it is still in flight.
    before = fake_api.names("secrets")
    await asyncio.sleep(0.2)
    assert fake_api.names("secrets") == before


async def test_a_kubeconfig_with_the_wrong_token_is_refused_at_start_up(
        fake_api: FakeKubeApi, tmp_path: Path) -> None:
    config = fake_api.write_kubeconfig(tmp_path / "kc", token="wrong")
    with pytest.raises(IsolationUnavailableError, match="Kubernetes API"):
        await open_api(KubernetesSettings(namespace=NAMESPACE, kubeconfig=config))


async def test_a_missing_or_broken_kubeconfig_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(IsolationUnavailableError, match="KUBECONFIG_PATH"):
        await open_api(KubernetesSettings(kubeconfig=tmp_path / "absent"))
    broken = tmp_path / "broken"
    broken.write_text("clusters: [unclosed")
    with pytest.raises(IsolationUnavailableError, match="not a usable kubeconfig"):
        await open_api(KubernetesSettings(kubeconfig=broken))


async def test_an_api_server_that_does_not_answer_is_named_in_the_error(
        fake_api: FakeKubeApi, tmp_path: Path) -> None:
    fake_api.url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    config = fake_api.write_kubeconfig(tmp_path / "kc")
    with pytest.raises(IsolationUnavailableError, match="cannot reach") as refused:
        await open_api(KubernetesSettings(namespace=NAMESPACE, kubeconfig=config,
                                          api_timeout_s=2.0))
    assert fake_api.url in str(refused.value)


async def test_bad_settings_are_refused_before_any_request(tmp_path: Path) -> None:
    with pytest.raises(IsolationUnavailableError, match="K8S_NAMESPACE"):
        await open_api(KubernetesSettings(namespace="Not_A_Namespace"))
    with pytest.raises(IsolationUnavailableError, match="CLUSTER_CIDRS"):
        await open_api(KubernetesSettings(cluster_cidrs=("fd00::/8",)))
