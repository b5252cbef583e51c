"""Errors of the agent service, each mapped once to HTTP (and gRPC) status.

::

    AgentServiceError
     +-- InvalidRequestError    422 / INVALID_ARGUMENT  bad input; says what is allowed
     +-- SessionBusyError       409 / ABORTED           a run of this session is in progress
     +-- RunNotFoundError       404 / NOT_FOUND         no run in progress for that session
     +-- SessionNotFoundError   404 / NOT_FOUND         no such session in the history
     +-- TaskNotFoundError      404 / NOT_FOUND         no task with that id
     +-- ServiceNotStartedError 503 / UNAVAILABLE       a service used before start()
     +-- NotConfiguredError     501 / UNIMPLEMENTED     the app lacks what the call needs

A query function's own exception is not one of these: it ends its run's stream
with ``failed`` and ``error: {code, message}``, where ``code`` is the exception's
own ``code`` attribute when it has one (the built-in agent's
``model_not_configured``, ...), else ``agent_error``.
"""

from __future__ import annotations

__all__ = [
    "AgentServiceError",
    "InvalidRequestError",
    "NotConfiguredError",
    "RunNotFoundError",
    "ServiceNotStartedError",
    "SessionBusyError",
    "SessionNotFoundError",
    "TaskNotFoundError",
]


class AgentServiceError(Exception):
    """Base of the agent service's domain errors; ``http_status`` is its HTTP answer."""

    http_status = 500
    code = "internal_error"


class InvalidRequestError(AgentServiceError):
    """The request is malformed; the message names the field and what is allowed."""

    http_status = 422
    code = "invalid_request"


class SessionBusyError(AgentServiceError):
    """A run of the same session is in progress (runs of one session never interleave)."""

    http_status = 409
    code = "session_busy"


class RunNotFoundError(AgentServiceError):
    """No run is in progress for the session named."""

    http_status = 404
    code = "run_not_found"


class SessionNotFoundError(AgentServiceError):
    """The session history has no such session."""

    http_status = 404
    code = "session_not_found"


class TaskNotFoundError(AgentServiceError):
    """No task has that id."""

    http_status = 404
    code = "task_not_found"


class ServiceNotStartedError(AgentServiceError):
    """A state, session or memory service was used before ``start()`` or after ``stop()``."""

    http_status = 503
    code = "service_not_started"


class NotConfiguredError(AgentServiceError):
    """The app has nothing to answer the call with (no query function, no history)."""

    http_status = 501
    code = "not_configured"
