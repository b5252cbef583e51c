"""Why a run of the built-in agent failed; each error carries a stable ``code``.

The stream builder ends the run ``failed`` with ``error: {code, message}``::

    ReactAgentError                 code
     +-- ModelNotConfiguredError    model_not_configured   no endpoint, model or key set
     +-- ModelUnavailableError      model_unavailable      no connection, or a 5xx answer
     +-- ModelTimeoutError          model_timeout          no answer in time
     +-- ModelBadResponseError      model_bad_response     an answer that is not a chat stream
     +-- ModelRejectedError         model_rejected         4xx: bad key, unknown model, limit
     +-- ToolsUnavailableError      tools_unavailable      the gateway could not list tools
     +-- StepLimitError             max_steps_exceeded     still calling tools after max_steps
     +-- ApprovalNotFoundError      approval_not_found     an approval response for no request
     +-- ApprovalResponseError      bad_approval_response  an approval response without id/approve

A tool that fails is not an error of the run: the model gets the failure as
the tool's result and carries on.
"""

from __future__ import annotations

__all__ = [
    "ApprovalNotFoundError",
    "ApprovalResponseError",
    "ModelBadResponseError",
    "ModelNotConfiguredError",
    "ModelRejectedError",
    "ModelTimeoutError",
    "ModelUnavailableError",
    "ReactAgentError",
    "StepLimitError",
    "ToolsUnavailableError",
]


class ReactAgentError(Exception):
    """Base of the built-in agent's errors; ``code`` is stable, the message readable."""

    code = "agent_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ModelNotConfiguredError(ReactAgentError):
    code = "model_not_configured"


class ModelUnavailableError(ReactAgentError):
    code = "model_unavailable"


class ModelTimeoutError(ReactAgentError):
    code = "model_timeout"


class ModelBadResponseError(ReactAgentError):
    code = "model_bad_response"


class ModelRejectedError(ReactAgentError):
    code = "model_rejected"


class ToolsUnavailableError(ReactAgentError):
    code = "tools_unavailable"


class StepLimitError(ReactAgentError):
    code = "max_steps_exceeded"


class ApprovalNotFoundError(ReactAgentError):
    code = "approval_not_found"


class ApprovalResponseError(ReactAgentError):
    code = "bad_approval_response"
