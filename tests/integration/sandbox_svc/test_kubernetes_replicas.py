"""Several sandbox_svc replicas on one (fake) API server, through the whole control plane.

Each replica has its own API client, backend, registry and manager, as separate
Pods would; they share only the fake API server. Its fake kubelet makes every
Pod Ready at 127.0.0.1, where one health server answers for all of them
(these tests start many sandboxes and run nothing inside them).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest

from sandbox_svc.errors import BackendError
from sandbox_svc.kubernetes import labels as lbl
from sandbox_svc.kubernetes.api import Kind, KubeApi
from sandbox_svc.kubernetes.backend import KubernetesBackend
from sandbox_svc.kubernetes.config import KubernetesSettings, open_api
from sandbox_svc.kubernetes.reconciler import Reconciler
from sandbox_svc.kubernetes.records import read_record
from sandbox_svc.kubernetes.registry import KubernetesRegistry
from sandbox_svc.manager import Limits, SandboxManager
from sandbox_svc.pod_settings import PodSettings
from sandbox_svc.server import build_server
from sandbox_svc.settings import SandboxServiceSettings
from sandbox_svc.templates import Template, TemplateCatalog
from sandgate.sandbox.v1 import sandbox_service_pb2 as pb
from sandgate.sandbox.v1 import sandbox_service_pb2_grpc as pb_grpc
from tests.fixtures.fake_kube_api import FakeKubeApi, Obj
from tests.fixtures.fake_kubelet import FakeKubelet, free_port

NS = "sandboxes"
BROKEN_IMAGE = "sandgate/missing:0.0.0"
Replica = Callable[..., Awaitable[SandboxManager]]


def _catalog(pool: int, broken_pool: int = 0) -> TemplateCatalog:
    return TemplateCatalog([
        Template("base", pool_size=pool),
        Template("broken", pool_size=broken_pool, kubernetes=PodSettings(image=BROKEN_IMAGE)),
    ])


@pytest.fixture
async def fake() -> AsyncIterator[FakeKubeApi]:
    api = FakeKubeApi()
    api.start()
    yield api
    api.stop()


@pytest.fixture
async def settings(fake: FakeKubeApi, tmp_path: Path) -> AsyncIterator[KubernetesSettings]:
    kubelet = FakeKubelet(fake, NS, port=free_port(), mode="shared",
                          broken_images=frozenset({BROKEN_IMAGE}))
    await kubelet.start()
    yield KubernetesSettings(namespace=NS, kubeconfig=fake.write_kubeconfig(tmp_path / "kc"),
                             sandboxd_port=kubelet.port, start_timeout_s=10.0,
                             api_timeout_s=5.0)
    await kubelet.stop()


@pytest.fixture
async def replicas(settings: KubernetesSettings) -> AsyncIterator[Replica]:
    """Starts replicas (manager + backend + registry on their own client); stops them."""
    started: list[SandboxManager] = []

    async def replica(*, pool: int = 0, broken_pool: int = 0,
                      max_sandboxes: int = 64) -> SandboxManager:
        api = await open_api(settings)
        manager = SandboxManager(_catalog(pool, broken_pool), KubernetesRegistry(api.share()),
                                 KubernetesBackend(api, settings),
                                 Limits(max_sandboxes=max_sandboxes, reap_interval_s=3600))
        await manager.start()
        started.append(manager)
        return manager

    yield replica
    for manager in started:
        with contextlib.suppress(Exception):
            await manager.stop(delete_all=False)


async def _pool_ready(manager: SandboxManager, ready: int) -> None:
    async with asyncio.timeout(30):
        while True:
            (view,) = await manager.pool_status("base")
            if view.ready >= ready and view.starting == 0:
                return
            await asyncio.sleep(0.02)


def _ids(fake: FakeKubeApi, plural: str, **match: str) -> Counter[str]:
    found: Counter[str] = Counter()
    for obj in fake.objects(plural, NS):
        labels = obj["metadata"].get("labels", {})  # type: ignore[union-attr]
        if all(labels.get(k) == v for k, v in match.items()):
            found[labels.get(lbl.SANDBOX_ID, "")] += 1
    return found


def _records(fake: FakeKubeApi) -> list[tuple[Obj, object]]:
    return [(s, read_record(s)) for s in fake.objects("secrets", NS)
            if s["metadata"]["labels"].get(lbl.OBJECT) == lbl.OBJECT_SANDBOX]  # type: ignore[index]


def _assert_consistent(fake: FakeKubeApi) -> None:
    """Every sandbox whole (Pod, Secret, policy), every session bound once, every lock live."""
    pods, policies = _ids(fake, "pods"), _ids(fake, "networkpolicies")
    secrets = _ids(fake, "secrets", **{lbl.OBJECT: lbl.OBJECT_SANDBOX})
    assert set(pods) == set(secrets) == set(policies), (pods, secrets, policies)
    sessions = Counter(r.session for _, r in _records(fake)
                       if r is not None and r.session is not None)  # type: ignore[attr-defined]
    assert all(n == 1 for n in sessions.values()), sessions
    for lock in fake.objects("secrets", NS):
        labels = lock["metadata"]["labels"]  # type: ignore[index]
        if labels.get(lbl.OBJECT) == lbl.OBJECT_SESSION:
            holder = fake.get("secrets", NS, labels[lbl.SANDBOX_ID])
            assert holder is not None and holder["metadata"]["labels"][  # type: ignore[index]
                lbl.SESSION] == labels[lbl.SESSION]


async def test_two_replicas_racing_for_sessions_never_hand_out_one_pod_twice(
        replicas: Replica, fake: FakeKubeApi) -> None:
    first = await replicas(pool=4)
    second = await replicas(pool=4)
    await _pool_ready(first, 4)
    warm = fake.names("pods")
    calls = [(first if (s + n) % 2 else second).acquire("acme", "u", f"s{s}", "base")
             for s in range(10) for n in range(3)]
    async with asyncio.timeout(60):
        results = await asyncio.gather(*calls)
    by_session: dict[str, set[str]] = {}
    for record, _, _ in results:
        by_session.setdefault(record.session_id, set()).add(record.sandbox_id)
    assert all(len(ids) == 1 for ids in by_session.values()), by_session
    chosen = [next(iter(ids)) for ids in by_session.values()]
    assert len(set(chosen)) == 10  # no Pod serves two sessions
    assert sum(newly for _, newly, _ in results) == 10
    # The warm Pods were used, though not necessarily all: the two replicas
    # binding one session may each claim a warm Pod, and the loser gives its
    # Pod back only after a third session, finding none warm, started one cold.
    assert sum(hit for _, _, hit in results) >= 1
    assert warm <= fake.names("pods")  # a Pod given back stays in the pool
    assert set(chosen) <= fake.names("pods")
    await _pool_ready(first, 4)
    # Stopped, so nothing is in flight: a ready pool with nothing starting is
    # only a moment, and a replica may begin a refill right after it.
    for manager in (first, second):
        await manager.stop(delete_all=False)
    _assert_consistent(fake)


async def test_a_deleted_or_released_sandbox_leaves_no_pod_secret_or_policy(
        replicas: Replica, fake: FakeKubeApi) -> None:
    manager = await replicas()
    created = await manager.create("acme", "base")
    acquired, _, _ = await manager.acquire("acme", "u", "s1", "base")
    assert {created.sandbox_id, acquired.sandbox_id} <= fake.names("pods")
    await manager.delete("acme", created.sandbox_id)
    assert await manager.release_session("acme", "u", "s1") == [acquired.sandbox_id]
    assert fake.names("pods") == fake.names("networkpolicies") == set()
    assert fake.names("secrets") == set()  # records, tokens and the session lock


class Died(BaseException):
    """The replica's process is gone: nothing it would still do happens."""


class DyingApi(KubeApi):
    """A replica's API client whose process dies just before its n-th write goes out."""

    def __init__(self, opened: KubeApi) -> None:
        super().__init__(opened._client, opened.namespace)  # noqa: SLF001
        self.writes_left: int | None = None

    async def _call(self, verb: str, kind: Kind, *args: object, **kwargs: object) -> object:
        if self.writes_left is not None and verb not in ("read", "list"):
            if self.writes_left == 0:
                raise Died
            self.writes_left -= 1
        return await super()._call(verb, kind, *args, **kwargs)


@pytest.mark.parametrize("dies_before_write", range(1, 13))
async def test_a_replica_killed_mid_claim_leaves_nothing_twice_claimed_after_one_reconcile(
        replicas: Replica, fake: FakeKubeApi, settings: KubernetesSettings,
        dies_before_write: int) -> None:
    api = DyingApi(await open_api(settings))
    doomed = SandboxManager(_catalog(2), KubernetesRegistry(api.share()),
                            KubernetesBackend(api, settings),
                            Limits(max_sandboxes=64, reap_interval_s=3600))
    await doomed.start()
    await _pool_ready(doomed, 2)
    api.writes_left = dies_before_write - 1
    # Three sessions, twice each: two claim warm Pods, one starts cold, the pool refills.
    outcomes = await asyncio.gather(
        *(doomed.acquire("acme", "u", f"s{i % 3}", "base") for i in range(6)),
        return_exceptions=True)
    assert any(isinstance(o, Died) for o in outcomes) or api.writes_left == 0
    with contextlib.suppress(Died):
        await doomed._upkeep.stop()  # noqa: SLF001  (a dead process runs no loops)
    survivor = await replicas()
    reconciler_api = await open_api(settings)
    try:
        await Reconciler(reconciler_api, settings).reconcile_once(now=time.time() + 3600)
    finally:
        await reconciler_api.close()
    _assert_consistent(fake)
    async with asyncio.timeout(30):
        for i in range(3):  # every session still gets exactly one sandbox
            record, _, _ = await survivor.acquire("acme", "u", f"s{i}", "base")
            again, newly, _ = await survivor.acquire("acme", "u", f"s{i}", "base")
            assert again.sandbox_id == record.sandbox_id and not newly
    _assert_consistent(fake)


async def test_a_full_quota_answers_resource_exhausted_and_leaves_nothing(
        fake: FakeKubeApi, settings: KubernetesSettings, tmp_path: Path) -> None:
    fake.pod_quota = 0
    api = await open_api(settings)
    service = SandboxServiceSettings(  # type: ignore[call-arg]
        host="127.0.0.1", port=0, state_dir=tmp_path / "state", pool_size=0,
        api_keys="", bearer_token="", reap_interval_s=3600.0)
    running = await build_server(service, backend=KubernetesBackend(api, settings),
                                 registry=KubernetesRegistry(api.share()))
    try:
        async with grpc.aio.insecure_channel(running.address) as channel:
            stub = pb_grpc.SandboxServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.CreateSandbox(pb.CreateSandboxRequest(template="base"), timeout=20)
    finally:
        await running.stop(grace=0.5)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "quota" in (refused.value.details() or "")
    assert fake.names("pods") == fake.names("networkpolicies") == fake.names("secrets") == set()


async def test_an_image_that_cannot_be_pulled_fails_with_the_reason_and_backs_off(
        replicas: Replica, fake: FakeKubeApi) -> None:
    manager = await replicas()
    with pytest.raises(BackendError, match="ImagePullBackOff"):
        await manager.acquire("acme", "u", "s1", "broken")
    attempts = Counter(method for method, path in fake.requests
                       if method == "POST" and path.endswith("/pods"))["POST"]
    with pytest.raises(BackendError, match="backing off.*ImagePullBackOff"):
        await manager.acquire("acme", "u", "s2", "broken")
    assert Counter(method for method, path in fake.requests
                   if method == "POST" and path.endswith("/pods"))["POST"] == attempts
    assert fake.names("pods") == set()  # the failed Pod was removed


async def test_a_pool_of_a_broken_template_stops_creating_pods(
        replicas: Replica, fake: FakeKubeApi) -> None:
    await replicas(broken_pool=1)
    await asyncio.sleep(3.0)  # long enough for a spinning pool to create many Pods
    creates = sum(1 for method, path in fake.requests
                  if method == "POST" and path.endswith("/pods"))
    assert 1 <= creates <= 2
