"""The backend contract: what the manager needs from an isolation backend.

A backend only starts, stops, pauses, probes and lists sandboxes. Everything
else (pools, session binding, TTLs, reaping, limits) is the manager's, and the
registry remembers it. Backends implement :class:`SandboxBackend`:

- ``sandbox_svc.local.backend.LocalBackend``: bubblewrap + cgroups on this host; its
  targets are ``unix:///.../sandboxd.sock``; host uids, slirp4netns and cgroups
  stay inside ``local/``.
- a Kubernetes backend: one Pod per sandbox; its targets are ``host:port``.

Every method is a coroutine, so a backend that talks to an API server never
blocks the event loop. Every method takes a sandbox id, never a host detail:
ids are what the registry stores, and what :meth:`SandboxBackend.leftovers`
returns after a restart. Ids are short (at most 12 + 10 characters of
``[A-Za-z0-9_-]``), so they fit in a Pod name or a Unix socket path.

Errors are the control plane's domain errors (``sandbox_svc.errors``), so the
servicer maps them to one status each: ``BackendError`` (UNAVAILABLE) when the
backend failed to act, ``SandboxLimitError`` (RESOURCE_EXHAUSTED) when it has
no room, ``PauseUnsupportedError`` (FAILED_PRECONDITION) when it cannot pause,
``IsolationUnavailableError`` when it cannot run a template at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sandbox_svc.isolation import Isolation
from sandbox_svc.templates import Template

__all__ = ["SandboxBackend", "StartSpec"]


@dataclass(frozen=True)
class StartSpec:
    """What a backend needs to start one sandbox."""

    sandbox_id: str
    """The registry's id; the backend names its resources after it."""
    template: Template
    """What the sandbox is: tools, limits, network, root filesystem."""
    token: str
    """The sandbox's secret: sandboxd accepts only ``authorization: Bearer <token>``."""
    warm_kernel: bool = False
    """Start the Python kernel before the first cell: set for pooled sandboxes of
    ``warm_kernel`` templates (one started for a session may never run a cell)."""


class SandboxBackend(Protocol):
    """Starts, stops, pauses, probes and lists sandboxes; nothing more.

    The manager calls these from one event loop, concurrently for different ids
    and never concurrently for one id (except :meth:`destroy`, which may race
    a :meth:`start` that is being cancelled and must then still leave nothing).
    """

    async def start(self, spec: StartSpec) -> str:
        """Start a sandbox and return once its sandboxd answers health checks.

        Args:
            spec: the sandbox's id, template and token. The id is new.

        Returns:
            The target a client dials to reach sandboxd, presenting the token:
            ``unix:///path/sandboxd.sock`` locally, ``host:port`` on Kubernetes.

        Raises:
            SandboxLimitError: the backend has no room for another sandbox.
            BackendError: the sandbox did not start. A failed or cancelled start
                leaves nothing behind: no processes, no files, no Pod.
        """
        ...

    async def destroy(self, sandbox_id: str) -> None:
        """Kill every process of the sandbox and remove everything it owns.

        Idempotent: an unknown or half-started id is not an error.

        Raises:
            BackendError: something could not be removed; a later call retries.
        """
        ...

    async def pause(self, sandbox_id: str) -> None:
        """Stop the sandbox's processes without losing their state.

        Raises:
            PauseUnsupportedError: this backend cannot pause; nothing changed.
            BackendError: the sandbox could not be paused.
        """
        ...

    async def resume(self, sandbox_id: str) -> None:
        """Let a paused sandbox run again; resuming a running sandbox is a no-op.

        Raises:
            PauseUnsupportedError: this backend cannot pause; nothing changed.
            BackendError: the sandbox could not be resumed.
        """
        ...

    async def probe(self, sandbox_id: str, timeout: float = 2.0) -> bool:
        """Whether the sandbox's sandboxd answers SERVING within ``timeout`` seconds.

        Never raises for an unknown, dead or unresponsive sandbox: that is False.

        Raises:
            Nothing but cancellation.
        """
        ...

    async def alive(self, sandbox_id: str) -> bool:
        """Whether the sandbox still has processes (a paused one does).

        Cheaper than :meth:`probe`: the reaper calls it for every sandbox.

        Raises:
            BackendError: the backend cannot tell (e.g. its API is unreachable);
                the caller must not treat that as dead.
        """
        ...

    async def leftovers(self) -> set[str]:
        """Ids of every sandbox this backend still holds resources for.

        After a restart the manager destroys those its registry does not know.

        Raises:
            BackendError: the backend cannot list its resources.
        """
        ...

    async def check_template(self, template: Template) -> None:
        """Refuse, at start-up, a template this backend cannot run.

        Raises:
            IsolationUnavailableError: the template needs something missing
                here; the message names what to install or change.
        """
        ...

    def isolation(self, template: Template) -> Isolation:
        """The isolation this backend gives every sandbox of ``template``, as enforced.

        ListTemplates shows it, so an operator sees what is in force, not what
        was intended.

        Raises:
            Nothing: a template the backend cannot run is refused earlier by
                :meth:`check_template`.
        """
        ...

    async def close(self) -> None:
        """Release the backend's own resources; sandboxes keep running.

        Raises:
            Nothing: failures are logged.
        """
        ...
