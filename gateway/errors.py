"""Errors of the gateway and the one mapping from a failure to an MCP result.

GatewayError                       each class carries the gRPC status it stands for
 +-- RateLimitedError              the tenant's rate limit; ``retry_after_s`` says when
 +-- ToolNotFoundError             unknown tool, or one the tenant may not call
 +-- ToolArgumentsError            arguments that do not match the tool's schema
 +-- SessionKeyError               a session id the gateway cannot accept
 +-- SandboxLostError              the session's sandbox stopped during the call
 +-- UpstreamUnavailableError      a federated MCP server is down or failed
 |    +-- UpstreamTimeoutError     ... or did not answer in time
 +-- MisconfigurationError         the operator's configuration is wrong

Missing or unknown API keys raise the service kit's ``UnauthenticatedError``
(sandgate.service.keys): 401 over HTTP, UNAUTHENTICATED over gRPC.

Every failure of a tool call, whether raised here or answered as a gRPC status
by sandbox_svc or sandboxd, goes through :func:`failure_result`, the only place
where a status becomes what the MCP (and gRPC) caller sees: bad input, missing
things, limits and unavailable dependencies are a result with ``is_error`` and
a message the model can act on; misconfiguration and internal faults raise
:class:`ProtocolError` (a JSON-RPC error over MCP, a status over gRPC) that
names a request id and never a stack trace or a secret.
"""

from __future__ import annotations

import enum
import logging
import secrets

import grpc

from gateway.results import ToolResult, error_result

__all__ = [
    "GatewayError",
    "Hop",
    "MisconfigurationError",
    "ProtocolError",
    "RateLimitedError",
    "SandboxLostError",
    "SessionKeyError",
    "ToolArgumentsError",
    "ToolNotFoundError",
    "UpstreamTimeoutError",
    "UpstreamUnavailableError",
    "failure_result",
]

logger = logging.getLogger(__name__)
Code = grpc.StatusCode


class GatewayError(Exception):
    """Base of the gateway's own errors."""

    code: grpc.StatusCode = Code.INTERNAL


class RateLimitedError(GatewayError):
    code = Code.RESOURCE_EXHAUSTED

    def __init__(self, tenant: str, retry_after_s: float) -> None:
        super().__init__(f"rate limit of tenant {tenant!r} reached; retry in "
                         f"{retry_after_s:.1f} s")
        self.retry_after_s = retry_after_s


class ToolNotFoundError(GatewayError):
    code = Code.NOT_FOUND

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown tool {name!r}; list the tools (tools/list) to see the ones "
                         "you may call")
        self.name = name


class ToolArgumentsError(GatewayError):
    code = Code.INVALID_ARGUMENT


class SessionKeyError(GatewayError):
    code = Code.INVALID_ARGUMENT


class SandboxLostError(GatewayError):
    code = Code.UNAVAILABLE


class UpstreamUnavailableError(GatewayError):
    code = Code.UNAVAILABLE


class UpstreamTimeoutError(UpstreamUnavailableError):
    code = Code.DEADLINE_EXCEEDED


class MisconfigurationError(GatewayError):
    code = Code.FAILED_PRECONDITION


class ProtocolError(Exception):
    """A failure the caller cannot fix by changing its call: answered as a protocol error."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class Hop(enum.Enum):
    """Who answered with the failing status."""

    GATEWAY = "gateway"
    CONTROL_PLANE = "sandbox service"
    SANDBOX = "sandbox"
    UPSTREAM = "upstream"


_TOOL_ERROR_HINTS: dict[tuple[Hop, grpc.StatusCode], str] = {
    (Hop.SANDBOX, Code.DEADLINE_EXCEEDED):
        "The time limit was reached; pass a larger timeout or split the work.",
    (Hop.SANDBOX, Code.RESOURCE_EXHAUSTED):
        "A sandbox limit was reached; use smaller inputs or outputs.",
    (Hop.SANDBOX, Code.UNAVAILABLE): "Retry the call in a moment.",
    (Hop.CONTROL_PLANE, Code.RESOURCE_EXHAUSTED):
        "No sandbox is available right now; retry later, or call sandbox_release for "
        "sessions you no longer need.",
    (Hop.CONTROL_PLANE, Code.UNAVAILABLE): "The sandbox service is unreachable; retry later.",
    (Hop.CONTROL_PLANE, Code.DEADLINE_EXCEEDED):
        "The sandbox service did not answer in time; retry later.",
    (Hop.UPSTREAM, Code.UNAVAILABLE): "Retry later; the other tools keep working.",
    (Hop.UPSTREAM, Code.DEADLINE_EXCEEDED): "Retry later or with a smaller request.",
}

# Statuses that mean "the caller can do something about it" at each hop.
_TOOL_ERRORS: dict[Hop, frozenset[grpc.StatusCode]] = {
    Hop.GATEWAY: frozenset({Code.NOT_FOUND, Code.INVALID_ARGUMENT, Code.UNAVAILABLE,
                            Code.DEADLINE_EXCEEDED, Code.RESOURCE_EXHAUSTED}),
    # sandbox_svc's INVALID_ARGUMENT (unknown template) and UNAUTHENTICATED (bad
    # service key) come from the gateway's own configuration, not from the call.
    Hop.CONTROL_PLANE: frozenset({Code.RESOURCE_EXHAUSTED, Code.UNAVAILABLE,
                                  Code.DEADLINE_EXCEEDED, Code.NOT_FOUND}),
    Hop.SANDBOX: frozenset({Code.INVALID_ARGUMENT, Code.OUT_OF_RANGE, Code.NOT_FOUND,
                            Code.ALREADY_EXISTS, Code.FAILED_PRECONDITION,
                            Code.PERMISSION_DENIED, Code.RESOURCE_EXHAUSTED,
                            Code.DEADLINE_EXCEEDED, Code.UNAVAILABLE, Code.CANCELLED}),
    Hop.UPSTREAM: frozenset(Code) - {Code.OK},
}

_OPAQUE: dict[tuple[Hop, grpc.StatusCode], str] = {
    (Hop.CONTROL_PLANE, Code.UNAVAILABLE): "no sandbox could be started or reached",
    (Hop.CONTROL_PLANE, Code.DEADLINE_EXCEEDED): "the sandbox service timed out",
}

_MISCONFIGURED: dict[Hop, frozenset[grpc.StatusCode]] = {
    Hop.GATEWAY: frozenset({Code.FAILED_PRECONDITION}),
    Hop.CONTROL_PLANE: frozenset({Code.INVALID_ARGUMENT, Code.UNAUTHENTICATED,
                                  Code.PERMISSION_DENIED, Code.FAILED_PRECONDITION}),
    Hop.SANDBOX: frozenset({Code.UNAUTHENTICATED}),
    Hop.UPSTREAM: frozenset(),
}


def failure_result(hop: Hop, code: grpc.StatusCode, detail: str, *,
                   sandbox_id: str = "") -> ToolResult:
    """The result a failed call answers with, or ProtocolError when it is not the caller's.

    Args:
        hop: who reported the failure.
        code: the status it reported (a GatewayError's ``code`` for the gateway).
        detail: its message, shown to the caller for tool errors only.
        sandbox_id: the sandbox involved, if any.

    Raises:
        ProtocolError: the gateway is misconfigured (FAILED_PRECONDITION) or hit
            an internal fault (INTERNAL); the message names a request id to quote.
    """
    if code in _TOOL_ERRORS[hop]:
        hint = _TOOL_ERROR_HINTS.get((hop, code))
        if (hop, code) in _OPAQUE:
            # The control plane's own troubles (start-up logs, addresses) are the
            # operator's business: the caller gets a request id to quote.
            request_id = secrets.token_hex(4)
            logger.warning("request %s: %s answered %s: %s", request_id, hop.value, code.name,
                           detail)
            detail = f"{_OPAQUE[(hop, code)]} (request {request_id})"
        text = f"Error: {detail}" if not hint else f"Error: {detail}\n{hint}"
        return error_result(text, sandbox_id=sandbox_id)
    request_id = secrets.token_hex(4)
    if code in _MISCONFIGURED[hop]:
        logger.error("gateway misconfigured (request %s): %s answered %s: %s", request_id,
                     hop.value, code.name, detail)
        raise ProtocolError(Code.FAILED_PRECONDITION,
                            f"the gateway is misconfigured ({hop.value} answered {code.name}); "
                            f"its operator can find request {request_id} in the gateway log")
    logger.error("internal error (request %s): %s answered %s: %s", request_id, hop.value,
                 code.name, detail)
    raise ProtocolError(Code.INTERNAL, f"internal error (request {request_id})")
