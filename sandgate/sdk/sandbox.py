"""AsyncSandbox: the E2B-style async client of a Sandgate sandbox.

::

    sbx = await AsyncSandbox.create(template="base")
    result = await sbx.commands.run("echo hi")
    execution = await sbx.run_code("1 + 1")
    await sbx.files.write("notes.txt", "hello")
    await sbx.kill()

The control plane (SandboxService) is called once to create or find the
sandbox; every command, cell and file call then goes straight to the
sandbox's own sandboxd. Every call has a deadline: ``request_timeout`` (60 s
by default; 180 s for ``acquire``) for calls without a work timeout, the work's
timeout plus a slack for commands, cells and browser actions (see
``sandgate.sdk.deadlines``).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

import grpc

from sandgate.sandbox.v1 import runtime_service_pb2_grpc as rpb_grpc
from sandgate.sandbox.v1 import sandbox_service_pb2 as pb
from sandgate.sandbox.v1 import sandbox_service_pb2_grpc as pb_grpc
from sandgate.sdk.browser import Browser
from sandgate.sdk.code import Execution, run_code
from sandgate.sdk.commands import Commands
from sandgate.sdk.deadlines import ACQUIRE_TIMEOUT_S, REQUEST_TIMEOUT_S, duration
from sandgate.sdk.errors import translated
from sandgate.sdk.files import Files
from sandgate.sdk.templates import TemplateInfo, template_info

__all__ = ["DEFAULT_TARGET", "AsyncSandbox", "SandboxInfo"]

T = TypeVar("T")
DEFAULT_TARGET = "127.0.0.1:8002"
_STATES = {pb.SANDBOX_STATE_STARTING: "starting", pb.SANDBOX_STATE_READY: "ready",
           pb.SANDBOX_STATE_PAUSED: "paused", pb.SANDBOX_STATE_TERMINATED: "terminated"}


@dataclass(frozen=True)
class SandboxInfo:
    sandbox_id: str
    template: str
    state: str
    session_id: str
    expires_at: float


def _info(message: pb.Sandbox) -> SandboxInfo:
    return SandboxInfo(message.sandbox_id, message.template, _STATES.get(message.state, "?"),
                       message.session.session_id, message.expires_at.ToNanoseconds() / 1e9)


class _ControlPlane:
    def __init__(self, target: str | None, api_key: str | None,
                 request_timeout: float) -> None:
        # Defaults may come from the environment, like E2B_API_KEY does for E2B.
        self.target = target or os.environ.get("SANDGATE_TARGET", DEFAULT_TARGET)
        key = api_key if api_key is not None else os.environ.get("SANDGATE_API_KEY", "")
        self.metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {key}"),) if key else ())
        self.request_timeout = request_timeout
        self.opts: dict[str, object] = {"metadata": self.metadata, "timeout": request_timeout}
        """Keyword arguments of every call: credentials and the deadline."""
        self.channel = grpc.aio.insecure_channel(self.target)
        self.stub = pb_grpc.SandboxServiceStub(self.channel)

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        return await translated(fn)


class AsyncSandbox:
    """A live sandbox. Use ``create``, ``acquire`` or ``connect``; not the constructor."""

    def __init__(self, control: _ControlPlane, sandbox: pb.Sandbox,
                 connection: pb.SandboxConnection) -> None:
        self._control = control
        self._info = _info(sandbox)
        self._channel = grpc.aio.insecure_channel(connection.target)
        self._metadata = (("authorization", f"Bearer {connection.token}"),)
        stub = rpb_grpc.SandboxRuntimeStub(self._channel)
        self._runtime = stub
        self.commands = Commands(stub, self._metadata)
        self.files = Files(stub, self._metadata, control.request_timeout)
        self.browser = Browser(stub, self._metadata)

    @property
    def sandbox_id(self) -> str:
        return self._info.sandbox_id

    @property
    def template(self) -> str:
        return self._info.template

    @classmethod
    async def create(cls, template: str = "", *, timeout: float | None = None,
                     labels: Mapping[str, str] | None = None, target: str | None = None,
                     api_key: str | None = None,
                     request_timeout: float = REQUEST_TIMEOUT_S) -> AsyncSandbox:
        """Start a new sandbox; ``timeout`` is its time to live in seconds.

        ``request_timeout`` bounds this call and every later control-plane and file
        call of the sandbox.

        Raises:
            InvalidArgumentError: unknown template or ttl out of range.
            LimitExceededError: the server's sandbox limit is reached.
            UnavailableError: the server is unreachable or the sandbox did not start.
            TimeoutException: ``request_timeout`` passed.
        """
        control = _ControlPlane(target, api_key, request_timeout)
        request = pb.CreateSandboxRequest(template=template, labels=dict(labels or {}))
        if timeout is not None:
            request.ttl.CopyFrom(duration(timeout))
        reply = await control.call(lambda: control.stub.CreateSandbox(request, **control.opts))
        return cls(control, reply.sandbox, reply.connection)

    @classmethod
    async def acquire(cls, session_id: str, template: str = "", *, user_id: str = "",
                      target: str | None = None, api_key: str | None = None,
                      request_timeout: float = ACQUIRE_TIMEOUT_S) -> AsyncSandbox:
        """The sandbox bound to this session (from the warm pool on first use).

        Raises:
            InvalidArgumentError: no session id, or an unknown template.
            LimitExceededError: the server's sandbox limit is reached.
            UnavailableError: the server is unreachable or the sandbox did not start.
            TimeoutException: ``request_timeout`` passed.
        """
        control = _ControlPlane(target, api_key, request_timeout)
        request = pb.AcquireSandboxRequest(
            template=template, session=pb.SessionKey(user_id=user_id, session_id=session_id))
        reply = await control.call(lambda: control.stub.AcquireSandbox(request, **control.opts))
        return cls(control, reply.sandbox, reply.connection)

    @classmethod
    async def connect(cls, sandbox_id: str, *, target: str | None = None,
                      api_key: str | None = None,
                      request_timeout: float = REQUEST_TIMEOUT_S) -> AsyncSandbox:
        """A client of an existing sandbox.

        Raises:
            NotFoundError: no such sandbox (or another tenant's).
            UnavailableError: the server is unreachable.
            TimeoutException: ``request_timeout`` passed.
        """
        control = _ControlPlane(target, api_key, request_timeout)
        reply = await control.call(lambda: control.stub.GetSandbox(
            pb.GetSandboxRequest(sandbox_id=sandbox_id), **control.opts))
        return cls(control, reply.sandbox, reply.connection)

    @staticmethod
    async def list_templates(*, target: str | None = None, api_key: str | None = None,
                             request_timeout: float = REQUEST_TIMEOUT_S) -> list[TemplateInfo]:
        """Every template the server offers, with the isolation its sandboxes get.

        Raises:
            UnavailableError: the server is unreachable.
            TimeoutException: ``request_timeout`` passed.
        """
        control = _ControlPlane(target, api_key, request_timeout)
        try:
            reply = await control.call(lambda: control.stub.ListTemplates(
                pb.ListTemplatesRequest(), **control.opts))
        finally:
            await control.channel.close()
        return [template_info(t) for t in reply.templates]

    @staticmethod
    async def list(template: str = "", *, target: str | None = None,
                   api_key: str | None = None,
                   request_timeout: float = REQUEST_TIMEOUT_S) -> list[SandboxInfo]:
        """Your sandboxes (of one template if given).

        Raises:
            InvalidArgumentError: unknown template.
            UnavailableError: the server is unreachable.
            TimeoutException: ``request_timeout`` passed.
        """
        control = _ControlPlane(target, api_key, request_timeout)
        try:
            reply = await control.call(lambda: control.stub.ListSandboxes(
                pb.ListSandboxesRequest(template=template), **control.opts))
        finally:
            await control.channel.close()
        return [_info(s) for s in reply.sandboxes]

    async def get_info(self) -> SandboxInfo:
        reply = await self._control.call(lambda: self._control.stub.GetSandbox(
            pb.GetSandboxRequest(sandbox_id=self.sandbox_id), **self._control.opts))
        self._info = _info(reply.sandbox)
        return self._info

    async def run_code(self, code: str, *, timeout: float | None = 60.0) -> Execution:
        """Run a cell in the sandbox's persistent Python kernel.

        ``timeout`` is the cell's (None: the server's default, 60 s); past it the cell
        is interrupted and the kernel keeps its state.

        Raises:
            TimeoutException: the cell ran past ``timeout`` (``partial`` is its
                Execution with ``timed_out`` set, as E2B raises), or the call's own
                deadline passed.
            InvalidArgumentError: empty code, or timeout out of range.
            UnavailableError: the kernel could not be started.
        """
        return await run_code(self._runtime, self._metadata, code, timeout)

    async def set_timeout(self, seconds: float) -> None:
        """Keep the sandbox alive ``seconds`` from now."""
        request = pb.RenewSandboxRequest(sandbox_id=self.sandbox_id, ttl=duration(seconds))
        await self._control.call(
            lambda: self._control.stub.RenewSandbox(request, **self._control.opts))

    async def pause(self) -> None:
        await self._control.call(lambda: self._control.stub.PauseSandbox(
            pb.PauseSandboxRequest(sandbox_id=self.sandbox_id), **self._control.opts))

    async def resume(self) -> None:
        await self._control.call(lambda: self._control.stub.ResumeSandbox(
            pb.ResumeSandboxRequest(sandbox_id=self.sandbox_id), **self._control.opts))

    async def kill(self) -> None:
        """Delete the sandbox (every process, every file) and close the client."""
        try:
            await self._control.call(lambda: self._control.stub.DeleteSandbox(
                pb.DeleteSandboxRequest(sandbox_id=self.sandbox_id), **self._control.opts))
        finally:
            await self.close()

    async def close(self) -> None:
        """Close the client's connections; the sandbox keeps running."""
        await self._channel.close()
        await self._control.channel.close()

    async def __aenter__(self) -> AsyncSandbox:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.kill()
