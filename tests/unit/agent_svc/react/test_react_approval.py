"""Approval state: which calls wait for a human, and reading the human's answers."""

from __future__ import annotations

import pytest

from agent_svc.protocol import DataContent, Message, MessageType, Role
from agent_svc.react.approval import match_answers, pending_approvals, rejection_text
from agent_svc.react.errors import ApprovalNotFoundError, ApprovalResponseError
from agent_svc.react.messages import (
    ApprovalAnswer,
    ToolCall,
    approval_answer,
    approval_request_message,
    call_message,
    output_message,
)

CALL = ToolCall("c1", "run_shell_command", '{"command": "rm -rf x"}')
OTHER = ToolCall("c2", "write_file", '{"path": "a", "content": ""}')


def _response(data: dict[str, object]) -> Message:
    return Message(type=MessageType.MCP_APPROVAL_RESPONSE, role=Role.USER,
                   content=[DataContent(data=data)])


def test_a_request_is_pending_until_its_call_has_an_output() -> None:
    history = [call_message(CALL), approval_request_message(CALL, "apr_1"),
               call_message(OTHER), approval_request_message(OTHER, "apr_2"),
               output_message(OTHER, "rejected", is_error=True)]
    pending = pending_approvals(history)
    assert list(pending) == ["apr_1"]
    assert pending["apr_1"].call == CALL


def test_answers_match_pending_requests_and_unknown_or_repeated_ids_are_refused() -> None:
    pending = pending_approvals([call_message(CALL), approval_request_message(CALL, "apr_1")])
    yes = ApprovalAnswer("apr_1", True)
    assert match_answers(pending, [yes]) == [(pending["apr_1"], yes)]
    with pytest.raises(ApprovalNotFoundError) as unknown:
        match_answers(pending, [ApprovalAnswer("apr_9", True)])
    with pytest.raises(ApprovalNotFoundError):
        match_answers(pending, [yes, yes])
    assert unknown.value.code == "approval_not_found"
    assert "apr_1" in unknown.value.message


def test_an_answer_is_read_from_either_id_field_and_malformed_ones_are_refused() -> None:
    assert approval_answer(_response({"approval_id": "a", "approve": True})) == \
        ApprovalAnswer("a", True)
    assert approval_answer(_response({"approval_request_id": "b", "approve": False,
                                      "reason": "no"})) == ApprovalAnswer("b", False, "no")
    assert approval_answer(Message(role=Role.USER)) is None
    for bad in ({"approval_id": "a"}, {"approve": True}, {"approval_id": "a", "approve": "yes"}):
        with pytest.raises(ApprovalResponseError) as info:
            approval_answer(_response(bad))
        assert info.value.code == "bad_approval_response"


def test_a_rejection_tells_the_model_the_reason() -> None:
    assert "not run" in rejection_text(ApprovalAnswer("a", False))
    assert rejection_text(ApprovalAnswer("a", False, "too risky")).endswith("too risky")
