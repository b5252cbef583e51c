"""Domain errors of sandboxd, the data-plane daemon inside a sandbox.

SandboxdError
 +-- InvalidInputError              bad input; the message says what is allowed
 |    +-- PathOutsideWorkspaceError  the path resolves (symlinks included) outside
 |    +-- WorkspaceRootError         the operation may not touch the workspace itself
 |    +-- EditTextMismatchError      an old_text was found zero or several times
 |    +-- FileNotTextError           the file is not UTF-8 text
 +-- PathNotFoundError              nothing at the path (or its parent)
 +-- PathAlreadyExistsError         something is already at the path
 +-- PathStateError                 the path is of the wrong kind for the operation
 |    +-- PathIsDirectoryError
 |    +-- PathNotDirectoryError
 |    +-- DirectoryNotEmptyError
 |    +-- FileNotRegularError        a FIFO, socket or device
 +-- PathAccessDeniedError          the sandbox user may not do this
 +-- LimitExceededError             a server limit is reached
 |    +-- FileTooLargeError
 |    +-- TooManyCommandsError
 |    +-- ProcessLimitError          the sandbox's process limit stops a fork
 |    +-- DiskFullError
 +-- KernelUnavailableError         the Python kernel could not be started

A command or cell that runs out of time is not an error: it ends with a result
marked as timed out (see exec and kernel).

The gRPC servicer maps each branch to one status code, in one place.
"""

from __future__ import annotations

__all__ = [
    "DirectoryNotEmptyError",
    "DiskFullError",
    "EditTextMismatchError",
    "FileNotRegularError",
    "FileNotTextError",
    "FileTooLargeError",
    "InvalidInputError",
    "KernelUnavailableError",
    "LimitExceededError",
    "PathAccessDeniedError",
    "PathAlreadyExistsError",
    "PathIsDirectoryError",
    "PathNotDirectoryError",
    "PathNotFoundError",
    "PathOutsideWorkspaceError",
    "PathStateError",
    "ProcessLimitError",
    "SandboxdError",
    "TooManyCommandsError",
    "WorkspaceRootError",
]


class SandboxdError(Exception):
    """Base of every sandboxd error; the message is safe to show to the caller."""


class InvalidInputError(SandboxdError):
    """The request is malformed or out of range."""


class PathOutsideWorkspaceError(InvalidInputError):
    """A path resolves outside the workspace."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"path {path!r} resolves outside the workspace (symlinks included); "
            "only paths under /workspace are allowed"
        )
        self.path = path


class WorkspaceRootError(InvalidInputError):
    """The operation would remove or move the workspace itself."""

    def __init__(self, operation: str) -> None:
        super().__init__(f"cannot {operation} the workspace root /workspace; name a path inside it")


class EditTextMismatchError(InvalidInputError):
    """An edit's old_text does not occur exactly once."""

    def __init__(self, index: int, count: int) -> None:
        where = "was not found" if count == 0 else f"was found {count} times"
        super().__init__(
            f"edit #{index + 1}: old_text {where}; it must occur exactly once "
            "(add surrounding lines to make it unique)"
        )
        self.index = index
        self.count = count


class FileNotTextError(InvalidInputError):
    """The file cannot be edited as UTF-8 text."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{path} is not UTF-8 text; only UTF-8 text files can be edited")


class PathNotFoundError(SandboxdError):
    """Nothing exists at the path."""

    def __init__(self, path: str, what: str = "no such file or directory") -> None:
        super().__init__(f"{path}: {what}")
        self.path = path


class PathAlreadyExistsError(SandboxdError):
    """Something already exists where the operation would create a path."""

    def __init__(self, path: str, hint: str = "") -> None:
        super().__init__(f"{path} already exists" + (f"; {hint}" if hint else ""))
        self.path = path


class PathStateError(SandboxdError):
    """The path exists but is of the wrong kind for the operation."""


class PathIsDirectoryError(PathStateError):
    def __init__(self, path: str) -> None:
        super().__init__(f"{path} is a directory; this operation needs a file")


class PathNotDirectoryError(PathStateError):
    def __init__(self, path: str) -> None:
        super().__init__(f"{path} is not a directory; this operation needs a directory")


class DirectoryNotEmptyError(PathStateError):
    def __init__(self, path: str, hint: str = "") -> None:
        super().__init__(f"{path} is a non-empty directory" + (f"; {hint}" if hint else ""))


class FileNotRegularError(PathStateError):
    def __init__(self, path: str) -> None:
        super().__init__(f"{path} is not a regular file (a FIFO, socket or device)")


class PathAccessDeniedError(SandboxdError):
    """The sandbox user lacks permission on the path."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{path}: permission denied for the sandbox user")


class LimitExceededError(SandboxdError):
    """A server limit is reached."""


class FileTooLargeError(LimitExceededError):
    def __init__(self, path: str, limit: int) -> None:
        super().__init__(f"{path} would exceed the file size limit of {limit} bytes")
        self.limit = limit


class TooManyCommandsError(LimitExceededError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"{limit} commands are already running, the most allowed at once; "
            "retry when one has finished"
        )
        self.limit = limit


class ProcessLimitError(LimitExceededError):
    def __init__(self) -> None:
        super().__init__(
            "cannot start the command: the sandbox's process limit is reached; "
            "wait for running commands or background processes to finish"
        )


class DiskFullError(LimitExceededError):
    def __init__(self, path: str) -> None:
        super().__init__(f"{path}: no space left in the workspace")


class KernelUnavailableError(SandboxdError):
    """The Python kernel could not be started (or restarted)."""
