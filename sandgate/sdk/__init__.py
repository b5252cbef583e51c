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
from sandgate.sdk.sync import Sandbox
from sandgate.sdk.templates import IsolationInfo, TemplateInfo

__all__ = [
    "AsyncSandbox",
    "AuthenticationError",
    "BrowserResult",
    "CommandResult",
    "EntryInfo",
    "Execution",
    "ExecutionError",
    "InvalidArgumentError",
    "IsolationInfo",
    "LimitExceededError",
    "NotFoundError",
    "Result",
    "Sandbox",
    "SandboxInfo",
    "SandgateError",
    "StateError",
    "TemplateInfo",
    "TimeoutException",
    "UnavailableError",
]
