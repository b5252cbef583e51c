"""Sandgate's Python client, in the style of E2B's SDK (async first, sync twin)."""

from sandgate.sdk.browser import BrowserResult
from sandgate.sdk.code import Execution, ExecutionError, Result
from sandgate.sdk.commands import CommandResult
from sandgate.sdk.errors import (
    AuthenticationError,
    InvalidArgumentError,
    LimitExceededError,
    NotFoundError,
    SandgateError,
    StateError,
    TimeoutException,
    UnavailableError,
)
from sandgate.sdk.files import EntryInfo
from sandgate.sdk.sandbox import AsyncSandbox, SandboxInfo
from sandgate.sdk.sync import Sandbox, ToolGateway
from sandgate.sdk.templates import IsolationInfo, TemplateInfo
from sandgate.sdk.tools import (
    AsyncToolGateway,
    ImageBlock,
    ResourceBlock,
    TextBlock,
    ToolCallResult,
    ToolInfo,
    ToolProgress,
)

__all__ = [
    "AsyncSandbox",
    "AsyncToolGateway",
    "AuthenticationError",
    "BrowserResult",
    "CommandResult",
    "EntryInfo",
    "Execution",
    "ExecutionError",
    "ImageBlock",
    "InvalidArgumentError",
    "IsolationInfo",
    "LimitExceededError",
    "NotFoundError",
    "ResourceBlock",
    "Result",
    "Sandbox",
    "SandboxInfo",
    "SandgateError",
    "StateError",
    "TemplateInfo",
    "TextBlock",
    "TimeoutException",
    "ToolCallResult",
    "ToolGateway",
    "ToolInfo",
    "ToolProgress",
    "UnavailableError",
]
