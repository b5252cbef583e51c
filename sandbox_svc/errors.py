"""Domain errors of the control plane.

SandboxError
 +-- InvalidRequestError          bad input; the message says what is allowed
 |    +-- TemplateNotFoundError   names the templates that exist
 +-- SandboxNotFoundError         unknown id, or another tenant's
 +-- SandboxLimitError            a configured limit is reached
 +-- SandboxStateError            the sandbox is not in a state that allows this
 |    +-- PauseUnsupportedError   the backend cannot pause sandboxes
 |    +-- SessionConflictError    another claimer bound the session first (internal)
 +-- RegistryUnavailableError     the registry cannot be opened: refuse to start
 +-- StateDirInUseError           another instance holds the state dir: refuse to start
 +-- BackendError                 the isolation backend failed to act
      +-- IsolationUnavailableError  bwrap / cgroups missing: refuse to start

The gRPC servicer maps each class to one status code, in one place; missing
or unknown credentials raise the service kit's ``UnauthenticatedError``
(sandgate.service.keys), mapped there too.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "InvalidRequestError",
    "IsolationUnavailableError",
    "PauseUnsupportedError",
    "RegistryUnavailableError",
    "SandboxError",
    "SandboxLimitError",
    "SandboxNotFoundError",
    "SandboxStateError",
    "SessionConflictError",
    "StateDirInUseError",
    "TemplateNotFoundError",
]


class SandboxError(Exception):
    """Base of every control-plane error."""


class InvalidRequestError(SandboxError):
    """The request is malformed or out of range."""


class TemplateNotFoundError(InvalidRequestError):
    """No template has the requested name."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            f"unknown template {name!r}; available templates: {', '.join(sorted(known))}"
        )
        self.name = name
        self.known = sorted(known)


class SandboxNotFoundError(SandboxError):
    """No sandbox with this id is visible to the caller."""

    def __init__(self, sandbox_id: str) -> None:
        super().__init__(f"sandbox {sandbox_id!r} not found")
        self.sandbox_id = sandbox_id


class SandboxLimitError(SandboxError):
    """A limit (live sandboxes, the backend's capacity) is reached."""


class SandboxStateError(SandboxError):
    """The sandbox's state does not allow the operation."""


class PauseUnsupportedError(SandboxStateError):
    """The backend cannot pause (or resume) sandboxes; nothing was changed."""


class SessionConflictError(SandboxStateError):
    """Another claimer bound this session key first.

    The registry raises it when a STARTING row carrying a session key meets the
    unique session index; the manager then binds to the winner's sandbox. It
    never reaches a caller.
    """

    def __init__(self, session: str) -> None:
        super().__init__(f"session {session} is already bound to a sandbox")
        self.session = session


class RegistryUnavailableError(SandboxError):
    """The registry's storage cannot be used (e.g. written by a newer version)."""


class StateDirInUseError(SandboxError):
    """Another running Sandgate holds the state directory's lock; nothing was touched."""

    def __init__(self, state_dir: str, pid: int | None) -> None:
        holder = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(f"another Sandgate ({holder}) is using {state_dir}; stop it or set "
                         "SANDGATE_STATE_DIR")
        self.state_dir = state_dir
        self.pid = pid


class BackendError(SandboxError):
    """The isolation backend could not do what was asked."""


class IsolationUnavailableError(BackendError):
    """Isolation prerequisites are missing; the service must not start."""
