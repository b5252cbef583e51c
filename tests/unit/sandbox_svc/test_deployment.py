"""One factory picks the backend and registry; build_server runs on injected ones."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from sandbox_fakes import FakeBackend

from sandbox_svc.deployment import open_deployment
from sandbox_svc.errors import IsolationUnavailableError, StateDirInUseError
from sandbox_svc.registry_memory import MemoryRegistry
from sandbox_svc.server import build_server
from sandbox_svc.settings import SandboxServiceSettings
from sandgate.sandbox.v1 import sandbox_service_pb2 as pb
from sandgate.sandbox.v1 import sandbox_service_pb2_grpc as pb_grpc


def _settings(tmp_path: Path, **overrides: object) -> SandboxServiceSettings:
    values: dict[str, object] = dict(
        host="127.0.0.1", port=0, state_dir=tmp_path / "state", pool_size=0,
        api_keys="", bearer_token="", reap_interval_s=3600.0)
    values.update(overrides)
    return SandboxServiceSettings(**values)  # type: ignore[arg-type]


async def test_kubernetes_without_a_usable_kubeconfig_is_refused_naming_the_setting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTAINER_DEPLOYMENT", "k8s")  # the seed's keys select it
    monkeypatch.setenv("KUBECONFIG_PATH", str(tmp_path / "no-such-kubeconfig"))
    settings = SandboxServiceSettings(state_dir=tmp_path / "state")
    assert settings.deployment == "k8s"
    with pytest.raises(IsolationUnavailableError, match="KUBECONFIG_PATH"):
        await open_deployment(settings)
    assert not (tmp_path / "state").exists()  # refused before touching anything


async def test_kubernetes_opens_pods_and_the_api_server_registry(tmp_path: Path) -> None:
    from sandbox_svc.kubernetes.backend import KubernetesBackend
    from sandbox_svc.kubernetes.registry import KubernetesRegistry
    from tests.fixtures.fake_kube_api import FakeKubeApi

    fake = FakeKubeApi()
    fake.start()
    try:
        settings = _settings(tmp_path, deployment="k8s", k8s_namespace="sandboxes",
                             kubeconfig_path=fake.write_kubeconfig(tmp_path / "kc"))
        with pytest.raises(IsolationUnavailableError, match="SANDGATE_ID_PREFIX"):
            await open_deployment(settings.model_copy(update={"id_prefix": "Sbx_"}))
        deployment = await open_deployment(settings)
        assert isinstance(deployment.backend, KubernetesBackend)
        assert isinstance(deployment.registry, KubernetesRegistry)
        assert await deployment.registry.all() == []
        await deployment.backend.close()
        await deployment.registry.close()
    finally:
        fake.stop()


async def test_a_redis_registry_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(IsolationUnavailableError, match="REDIS_ENABLED"):
        await open_deployment(_settings(tmp_path, redis_enabled=True), backend=FakeBackend())


async def test_injected_parts_are_used_as_they_are(tmp_path: Path) -> None:
    backend, registry = FakeBackend(), MemoryRegistry()
    deployment = await open_deployment(_settings(tmp_path, deployment="k8s"),
                                       backend=backend, registry=registry)
    assert deployment.backend is backend and deployment.registry is registry


async def test_a_local_deployment_with_an_injected_backend_opens_sqlite_in_the_state_dir(
        tmp_path: Path) -> None:
    deployment = await open_deployment(_settings(tmp_path), backend=FakeBackend())
    await deployment.registry.close()
    deployment.release()
    assert (tmp_path / "state" / "registry.db").is_file()


async def test_a_local_deployment_holds_the_state_dir_until_released(tmp_path: Path) -> None:
    first = await open_deployment(_settings(tmp_path), backend=FakeBackend())
    with pytest.raises(StateDirInUseError):
        await open_deployment(_settings(tmp_path), backend=FakeBackend())
    await first.registry.close()
    first.release()
    second = await open_deployment(_settings(tmp_path), backend=FakeBackend())
    await second.registry.close()
    second.release()


async def test_the_server_runs_on_an_injected_backend_and_registry(tmp_path: Path) -> None:
    backend, registry = FakeBackend(can_pause=False), MemoryRegistry()
    running = await build_server(_settings(tmp_path), backend=backend, registry=registry)
    try:
        async with grpc.aio.insecure_channel(running.address) as channel:
            stub = pb_grpc.SandboxServiceStub(channel)
            request = pb.AcquireSandboxRequest(
                template="base", session=pb.SessionKey(user_id="u", session_id="s1"))
            first = await stub.AcquireSandbox(request, timeout=10)
            again = await stub.AcquireSandbox(request, timeout=10)
            assert first.newly_bound and not again.newly_bound
            sandbox_id = first.sandbox.sandbox_id
            assert again.sandbox.sandbox_id == sandbox_id
            assert first.connection.target == f"fake://{sandbox_id}"
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.PauseSandbox(pb.PauseSandboxRequest(sandbox_id=sandbox_id),
                                        timeout=10)
            assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        await running.stop(grace=0.5)
    assert backend.sandboxes == {} and backend.closed  # auto_cleanup deleted it
