"""Errors raised by the client SDK, translated from gRPC status codes in one place.

SandgateError
 +-- InvalidArgumentError   the request was wrong; the message says what is allowed
 +-- NotFoundError          no such sandbox or path (or another tenant's)
 +-- AuthenticationError    missing or wrong key / token
 +-- LimitExceededError     a limit was reached (sandboxes, output, file size)
 +-- TimeoutException       a command or cell ran out of time (partial output kept),
 |                          or a call its client deadline
 +-- StateError             the sandbox is not in a state that allows this
 +-- UnavailableError       the server or the sandbox is not reachable
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

T = TypeVar("T")

__all__ = [
    "AuthenticationError",
    "InvalidArgumentError",
    "LimitExceededError",
    "NotFoundError",
    "SandgateError",
    "StateError",
    "TimeoutException",
    "UnavailableError",
    "from_rpc_error",
    "translated",
]


class SandgateError(Exception):
    """Base of every SDK error; ``code`` is the gRPC status behind it."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code


class InvalidArgumentError(SandgateError):
    pass


class NotFoundError(SandgateError):
    pass


class AuthenticationError(SandgateError):
    pass


class LimitExceededError(SandgateError):
    pass


class TimeoutException(SandgateError):
    """A command, cell or call ran out of time.

    Two clocks can run out, and ``partial`` tells which (for ``commands.run`` it
    is a ``CommandResult``, for ``run_code`` an ``Execution``):

    - the sandbox's ``timeout``: the sandbox stopped the work; ``partial`` holds
      what it printed until then and ``partial.timed_out`` is True (``code`` is
      None: the call itself succeeded);
    - the client's own deadline (``request_timeout``, or the timeout's slack):
      the call was abandoned; ``code`` is DEADLINE_EXCEEDED and
      ``partial.timed_out`` is False.

    ``sandbox_timeout`` says which, for any ``partial``.
    """

    def __init__(self, message: str, code: grpc.StatusCode | None = None,
                 partial: object = None) -> None:
        super().__init__(message, code)
        self.partial = partial

    @property
    def sandbox_timeout(self) -> bool:
        """True when the sandbox stopped the work at its timeout (not the client's deadline)."""
        return bool(getattr(self.partial, "timed_out", False))


class StateError(SandgateError):
    pass


class UnavailableError(SandgateError):
    pass


_BY_CODE: dict[grpc.StatusCode, type[SandgateError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: StateError,
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: AuthenticationError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: LimitExceededError,
    grpc.StatusCode.DEADLINE_EXCEEDED: TimeoutException,
    grpc.StatusCode.FAILED_PRECONDITION: StateError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
}


def from_rpc_error(exc: grpc.aio.AioRpcError, partial: object = None) -> SandgateError:
    """The SandgateError for a failed call; ``partial`` rides on a TimeoutException.

    Raises:
        Nothing: it returns the error to raise.
    """
    code = exc.code()
    cls = _BY_CODE.get(code, SandgateError)
    message = exc.details() or code.name
    if cls is TimeoutException:
        return TimeoutException(message, code, partial)
    return cls(message, code)


async def translated(call: Callable[[], Awaitable[T]]) -> T:
    """Await ``call``, turning a gRPC error into the matching SandgateError.

    Raises:
        SandgateError: the call failed (a subclass per status code).
    """
    try:
        return await call()
    except grpc.aio.AioRpcError as exc:
        raise from_rpc_error(exc) from None
