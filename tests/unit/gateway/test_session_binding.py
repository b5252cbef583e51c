"""SessionBinder: one sandbox per session key and template, kept healthy, released on time."""

from __future__ import annotations

import asyncio

import anyio
import grpc
import pytest
from gateway_fakes import NOWHERE, FakeControl
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.errors import MisconfigurationError, SessionKeyError
from gateway.sessions import Lease, SessionBinder, SessionKey, check_session_id

KEY = SessionKey("acme", "u1", "chat-1")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_concurrent_first_calls_acquire_one_sandbox() -> None:
    control = FakeControl()
    control.acquire_delay = 0.05
    binder = SessionBinder(control, idle_s=60)

    async def use() -> str:
        async with binder.use(KEY, "filesystem") as sandbox:
            return sandbox.sandbox_id

    with anyio.fail_after(5):
        ids = await asyncio.gather(*(use() for _ in range(10)))
    assert set(ids) == {"sbx-1"} and len(control.acquired) == 1
    await binder.close()


async def test_each_template_and_session_gets_its_own_sandbox() -> None:
    control = FakeControl(templates=["base", "filesystem"])
    binder = SessionBinder(control, idle_s=60)
    seen = set()
    for key, template in [(KEY, "base"), (KEY, "filesystem"),
                          (SessionKey("other", "u1", "chat-1"), "base")]:
        async with binder.use(key, template) as sandbox:
            seen.add(sandbox.sandbox_id)
    assert len(seen) == 3
    await binder.close()


async def test_a_template_sandbox_svc_lacks_is_a_misconfiguration() -> None:
    binder = SessionBinder(FakeControl(templates=["base"]), idle_s=60)
    with pytest.raises(MisconfigurationError, match="SANDGATE_TOOL_TEMPLATES"):
        async with binder.use(KEY, "filesystem"):
            pass
    await binder.close()


async def test_idle_sessions_are_released_and_busy_ones_renewed() -> None:
    clock = Clock()
    control = FakeControl()
    binder = SessionBinder(control, idle_s=100, renew_s=10, clock=clock)
    idle, busy = KEY, SessionKey("acme", "u1", "chat-2")
    async with binder.use(idle, "filesystem"):
        pass
    async with binder.use(busy, "filesystem"):
        clock.now += 50
        await binder.maintain()  # in use: renewed, not released
    assert control.renewed == ["sbx-2"] and control.released == []
    clock.now += 60
    await binder.maintain()  # `idle` unused for 110 s
    assert control.released == [(idle, "filesystem")]
    assert [h.key for h in binder.bindings] == [busy]
    await binder.close()


async def test_a_worker_that_shares_sessions_forgets_idle_ones_without_releasing() -> None:
    clock = Clock()
    control = FakeControl()
    binder = SessionBinder(control, idle_s=100, clock=clock, release_idle=False)
    async with binder.use(KEY, "filesystem"):
        pass
    clock.now += 110
    await binder.maintain()  # another worker may use the sandbox: sandbox_svc reaps it
    assert control.released == [] and binder.bindings == []
    async with binder.use(KEY, "filesystem") as sandbox:  # acquired again (idempotent)
        assert not sandbox.replaced and len(control.acquired) == 2
    await binder.close()


async def test_release_forgets_the_bindings_of_that_session_only() -> None:
    control = FakeControl()
    binder = SessionBinder(control, idle_s=60)
    other = SessionKey("acme", "u1", "chat-2")
    for key in (KEY, other):
        async with binder.use(key, "filesystem"):
            pass
    assert await binder.release(KEY) == ["released-chat-1"]
    assert [h.key for h in binder.bindings] == [other]
    await binder.close()


@pytest.mark.parametrize("value", ["", "x" * 129, "has space", "tab\there", "ünïcode"])
def test_session_ids_must_be_short_printable_ascii(value: str) -> None:
    with pytest.raises(SessionKeyError, match="printable ASCII"):
        check_session_id(value)


def test_ordinary_session_ids_are_accepted() -> None:
    assert check_session_id("chat-42_Ab.x:y/z") == "chat-42_Ab.x:y/z"


async def test_a_binding_idle_for_a_while_is_checked_and_replaced_if_its_sandbox_is_gone(
        ) -> None:
    clock = Clock()
    control = FakeControl()
    binder = SessionBinder(control, idle_s=1000, probe_after_s=30, clock=clock)
    async with binder.use(KEY, "filesystem") as first:
        pass
    async with binder.use(KEY, "filesystem") as soon:
        assert soon is first  # recently used: no health check
    clock.now += 31
    # Nothing answers at the fake sandbox's address, as after sandbox_svc reaped it.
    async with binder.use(KEY, "filesystem") as later:
        assert later.sandbox_id != first.sandbox_id and later.replaced
    assert control.deleted == [first.sandbox_id]
    await binder.close()


class StickyControl(FakeControl):
    """Like sandbox_svc: a session keeps its sandbox until that is deleted; a delete
    takes until ``deleting`` is released."""

    def __init__(self) -> None:
        super().__init__()
        self.current: dict[SessionKey, str] = {}
        self.delete_started = asyncio.Event()
        self.deleting = asyncio.Event()

    async def acquire(self, key: SessionKey, template: str) -> Lease:
        if key not in self.current:
            self.current[key] = (await super().acquire(key, template)).sandbox_id
        return Lease(self.current[key], NOWHERE, "token")

    async def delete(self, key: SessionKey, sandbox_id: str) -> None:
        self.delete_started.set()
        await self.deleting.wait()
        if self.current.get(key) == sandbox_id:
            del self.current[key]
        await super().delete(key, sandbox_id)


async def test_a_call_while_a_lost_sandbox_is_being_deleted_gets_a_fresh_one() -> None:
    control = StickyControl()
    binder = SessionBinder(control, idle_s=60)
    async with binder.use(KEY, "filesystem") as first:
        pass
    with anyio.fail_after(5):
        lost = asyncio.ensure_future(binder.check_lost(first))  # nothing answers: lost
        await control.delete_started.wait()

        async def next_call() -> tuple[str, bool]:
            async with binder.use(KEY, "filesystem") as sandbox:
                return sandbox.sandbox_id, sandbox.replaced

        following = asyncio.ensure_future(next_call())
        await asyncio.sleep(0.05)  # the next call arrives while the delete runs
        control.deleting.set()
        assert await lost
        assert await following == ("sbx-2", True)
    await binder.close()


async def test_dropping_a_lost_sandbox_leaves_the_other_calls_on_it_to_fail_on_their_own(
        ) -> None:
    # Closing a grpc.aio channel cancels its calls: a call still in flight on the lost
    # sandbox saw CancelledError (an HTTP 500 over MCP) instead of a status to report.
    binder = SessionBinder(FakeControl(), idle_s=60)
    async with binder.use(KEY, "filesystem") as sandbox:
        stub = health_pb2_grpc.HealthStub(sandbox.channel)
        in_flight = asyncio.ensure_future(stub.Check(
            health_pb2.HealthCheckRequest(), timeout=1.0, wait_for_ready=True))
        await asyncio.sleep(0.05)
        async with binder.use(KEY, "filesystem") as same:  # another call of the session
            assert await binder.check_lost(same)
        with anyio.fail_after(5), pytest.raises(grpc.aio.AioRpcError) as failed:
            await in_flight
        assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await binder.close()


async def test_a_released_binding_closes_its_channel_once_its_last_call_ends() -> None:
    binder = SessionBinder(FakeControl(), idle_s=60)
    async with binder.use(KEY, "filesystem") as sandbox:
        await binder.release(KEY)
        assert sandbox.channel.get_state() != grpc.ChannelConnectivity.SHUTDOWN
    assert sandbox.channel.get_state() == grpc.ChannelConnectivity.SHUTDOWN
    await binder.close()
