"""Session key -> sandbox binding.

A session key (tenant, user, session) gets one sandbox per template, acquired
from sandbox_svc on the first call that needs it (AcquireSandbox is idempotent,
so a restarted gateway finds the same sandbox again). The binding caches the
sandbox's sandboxd address, token and one gRPC channel, so every later call
goes straight to sandboxd. Bindings are renewed on sandbox_svc while used,
released when idle or on request, and dropped when their sandbox dies: the
call that saw it die fails, the next one gets a fresh sandbox and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.errors import MisconfigurationError, SessionKeyError
from gateway.telemetry import GatewayMetrics, has_trace_context, trace_metadata
from sandgate.sandbox.v1 import runtime_service_pb2_grpc as rpb_grpc

__all__ = [
    "ControlPlaneInfo",
    "Lease",
    "SandboxControl",
    "SandboxHandle",
    "SessionBinder",
    "SessionKey",
    "check_session_id",
]

logger = logging.getLogger(__name__)

_MAX_SESSION_ID = 128
_CHANNEL_OPTIONS = (("grpc.max_receive_message_length", 64 * 1024 * 1024),
                    ("grpc.max_send_message_length", 64 * 1024 * 1024))


@dataclass(frozen=True)
class SessionKey:
    """Whose sandbox: the tenant comes from credentials, the rest from the caller."""

    tenant: str
    user_id: str
    session_id: str


def check_session_id(value: str, source: str = "session id") -> str:
    """``value`` if it is 1-128 printable ASCII characters without spaces.

    Raises:
        SessionKeyError: otherwise, saying what is allowed.
    """
    if not 0 < len(value) <= _MAX_SESSION_ID or not all(
            "!" <= c <= "~" for c in value):
        raise SessionKeyError(
            f"{source} must be 1 to {_MAX_SESSION_ID} printable ASCII characters without "
            "spaces")
    return value


@dataclass(frozen=True)
class Lease:
    """How to reach a sandbox bound to a session key."""

    sandbox_id: str
    target: str
    token: str
    newly_bound: bool = True
    pool_hit: bool = False


@dataclass(frozen=True)
class ControlPlaneInfo:
    templates: frozenset[str]


class SandboxControl(Protocol):
    """What the binder needs from the control plane (sandbox_svc)."""

    async def describe(self) -> ControlPlaneInfo: ...
    async def acquire(self, key: SessionKey, template: str) -> Lease: ...
    async def renew(self, key: SessionKey, sandbox_id: str) -> None: ...
    async def release(self, key: SessionKey, template: str = "") -> list[str]: ...
    async def delete(self, key: SessionKey, sandbox_id: str) -> None: ...
    async def close(self) -> None: ...


class SandboxHandle:
    """A bound sandbox: its sandboxd stub and the metadata every call carries."""

    def __init__(self, key: SessionKey, template: str, lease: Lease, *, replaced: bool,
                 now: float) -> None:
        self.key = key
        self.template = template
        self.sandbox_id = lease.sandbox_id
        self.replaced = replaced
        """True until a call reports that this sandbox replaced one that died."""
        self.channel = grpc.aio.insecure_channel(lease.target, options=_CHANNEL_OPTIONS)
        self.stub = rpb_grpc.SandboxRuntimeStub(self.channel)
        self._auth = ("authorization", f"Bearer {lease.token}")
        self._plain: tuple[tuple[str, str], ...] = (self._auth,)
        self.last_used = now
        self.renewed_at = now
        self.in_flight = 0
        self.retired = False
        """Dropped or released: no new call gets it; its channel closes after the last."""

    async def retire(self) -> None:
        """Take no new calls; close the channel once no call is in flight on it.

        Closing a grpc.aio channel cancels its calls: a call still running on a lost
        sandbox would end in CancelledError, with no status to report to its caller.
        """
        self.retired = True
        if not self.in_flight:
            await self.channel.close()

    def metadata(self) -> Sequence[tuple[str, str]]:
        """Per-call metadata: the sandbox token and the current trace context.

        Built once per binding; a call only builds its own when there is a trace
        context to carry (propagate.inject costs more than the rest of the call's
        bookkeeping, and most calls have none).
        """
        if not has_trace_context():
            return self._plain
        pairs = trace_metadata()
        pairs.append(self._auth)
        return pairs

    async def alive(self, timeout: float = 1.0) -> bool:
        """Whether sandboxd still answers its health check."""
        stub = health_pb2_grpc.HealthStub(self.channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


_Slot = tuple[SessionKey, str]


class SessionBinder:
    """Binds session keys to sandboxes and keeps the bindings healthy."""

    def __init__(self, control: SandboxControl, *, idle_s: float, renew_s: float = 60.0,
                 probe_after_s: float = 30.0, metrics: GatewayMetrics | None = None,
                 clock: Callable[[], float] = time.monotonic, release_idle: bool = True
                 ) -> None:
        """
        Args:
            release_idle: release a binding idle for ``idle_s`` on sandbox_svc; False
                only forgets it here, for gateway workers that share sessions (another
                worker may be using the sandbox: sandbox_svc's own idle timeout reaps it).
        """
        self._control = control
        self._release_idle = release_idle
        self._idle_s = idle_s
        self._renew_s = renew_s
        self._probe_after_s = probe_after_s
        self._clock = clock
        self._metrics = metrics
        self._bound: dict[_Slot, SandboxHandle] = {}
        self._locks: dict[_Slot, tuple[asyncio.Lock, list[int]]] = {}
        self._replaced: set[_Slot] = set()
        self._info: ControlPlaneInfo | None = None
        self._info_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @property
    def bindings(self) -> Sequence[SandboxHandle]:
        return list(self._bound.values())

    @contextlib.asynccontextmanager
    async def use(self, key: SessionKey, template: str) -> AsyncIterator[SandboxHandle]:
        """The session's sandbox of ``template``, bound on first use; held while in use.

        A binding unused for a while is health-checked first: a sandbox that went
        away meanwhile (reaped, crashed) is replaced before the call instead of
        failing it.
        """
        handle = self._bound.get((key, template))
        if handle is not None and not handle.in_flight and \
                self._clock() - handle.last_used >= self._probe_after_s and \
                not await handle.alive():
            await self._drop(handle, "stopped while idle")
            handle = None
        if handle is None:
            handle = await self._bind(key, template)
        handle.in_flight += 1
        try:
            yield handle
        finally:
            handle.in_flight -= 1
            handle.last_used = self._clock()
            if handle.retired and not handle.in_flight:
                await handle.channel.close()

    @contextlib.asynccontextmanager
    async def _guard(self, slot: _Slot) -> AsyncIterator[None]:
        """Serialise binding and dropping one slot: a call that arrives while a lost
        sandbox is being deleted waits, instead of acquiring the dead one again. The
        lock lives while anyone holds or waits on it."""
        lock, users = self._locks.setdefault(slot, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                self._locks.pop(slot, None)

    async def _bind(self, key: SessionKey, template: str) -> SandboxHandle:
        slot = (key, template)
        async with self._guard(slot):
            if (handle := self._bound.get(slot)) is not None:
                return handle
            await self._check_template(template)
            lease = await self._control.acquire(key, template)
            handle = SandboxHandle(key, template, lease, replaced=slot in self._replaced,
                                   now=self._clock())
            self._replaced.discard(slot)
            self._bound[slot] = handle
            self._update_gauge()
            logger.info("session %s/%s bound to sandbox %s (%s, %s)", key.tenant,
                        key.session_id, lease.sandbox_id, template,
                        "pool" if lease.pool_hit else "new" if lease.newly_bound else "existing")
        return handle

    async def templates(self) -> frozenset[str]:
        """The templates sandbox_svc offers (asked once, then remembered)."""
        if self._info is None:
            async with self._info_lock:
                if self._info is None:
                    self._info = await self._control.describe()
        return self._info.templates

    async def _check_template(self, template: str) -> None:
        templates = await self.templates()
        if template not in templates:
            raise MisconfigurationError(
                f"tools are routed to template {template!r}, which sandbox_svc does not have "
                f"(it has {', '.join(sorted(templates))}); fix SANDGATE_TOOL_TEMPLATES")

    async def check_lost(self, handle: SandboxHandle) -> bool:
        """After a failed call: True (and the binding dropped) when the sandbox is gone."""
        if await handle.alive():
            return False
        await self._drop(handle, "stopped during a call")
        return True

    async def _drop(self, handle: SandboxHandle, why: str) -> None:
        """Forget a dead sandbox; the session's next call binds a fresh one and says so."""
        logger.warning("sandbox %s of session %s/%s %s; the next call gets a fresh one",
                       handle.sandbox_id, handle.key.tenant, handle.key.session_id, why)
        slot = (handle.key, handle.template)
        async with self._guard(slot):  # until sandbox_svc forgot it, nobody binds it again
            if self._bound.get(slot) is handle:
                del self._bound[slot]
                self._replaced.add(slot)
                self._update_gauge()
            await handle.retire()
            try:
                await self._control.delete(handle.key, handle.sandbox_id)
            except grpc.aio.AioRpcError as exc:
                logger.warning("could not delete stopped sandbox %s: %s", handle.sandbox_id,
                               exc.details())

    async def release(self, key: SessionKey, template: str = "") -> list[str]:
        """Release the session's sandboxes (one template, or all); return their ids."""
        await self.templates()  # the control plane's tenancy decides how keys are sent
        for slot in [s for s in self._bound if s[0] == key and (not template or s[1] == template)]:
            handle = self._bound.pop(slot)
            await handle.retire()
        self._replaced = {s for s in self._replaced
                          if not (s[0] == key and (not template or s[1] == template))}
        self._update_gauge()
        return await self._control.release(key, template)

    async def maintain(self) -> None:
        """One pass: release idle bindings, renew the ones used since their last renewal."""
        now = self._clock()
        for slot, handle in list(self._bound.items()):
            if handle.in_flight == 0 and now - handle.last_used >= self._idle_s:
                if not self._release_idle:
                    del self._bound[slot]
                    self._update_gauge()
                    await handle.channel.close()
                    continue
                logger.info("releasing idle sandbox %s of session %s/%s", handle.sandbox_id,
                            slot[0].tenant, slot[0].session_id)
                await self._quietly(self.release(slot[0], slot[1]))
            elif (handle.last_used > handle.renewed_at or handle.in_flight) and \
                    now - handle.renewed_at >= self._renew_s:
                handle.renewed_at = now
                await self._quietly(self._control.renew(slot[0], handle.sandbox_id))

    @staticmethod
    async def _quietly(call: Awaitable[object]) -> None:
        try:
            await call
        except grpc.aio.AioRpcError as exc:
            logger.warning("sandbox maintenance call failed: %s %s", exc.code().name,
                           exc.details())

    def start(self) -> None:
        interval = max(0.05, min(self._idle_s / 4, self._renew_s / 2, 30.0))

        async def loop() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await self.maintain()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("maintaining sandbox bindings failed")

        self._task = asyncio.create_task(loop(), name="sandgate-gateway-bindings")

    async def close(self) -> None:
        """Stop maintenance and close channels; sandboxes stay bound for a restart."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for handle in self._bound.values():
            await handle.channel.close()
        self._bound.clear()
        await self._control.close()

    def _update_gauge(self) -> None:
        if self._metrics is not None:
            self._metrics.bound_sandboxes.set(len(self._bound))
