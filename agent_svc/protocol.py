"""The AgentScope Runtime ``/process`` protocol: requests, messages, content, responses.

These models are the wire format of ``POST /process`` (one ``data: <json>`` SSE
event per object) and of the gRPC ``AgentService.Query`` stream, and the
vocabulary every agent in agent_svc speaks. Field names and defaults follow
AgentScope Runtime 1.1.6 as recorded in ``shared/peers/process-stream-example.txt``,
so its clients parse our streams unchanged; unknown request fields are accepted
and kept, as there.

A stream is::

    response(created) -> response(in_progress)
    -> for each message: message(in_progress) -> content(delta=True)* -> message(completed)
    -> response(completed | failed | canceled)

every event carrying an increasing ``sequence_number``.

What a query function may yield (the stream builder turns it into events):

- ``str``: a text delta appended to the current assistant text message (a new one
  is opened when none is open, or when the previous yield was not text);
- :class:`Message`: a complete message (its content already final);
- ``(Message, bool)``: a message whose content grows with each yield (same ``id``),
  the bool saying whether this is its last state; deltas are computed.
"""

from __future__ import annotations

import time
import uuid
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AgentRequest",
    "Content",
    "ContentType",
    "DataContent",
    "ErrorInfo",
    "ImageContent",
    "Message",
    "MessageType",
    "Response",
    "Role",
    "RunStatus",
    "TextContent",
    "new_message_id",
    "new_response_id",
]


class RunStatus(StrEnum):
    """Statuses of responses, messages and content (AgentScope Runtime's RunStatus)."""

    CREATED = "created"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELED = "canceled"
    FAILED = "failed"
    REJECTED = "rejected"
    UNKNOWN = "unknown"
    QUEUED = "queued"
    INCOMPLETE = "incomplete"


class MessageType(StrEnum):
    """Kinds of message; clients of the seed parse ``plugin_call*`` and ``function_call*``."""

    MESSAGE = "message"
    FUNCTION_CALL = "function_call"
    FUNCTION_CALL_OUTPUT = "function_call_output"
    PLUGIN_CALL = "plugin_call"
    PLUGIN_CALL_OUTPUT = "plugin_call_output"
    MCP_CALL = "mcp_call"
    MCP_CALL_OUTPUT = "mcp_call_output"
    MCP_APPROVAL_REQUEST = "mcp_approval_request"
    MCP_APPROVAL_RESPONSE = "mcp_approval_response"
    REASONING = "reasoning"
    ERROR = "error"


class Role(StrEnum):
    ASSISTANT = "assistant"
    USER = "user"
    SYSTEM = "system"
    TOOL = "tool"


class ContentType(StrEnum):
    TEXT = "text"
    DATA = "data"
    IMAGE = "image"


def new_message_id() -> str:
    return f"msg_{uuid.uuid4()}"


def new_response_id() -> str:
    return f"response_{uuid.uuid4()}"


class ErrorInfo(BaseModel):
    """Why a run, message or content failed: a stable ``code`` and a readable message."""

    code: str
    message: str


class _Event(BaseModel):
    """Fields every streamed object carries."""

    model_config = ConfigDict(extra="allow", use_enum_values=True)

    sequence_number: int | None = None
    object: str
    status: RunStatus | None = None
    error: ErrorInfo | None = None


class TextContent(_Event):
    object: Literal["content"] = "content"
    type: Literal["text"] = "text"
    index: int | None = None
    delta: bool | None = None
    msg_id: str | None = None
    text: str | None = None


class DataContent(_Event):
    """Structured content, e.g. a tool call ``{name, arguments, call_id}`` or its output."""

    object: Literal["content"] = "content"
    type: Literal["data"] = "data"
    index: int | None = None
    delta: bool | None = None
    msg_id: str | None = None
    data: dict[str, Any] | None = None


class ImageContent(_Event):
    object: Literal["content"] = "content"
    type: Literal["image"] = "image"
    index: int | None = None
    delta: bool | None = None
    msg_id: str | None = None
    image_url: str | None = None
    """A URL or a ``data:image/png;base64,...`` URI."""


Content = TextContent | DataContent | ImageContent


class Message(_Event):
    object: Literal["message"] = "message"
    id: str = Field(default_factory=new_message_id)
    type: MessageType = MessageType.MESSAGE
    role: Role | None = None
    content: list[Content] | None = None
    code: str | None = None
    message: str | None = None
    usage: dict[str, Any] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    def text(self) -> str:
        """The concatenated text of this message's text content."""
        return "".join(c.text or "" for c in self.content or () if isinstance(c, TextContent))


class Response(_Event):
    object: Literal["response"] = "response"
    id: str = Field(default_factory=new_response_id)
    created_at: int = Field(default_factory=lambda: int(time.time()))
    completed_at: int | None = None
    output: list[Message] | None = None
    usage: dict[str, Any] | None = None
    session_id: str | None = None


class AgentRequest(BaseModel):
    """The body of ``POST /process``; unknown fields are accepted and kept."""

    model_config = ConfigDict(extra="allow", use_enum_values=True)

    input: list[Message]
    session_id: str | None = None
    user_id: str | None = None
    stream: bool = True
    id: str | None = None
    """Becomes the response id when given."""
    model: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | str | None = None
    seed: int | None = None
    tools: list[dict[str, Any]] | None = None
