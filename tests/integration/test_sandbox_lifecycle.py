"""SandboxService end to end: real bwrap sandboxes behind a real gRPC server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest

from sandbox_svc.server import RunningService, build_server
from sandgate.sandbox.v1 import sandbox_service_pb2 as pb
from sandgate.sandbox.v1 import sandbox_service_pb2_grpc as pb_grpc
from sandgate.sdk import (
    AsyncSandbox,
    InvalidArgumentError,
    LimitExceededError,
    NotFoundError,
    StateError,
)

from .conftest import make_settings


async def test_create_exec_and_delete_a_sandbox(service: RunningService) -> None:
    sbx = await AsyncSandbox.create("base", target=service.address)
    result = await sbx.commands.run("echo hello; id -u; hostname; pwd")
    assert result.exit_code == 0
    assert result.stdout.split() == ["hello", "65534", "sandbox", "/workspace"]
    await sbx.kill()
    with pytest.raises(NotFoundError):
        await AsyncSandbox.connect(sbx.sandbox_id, target=service.address)
    assert not (service.settings.state_dir / "sb" / sbx.sandbox_id).exists()


async def test_unknown_template_is_invalid_argument_naming_the_templates(
        service: RunningService) -> None:
    with pytest.raises(InvalidArgumentError, match="base, browser, filesystem"):
        await AsyncSandbox.create("gpu", target=service.address)


async def test_unknown_sandbox_id_is_not_found(service: RunningService) -> None:
    with pytest.raises(NotFoundError):
        await AsyncSandbox.connect("sbx-doesnotexist", target=service.address)


async def test_acquire_is_idempotent_per_session_and_uses_the_warm_pool(
        state_dir: Path) -> None:
    running = await build_server(make_settings(state_dir, pool_size=1))
    try:
        async with asyncio.timeout(30):
            while (await running.manager.pool_status("base"))[0].ready < 1:
                await asyncio.sleep(0.05)
        async with grpc.aio.insecure_channel(running.address) as channel:
            stub = pb_grpc.SandboxServiceStub(channel)
            request = pb.AcquireSandboxRequest(template="base",
                                               session=pb.SessionKey(session_id="s1"))
            first = await stub.AcquireSandbox(request)
            again = await stub.AcquireSandbox(request)
            other = await stub.AcquireSandbox(pb.AcquireSandboxRequest(
                template="base", session=pb.SessionKey(session_id="s2")))
        assert first.pool_hit and first.newly_bound
        assert again.sandbox.sandbox_id == first.sandbox.sandbox_id and not again.newly_bound
        assert other.sandbox.sandbox_id != first.sandbox.sandbox_id
    finally:
        await running.stop(grace=0.5)


async def test_another_tenants_sandbox_is_not_found(state_dir: Path) -> None:
    running = await build_server(make_settings(state_dir, api_keys="ka=acme,kb=globex"))
    try:
        sbx = await AsyncSandbox.create("base", target=running.address, api_key="ka")
        with pytest.raises(NotFoundError):
            await AsyncSandbox.connect(sbx.sandbox_id, target=running.address, api_key="kb")
        assert [s.sandbox_id for s in await AsyncSandbox.list(
            target=running.address, api_key="kb")] == []
        await sbx.kill()
    finally:
        await running.stop(grace=0.5)


async def test_reaching_the_sandbox_limit_is_resource_exhausted(state_dir: Path) -> None:
    running = await build_server(make_settings(state_dir, max_sandboxes=1))
    try:
        first = await AsyncSandbox.create("base", target=running.address)
        with pytest.raises(LimitExceededError, match="limit of 1"):
            await AsyncSandbox.create("base", target=running.address)
        await first.kill()
    finally:
        await running.stop(grace=0.5)


async def test_pause_stops_processes_and_resume_continues_them(
        service: RunningService) -> None:
    sbx = await AsyncSandbox.create("base", target=service.address)
    await sbx.run_code("counter = 41")
    await sbx.commands.run(
        # write then rename, so a reader never sees a half-written file
        "nohup sh -c 'i=0; while :; do i=$((i+1)); echo $i > .t; mv .t tick; "
        "sleep 0.02; done' >/dev/null 2>&1 &")
    await asyncio.sleep(0.3)
    await sbx.pause()
    assert (await sbx.get_info()).state == "paused"
    frozen = await asyncio.to_thread(
        (service.settings.state_dir / "sb" / sbx.sandbox_id / "workspace" / "tick").read_text)
    await asyncio.sleep(0.4)
    still = (service.settings.state_dir / "sb" / sbx.sandbox_id / "workspace" / "tick").read_text()
    assert still == frozen, "a paused sandbox kept running"
    with pytest.raises(StateError):
        await sbx.pause()
    await sbx.resume()
    await asyncio.sleep(0.3)
    assert int(await sbx.files.read("tick")) > int(frozen)
    execution = await sbx.run_code("counter + 1")
    assert execution.text == "42"
    await sbx.kill()


async def test_expired_sandboxes_are_reaped(service: RunningService) -> None:
    sbx = await AsyncSandbox.create("base", timeout=60, target=service.address)
    assert await service.manager.reap_once() == []
    assert await service.manager.reap_once(now=time.time() + 61) == [sbx.sandbox_id]
    with pytest.raises(NotFoundError):
        await AsyncSandbox.connect(sbx.sandbox_id, target=service.address)
    await sbx.close()


async def test_idle_session_sandboxes_are_reaped_but_renewal_counts_as_activity(
        service: RunningService) -> None:
    sbx = await AsyncSandbox.acquire("idle-session", "base", target=service.address)
    idle_timeout = service.manager.catalog.get("base").idle_timeout_s
    later = time.time() + idle_timeout / 2
    assert await service.manager.reap_once(now=later) == []
    await sbx.set_timeout(3 * idle_timeout)  # activity: the idle clock restarts
    assert await service.manager.reap_once(now=time.time() + idle_timeout - 5) == []
    assert await service.manager.reap_once(
        now=time.time() + idle_timeout + 5) == [sbx.sandbox_id]
    await sbx.close()


async def test_concurrent_acquires_of_one_session_share_one_sandbox(
        service: RunningService) -> None:
    sandboxes = await asyncio.gather(*(
        AsyncSandbox.acquire("same-session", "base", target=service.address) for _ in range(6)))
    assert len({s.sandbox_id for s in sandboxes}) == 1
    assert len(await service.registry.all()) == 1
    await sandboxes[0].kill()
    for other in sandboxes[1:]:
        await other.close()
