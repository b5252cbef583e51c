"""Fakes for manager tests: an in-memory backend, a clock, and small helpers.

FakeBackend is a fake: it implements sandbox_svc.backend.SandboxBackend with a
dict and starts nothing. Tests make it fail, die or refuse to pause on purpose.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from sandbox_svc.backend import StartSpec
from sandbox_svc.errors import (
    BackendError,
    IsolationUnavailableError,
    PauseUnsupportedError,
    SandboxLimitError,
)
from sandbox_svc.isolation import NETWORK_NONE, Isolation
from sandbox_svc.manager import SandboxManager
from sandbox_svc.registry import Registry
from sandbox_svc.templates import Template, TemplateCatalog

__all__ = ["FakeBackend", "FakeClock", "FakeSandbox", "ManagerFactory", "catalog",
           "wait_for_pool"]


@dataclass
class FakeSandbox:
    """What the fake backend holds for one sandbox id."""

    template: str
    token: str
    processes: bool = True
    paused: bool = False
    warm_kernel: bool = False


class FakeBackend:
    """A fake SandboxBackend: sandboxes are dict entries; nothing runs."""

    def __init__(self, *, can_pause: bool = True, capacity: int = 1000,
                 start_delay_s: float = 0.0) -> None:
        self.sandboxes: dict[str, FakeSandbox] = {}
        self.can_pause = can_pause
        self.capacity = capacity
        self.start_delay_s = start_delay_s
        self.fail_starts = 0
        """Fail this many of the next starts with BackendError."""
        self.starts = 0
        self.refused_templates: set[str] = set()
        self.closed = False
        self.cleanup_fails = False
        """A start that ends early raises BackendError from its clean-up instead."""

    async def start(self, spec: StartSpec) -> str:
        self.starts += 1
        if len(self.sandboxes) >= self.capacity:
            raise SandboxLimitError("the fake backend is full")
        self.sandboxes[spec.sandbox_id] = FakeSandbox(spec.template.name, spec.token,
                                                      warm_kernel=spec.warm_kernel)
        try:
            await asyncio.sleep(self.start_delay_s)
            if self.fail_starts:
                self.fail_starts -= 1
                raise BackendError(f"sandbox {spec.sandbox_id} failed to start (on purpose)")
        except BaseException as exc:
            if self.cleanup_fails:
                raise BackendError(f"cleaning up {spec.sandbox_id} failed (on purpose)") from exc
            self.sandboxes.pop(spec.sandbox_id, None)  # a failed start leaves nothing
            raise
        return f"fake://{spec.sandbox_id}"

    async def destroy(self, sandbox_id: str) -> None:
        self.sandboxes.pop(sandbox_id, None)

    def _pausable(self, sandbox_id: str) -> FakeSandbox:
        if not self.can_pause:
            raise PauseUnsupportedError("the fake backend cannot pause sandboxes")
        try:
            return self.sandboxes[sandbox_id]
        except KeyError:
            raise BackendError(f"sandbox {sandbox_id} does not exist") from None

    async def pause(self, sandbox_id: str) -> None:
        self._pausable(sandbox_id).paused = True

    async def resume(self, sandbox_id: str) -> None:
        self._pausable(sandbox_id).paused = False

    async def probe(self, sandbox_id: str, timeout: float = 2.0) -> bool:
        sandbox = self.sandboxes.get(sandbox_id)
        return sandbox is not None and sandbox.processes and not sandbox.paused

    async def alive(self, sandbox_id: str) -> bool:
        sandbox = self.sandboxes.get(sandbox_id)
        return sandbox is not None and sandbox.processes

    async def leftovers(self) -> set[str]:
        return set(self.sandboxes)

    async def check_template(self, template: Template) -> None:
        if template.name in self.refused_templates:
            raise IsolationUnavailableError(f"the fake backend refuses {template.name!r}")

    def isolation(self, template: Template) -> Isolation:
        return Isolation(runtime="fake", namespaces=(), inner_uid=0, seccomp_profile="none",
                         user_namespaces_disabled=False, network_policy=NETWORK_NONE)

    async def close(self) -> None:
        self.closed = True

    def kill(self, sandbox_id: str) -> None:
        """Its processes die behind the manager's back; its resources stay."""
        self.sandboxes[sandbox_id].processes = False

    def running(self) -> set[str]:
        """Ids whose processes are alive."""
        return {sid for sid, s in self.sandboxes.items() if s.processes}


class FakeClock:
    """Wall-clock seconds that move only when a test says so."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ManagerFactory(Protocol):
    async def __call__(self, *, backend: FakeBackend | None = None,
                       registry: Registry | None = None, pool: int = 0,
                       max_sandboxes: int = 16) -> SandboxManager: ...


def catalog(pool: int = 0) -> TemplateCatalog:
    """``base`` (``pool`` warm sandboxes, warm kernels) and ``filesystem`` (no pool)."""
    return TemplateCatalog([
        Template("base", pool_size=pool, default_ttl_s=3600, idle_timeout_s=900,
                 warm_kernel=True),
        Template("filesystem", tool_groups=("base", "filesystem"), pool_size=0),
    ])


async def wait_for_pool(manager: SandboxManager, ready: int, template: str = "base") -> None:
    """Until the template's pool holds ``ready`` sandboxes and starts no more (bounded)."""
    async with asyncio.timeout(5):
        while True:
            (view,) = await manager.pool_status(template)
            if view.ready == ready and view.starting == 0:
                return
            await asyncio.sleep(0.001)
