"""The backend contract (sandbox_svc.backend.SandboxBackend), once for every backend.

Each entry of BACKENDS opens a backend plus two templates: one it runs, one
whose start must fail. The local backend runs real bwrap sandboxes here; the
Kubernetes backend talks to a fake API server (a real HTTP server) whose fake
kubelet runs each Pod's sandboxd as a real process on its own loopback address.
Targets are dialled with the generated gRPC stub, as the SDK and gateway do.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from sandbox_svc.backend import SandboxBackend, StartSpec
from sandbox_svc.errors import BackendError, PauseUnsupportedError
from sandbox_svc.kubernetes.backend import KubernetesBackend
from sandbox_svc.kubernetes.config import KubernetesSettings, open_api
from sandbox_svc.pod_settings import PodSettings
from sandbox_svc.templates import Template
from sandgate.sandbox.v1 import runtime_service_pb2 as rpb
from sandgate.sandbox.v1 import runtime_service_pb2_grpc as rpb_grpc

from .conftest import opened_backend


@dataclass(frozen=True)
class BackendUnderTest:
    """A backend with a template it runs and one whose start fails on it."""

    backend: SandboxBackend
    template: Template
    broken_template: Template


@contextlib.asynccontextmanager
async def _local() -> AsyncIterator[BackendUnderTest]:
    # Short and world-searchable: sandboxes reach their sockets and workspaces
    # through it, and Unix socket paths must stay under 108 bytes.
    state = Path(tempfile.mkdtemp(prefix="sg-", dir="/tmp"))
    state.chmod(0o711)
    try:
        async with opened_backend(state, uid_count=4) as backend:
            # A root filesystem without an interpreter: bwrap runs, sandboxd cannot.
            rootfs = state / "empty-rootfs"
            (rootfs / "usr").mkdir(parents=True)
            rootfs.chmod(0o755)
            yield BackendUnderTest(backend, Template("base"),
                                   Template("broken", rootfs=str(rootfs)))
    finally:
        shutil.rmtree(state, ignore_errors=True)


@contextlib.asynccontextmanager
async def _kubernetes() -> AsyncIterator[BackendUnderTest]:
    from tests.fixtures.fake_kube_api import FakeKubeApi
    from tests.fixtures.fake_kubelet import FakeKubelet, free_port

    broken_image = "sandgate/missing:0.0.0"
    fake = FakeKubeApi()
    fake.start()
    workdir = Path(tempfile.mkdtemp(prefix="sg-k8s-"))
    kubelet = FakeKubelet(fake, "sandboxes", port=free_port(),
                          broken_images=frozenset({broken_image}))
    await kubelet.start()
    try:
        settings = KubernetesSettings(
            namespace="sandboxes", kubeconfig=fake.write_kubeconfig(workdir / "kubeconfig"),
            sandboxd_port=kubelet.port, start_timeout_s=30.0, api_timeout_s=5.0)
        backend = KubernetesBackend(await open_api(settings), settings)
        try:
            yield BackendUnderTest(backend, Template("base"), Template(
                "broken", kubernetes=PodSettings(image=broken_image)))
        finally:
            for leftover in await backend.leftovers():
                await backend.destroy(leftover)
            await backend.close()
    finally:
        await kubelet.stop()
        fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)


BACKENDS: dict[str, Callable[[], AbstractAsyncContextManager[BackendUnderTest]]] = {
    "local": _local,
    "kubernetes": _kubernetes,
}


@pytest.fixture(params=sorted(BACKENDS))
async def subject(request: pytest.FixtureRequest) -> AsyncIterator[BackendUnderTest]:
    async with BACKENDS[request.param]() as opened:
        yield opened


_ids = iter(range(1_000_000))


def _spec(template: Template) -> StartSpec:
    return StartSpec(f"sbx-contract{next(_ids)}", template, f"token-{next(_ids)}")


async def _echo(target: str, token: str, text: str) -> str:
    """Run ``echo text`` in the sandbox at ``target`` over gRPC, presenting ``token``."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = rpb_grpc.SandboxRuntimeStub(channel)
        out = b""
        async for event in stub.Exec(rpb.ExecRequest(command=f"echo {text}"),
                                     metadata=(("authorization", f"Bearer {token}"),),
                                     timeout=30):
            if event.HasField("output"):
                out += event.output.data
        return out.decode().strip()


async def _gone(subject: BackendUnderTest, sandbox_id: str) -> bool:
    backend = subject.backend
    return (not await backend.alive(sandbox_id) and not await backend.probe(sandbox_id, 0.5)
            and sandbox_id not in await backend.leftovers())


async def test_a_started_sandbox_is_alive_answers_probes_and_runs_commands_with_its_token(
        subject: BackendUnderTest) -> None:
    spec = _spec(subject.template)
    await subject.backend.check_template(subject.template)
    target = await subject.backend.start(spec)
    assert await subject.backend.probe(spec.sandbox_id)
    assert await subject.backend.alive(spec.sandbox_id)
    assert spec.sandbox_id in await subject.backend.leftovers()
    assert await _echo(target, spec.token, "contract") == "contract"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _echo(target, "not-the-token", "nope")
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    await subject.backend.destroy(spec.sandbox_id)


async def test_a_destroyed_sandbox_is_gone_and_destroying_again_is_fine(
        subject: BackendUnderTest) -> None:
    spec = _spec(subject.template)
    await subject.backend.start(spec)
    await subject.backend.destroy(spec.sandbox_id)
    assert await _gone(subject, spec.sandbox_id)
    await subject.backend.destroy(spec.sandbox_id)
    await subject.backend.destroy("sbx-never-started")


async def test_pause_keeps_the_sandbox_and_resume_lets_it_run_again(
        subject: BackendUnderTest) -> None:
    spec = _spec(subject.template)
    target = await subject.backend.start(spec)
    try:
        await subject.backend.pause(spec.sandbox_id)
    except PauseUnsupportedError:
        assert await subject.backend.probe(spec.sandbox_id)  # refused, nothing changed
    else:
        assert await subject.backend.alive(spec.sandbox_id)
        await subject.backend.resume(spec.sandbox_id)
        await subject.backend.resume(spec.sandbox_id)  # resuming a running one is a no-op
    assert await _echo(target, spec.token, "after") == "after"
    await subject.backend.destroy(spec.sandbox_id)


async def test_two_sandboxes_are_independent(subject: BackendUnderTest) -> None:
    first, second = _spec(subject.template), _spec(subject.template)
    targets = await asyncio.gather(*(subject.backend.start(s) for s in (first, second)))
    assert targets[0] != targets[1]
    await subject.backend.destroy(first.sandbox_id)
    assert await _echo(targets[1], second.token, "still-here") == "still-here"
    await subject.backend.destroy(second.sandbox_id)
    assert await _gone(subject, first.sandbox_id) and await _gone(subject, second.sandbox_id)


async def test_a_failed_start_raises_and_leaves_nothing(subject: BackendUnderTest) -> None:
    spec = _spec(subject.broken_template)
    with pytest.raises(BackendError):
        await subject.backend.start(spec)
    assert await _gone(subject, spec.sandbox_id)


async def test_a_cancelled_start_leaves_nothing(subject: BackendUnderTest) -> None:
    spec = _spec(subject.template)
    task = asyncio.create_task(subject.backend.start(spec))
    await asyncio.sleep(0.05)  # somewhere inside the start
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await subject.backend.destroy(spec.sandbox_id)  # in case the start had finished
    assert await _gone(subject, spec.sandbox_id)


async def test_unknown_ids_are_neither_alive_nor_serving(subject: BackendUnderTest) -> None:
    assert not await subject.backend.alive("sbx-unknown")
    assert not await subject.backend.probe("sbx-unknown", 0.5)
