"""The built-in ReAct agent: any OpenAI-compatible chat model + the gateway's tools.

``make_react_query(settings, gateway_factory(settings))`` is a query function for
AgentApp; see :mod:`agent_svc.react.agent`.
"""

from agent_svc.react.agent import (
    QueryFunction,
    ReactAgent,
    gateway_factory,
    make_react_query,
    react_query,
)
from agent_svc.react.errors import (
    ApprovalNotFoundError,
    ApprovalResponseError,
    ModelBadResponseError,
    ModelNotConfiguredError,
    ModelRejectedError,
    ModelTimeoutError,
    ModelUnavailableError,
    ReactAgentError,
    StepLimitError,
    ToolsUnavailableError,
)
from agent_svc.react.history import (
    ConversationHistory,
    InMemoryConversationHistory,
    SessionHistoryAdapter,
)
from agent_svc.react.settings import ReactSettings
from agent_svc.react.toolbox import ToolClient

__all__ = [
    "ApprovalNotFoundError",
    "ApprovalResponseError",
    "ConversationHistory",
    "InMemoryConversationHistory",
    "ModelBadResponseError",
    "ModelNotConfiguredError",
    "ModelRejectedError",
    "ModelTimeoutError",
    "ModelUnavailableError",
    "QueryFunction",
    "ReactAgent",
    "ReactAgentError",
    "ReactSettings",
    "SessionHistoryAdapter",
    "StepLimitError",
    "ToolClient",
    "ToolsUnavailableError",
    "gateway_factory",
    "make_react_query",
    "react_query",
]
