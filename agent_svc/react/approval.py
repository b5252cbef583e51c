"""Human approval of tool calls: what is pending in a conversation, and the answers.

A call of a tool named in ``SANDGATE_AGENT_APPROVAL_TOOLS`` is not run: the
agent records an ``mcp_approval_request`` and ends the run. The request stays
pending while its call has no output. A later request whose input holds an
``mcp_approval_response`` for it resumes the conversation: approved, the tool
runs; rejected, the model is told so as the call's result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent_svc.protocol import Message, MessageType
from agent_svc.react.errors import ApprovalNotFoundError
from agent_svc.react.messages import ApprovalAnswer, ToolCall, data_of, read_output

__all__ = ["PendingApproval", "match_answers", "pending_approvals", "rejection_text"]


@dataclass(frozen=True)
class PendingApproval:
    """A call waiting for a human's answer."""

    approval_id: str
    call: ToolCall


def pending_approvals(history: Sequence[Message]) -> dict[str, PendingApproval]:
    """Approval id -> the pending request, for requests whose call has no output yet."""
    answered = {o[0] for o in map(read_output, history) if o is not None}
    pending: dict[str, PendingApproval] = {}
    for message in history:
        if message.type != MessageType.MCP_APPROVAL_REQUEST:
            continue
        data = data_of(message) or {}
        approval_id, call_id = data.get("approval_id"), data.get("call_id")
        name, arguments = data.get("name"), data.get("arguments")
        if (isinstance(approval_id, str) and isinstance(call_id, str) and isinstance(name, str)
                and isinstance(arguments, str) and call_id not in answered):
            pending[approval_id] = PendingApproval(approval_id, ToolCall(call_id, name, arguments))
    return pending


def match_answers(pending: dict[str, PendingApproval], answers: Sequence[ApprovalAnswer]
                  ) -> list[tuple[PendingApproval, ApprovalAnswer]]:
    """Each answer with the request it answers, in the answers' order.

    Raises:
        ApprovalNotFoundError: an answer names no pending request of this session
            (unknown, or answered already).
    """
    matched: list[tuple[PendingApproval, ApprovalAnswer]] = []
    seen: set[str] = set()
    for answer in answers:
        request = pending.get(answer.approval_id)
        if request is None or answer.approval_id in seen:
            waiting = ", ".join(sorted(pending)) or "none"
            raise ApprovalNotFoundError(
                f"no pending approval request {answer.approval_id!r} in this session "
                f"(pending: {waiting}); answer the approval_id of an mcp_approval_request "
                "with the same session_id and user_id")
        seen.add(answer.approval_id)
        matched.append((request, answer))
    return matched


def rejection_text(answer: ApprovalAnswer) -> str:
    """What the model reads as the result of a call the user rejected."""
    reason = f" Their reason: {answer.reason}" if answer.reason else ""
    return f"The user rejected this call, so it was not run.{reason}"
