"""The messages the agent writes and reads: tool calls, their outputs, approvals.

Shapes follow AgentScope Runtime 1.1.6 so its clients parse them unchanged:

- ``plugin_call`` (role assistant), data ``{name, arguments, call_id}`` where
  ``arguments`` is the JSON text the model produced;
- ``plugin_call_output`` (role tool), data ``{call_id, name, output, is_error}``
  where ``output`` is the text the model was given;
- ``mcp_approval_request`` (role assistant), data ``{approval_id, call_id, name,
  arguments, server_label}``: the run stops until a human answers;
- ``mcp_approval_response`` (role user, sent by the client), data
  ``{approval_id, approve, reason}`` (``approval_request_id`` is accepted for
  ``approval_id``, as OpenAI's Responses API names it).

``function_call`` / ``function_call_output`` messages from other agents are
read like their ``plugin_call`` twins.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from agent_svc.protocol import DataContent, Message, MessageType, Role
from agent_svc.react.errors import ApprovalResponseError

__all__ = [
    "APPROVAL_SERVER_LABEL",
    "CALL_TYPES",
    "OUTPUT_TYPES",
    "ApprovalAnswer",
    "ToolCall",
    "approval_answer",
    "approval_request_message",
    "call_message",
    "data_of",
    "new_approval_id",
    "output_message",
    "read_call",
    "read_output",
]

APPROVAL_SERVER_LABEL = "sandgate"
CALL_TYPES = frozenset({MessageType.PLUGIN_CALL, MessageType.FUNCTION_CALL})
OUTPUT_TYPES = frozenset({MessageType.PLUGIN_CALL_OUTPUT, MessageType.FUNCTION_CALL_OUTPUT})


@dataclass(frozen=True)
class ToolCall:
    """One tool call the model asked for."""

    call_id: str
    name: str
    arguments: str
    """The arguments as the model wrote them (JSON text, not yet checked)."""


@dataclass(frozen=True)
class ApprovalAnswer:
    """A human's answer to an approval request."""

    approval_id: str
    approve: bool
    reason: str = ""


def new_approval_id() -> str:
    """A fresh id for an approval request (``apr_`` and 24 hex digits)."""
    return f"apr_{secrets.token_hex(12)}"


def data_of(message: Message) -> dict[str, Any] | None:
    """The data of the message's first data content, if it has one."""
    for content in message.content or ():
        if isinstance(content, DataContent) and isinstance(content.data, dict):
            return content.data
    return None


def _data_message(kind: MessageType, role: Role, data: dict[str, Any]) -> Message:
    return Message(type=kind, role=role, content=[DataContent(data=data)])


def call_message(call: ToolCall) -> Message:
    """The ``plugin_call`` message announcing ``call``."""
    return _data_message(MessageType.PLUGIN_CALL, Role.ASSISTANT, {
        "name": call.name, "arguments": call.arguments, "call_id": call.call_id})


def output_message(call: ToolCall, output: str, *, is_error: bool) -> Message:
    """The ``plugin_call_output`` message with what the model reads as ``call``'s result."""
    return _data_message(MessageType.PLUGIN_CALL_OUTPUT, Role.TOOL, {
        "call_id": call.call_id, "name": call.name, "output": output, "is_error": is_error})


def approval_request_message(call: ToolCall, approval_id: str) -> Message:
    """The ``mcp_approval_request`` message asking a human to allow ``call``."""
    return _data_message(MessageType.MCP_APPROVAL_REQUEST, Role.ASSISTANT, {
        "approval_id": approval_id, "call_id": call.call_id, "name": call.name,
        "arguments": call.arguments, "server_label": APPROVAL_SERVER_LABEL})


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def read_call(message: Message) -> ToolCall | None:
    """The tool call a ``plugin_call``/``function_call`` message holds, if well formed."""
    data = data_of(message) if message.type in CALL_TYPES else None
    if data is None or not _text(data.get("call_id")) or not _text(data.get("name")):
        return None
    arguments = data.get("arguments")
    if not isinstance(arguments, str):
        # Some clients send the arguments as an object; the model wants JSON text.
        arguments = json.dumps(arguments if arguments is not None else {}, ensure_ascii=False)
    return ToolCall(data["call_id"], data["name"], arguments)


def read_output(message: Message) -> tuple[str, str] | None:
    """``(call_id, output text)`` of a ``plugin_call_output``/``function_call_output``."""
    data = data_of(message) if message.type in OUTPUT_TYPES else None
    if data is None or not _text(data.get("call_id")):
        return None
    output = data.get("output")
    if not isinstance(output, str):
        output = json.dumps(output, ensure_ascii=False)
    return data["call_id"], output


def approval_answer(message: Message) -> ApprovalAnswer | None:
    """The answer an ``mcp_approval_response`` message carries (None for other messages).

    Raises:
        ApprovalResponseError: the message is an approval response without an
            approval id or a boolean ``approve``.
    """
    if message.type != MessageType.MCP_APPROVAL_RESPONSE:
        return None
    data = data_of(message) or {}
    approval_id = _text(data.get("approval_id")) or _text(data.get("approval_request_id"))
    approve = data.get("approve")
    if not approval_id or not isinstance(approve, bool):
        raise ApprovalResponseError(
            "an mcp_approval_response needs a data content {\"approval_id\": <the id of the "
            "mcp_approval_request>, \"approve\": true or false, \"reason\": optional text}")
    return ApprovalAnswer(approval_id, approve, _text(data.get("reason")))
