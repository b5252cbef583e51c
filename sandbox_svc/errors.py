"""Domain errors of the control plane.

SandboxError
 +-- InvalidRequestError          bad input; the message says what is allowed
 |    +-- TemplateNotFoundError   names the templates that exist
 +-- SandboxNotFoundError         unknown id, or another tenant's
 +-- SandboxLimitError            a configured limit is reached
 +-- SandboxStateError            the sandbox is not in a state that allows this
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
    "SandboxError",
    "SandboxLimitError",
    "SandboxNotFoundError",
    "SandboxStateError",
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
    """A limit (live sandboxes, uid range) is reached."""


class SandboxStateError(SandboxError):
    """The sandbox's state does not allow the operation."""


class BackendError(SandboxError):
    """The isolation backend could not do what was asked."""


class IsolationUnavailableError(BackendError):
    """Isolation prerequisites are missing; the service must not start."""
