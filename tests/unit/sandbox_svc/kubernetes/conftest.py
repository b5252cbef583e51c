"""Fixtures for the Kubernetes backend: the fake API server and clients of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sandbox_svc.kubernetes.api import KubeApi
from sandbox_svc.kubernetes.config import KubernetesSettings, open_api
from tests.fixtures.fake_kube_api import FakeKubeApi

NAMESPACE = "sandgate-sandboxes"


@pytest.fixture
def fake_api() -> Iterator[FakeKubeApi]:
    fake = FakeKubeApi()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def kube_settings(fake_api: FakeKubeApi, tmp_path: Path) -> KubernetesSettings:
    return KubernetesSettings(namespace=NAMESPACE,
                              kubeconfig=fake_api.write_kubeconfig(tmp_path / "kubeconfig"),
                              start_timeout_s=20.0, api_timeout_s=5.0)


@pytest.fixture
async def kube_api(kube_settings: KubernetesSettings) -> AsyncIterator[KubeApi]:
    api = await open_api(kube_settings)
    yield api
    await api.close()
