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

__all__ = [
    "AsyncSandbox",
    "AuthenticationError",
    "BrowserResult",
    "CommandResult",
    "EntryInfo",
    "Execution",
    "ExecutionError",
    "InvalidArgumentError",
    "LimitExceededError",
    "NotFoundError",
    "Result",
    "Sandbox",
    "SandboxInfo",
    "SandgateError",
    "StateError",
    "TimeoutException",
    "UnavailableError",
]
