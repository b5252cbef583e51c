"""Conversations (``/process`` messages) as chat-completions messages."""

from __future__ import annotations

from agent_svc.protocol import DataContent, ImageContent, Message, MessageType, Role, TextContent
from agent_svc.react.chat_format import INTERRUPTED_OUTPUT, UNAPPROVED_OUTPUT, to_chat_messages
from agent_svc.react.messages import (
    ToolCall,
    approval_request_message,
    call_message,
    output_message,
)


def _text(role: Role, text: str) -> Message:
    return Message(role=role, content=[TextContent(text=text)])


CALL_A = ToolCall("call_a", "run_ipython_cell", '{"code": "1+1"}')
CALL_B = ToolCall("call_b", "run_shell_command", '{"command": "ls"}')


def test_text_turns_map_to_their_roles_after_the_system_prompt() -> None:
    chat = to_chat_messages("be brief", [_text(Role.USER, "hi"), _text(Role.ASSISTANT, "hello")])
    assert chat == [{"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"}]


def test_calls_join_the_assistant_text_before_them_and_outputs_follow_at_once() -> None:
    history = [_text(Role.USER, "go"), _text(Role.ASSISTANT, "Running both."),
               call_message(CALL_A), call_message(CALL_B),
               output_message(CALL_B, "b-out", is_error=False),
               output_message(CALL_A, "a-out", is_error=False),
               _text(Role.ASSISTANT, "Done.")]
    chat = to_chat_messages("", history)
    assert chat == [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": "Running both.", "tool_calls": [
            {"id": "call_a", "type": "function",
             "function": {"name": "run_ipython_cell", "arguments": '{"code": "1+1"}'}},
            {"id": "call_b", "type": "function",
             "function": {"name": "run_shell_command", "arguments": '{"command": "ls"}'}}]},
        {"role": "tool", "tool_call_id": "call_a", "content": "a-out"},
        {"role": "tool", "tool_call_id": "call_b", "content": "b-out"},
        {"role": "assistant", "content": "Done."}]


def test_an_output_stored_after_a_later_user_message_still_answers_its_call() -> None:
    history = [_text(Role.USER, "go"), call_message(CALL_A), _text(Role.USER, "and?"),
               output_message(CALL_A, "late", is_error=False)]
    chat = to_chat_messages("", history)
    assert [m["role"] for m in chat] == ["user", "assistant", "tool", "user"]
    assert chat[2] == {"role": "tool", "tool_call_id": "call_a", "content": "late"}


def test_calls_without_output_get_a_stand_in_result_saying_why() -> None:
    history = [_text(Role.USER, "go"), call_message(CALL_A), call_message(CALL_B),
               approval_request_message(CALL_B, "apr_1"), _text(Role.USER, "never mind")]
    chat = to_chat_messages("", history)
    tool_results = {m["tool_call_id"]: m["content"] for m in chat  # type: ignore[typeddict-item]
                    if m["role"] == "tool"}
    assert tool_results == {"call_a": INTERRUPTED_OUTPUT, "call_b": UNAPPROVED_OUTPUT}
    assert chat[-1] == {"role": "user", "content": "never mind"}


def test_function_calls_of_other_agents_read_like_plugin_calls() -> None:
    history = [
        Message(type=MessageType.FUNCTION_CALL, role=Role.ASSISTANT, content=[DataContent(
            data={"name": "read_file", "arguments": {"path": "a"}, "call_id": "f1"})]),
        Message(type=MessageType.FUNCTION_CALL_OUTPUT, role=Role.TOOL, content=[DataContent(
            data={"call_id": "f1", "output": [{"type": "text", "text": "x"}]})])]
    chat = to_chat_messages("", history)
    assert chat[0]["tool_calls"][0]["function"]["arguments"] == '{"path": "a"}'  # type: ignore[typeddict-item]
    assert chat[1]["content"] == '[{"type": "text", "text": "x"}]'


def test_user_images_become_image_parts_and_empty_or_foreign_messages_are_left_out() -> None:
    picture = Message(role=Role.USER, content=[
        TextContent(text="what is this?"), ImageContent(image_url="data:image/png;base64,AA==")])
    history = [picture, Message(role=Role.USER, content=[]),
               Message(type=MessageType.REASONING, role=Role.ASSISTANT,
                       content=[TextContent(text="hmm")]),
               Message(type=MessageType.PLUGIN_CALL, role=Role.ASSISTANT,
                       content=[DataContent(data={"name": "x"})])]
    chat = to_chat_messages("", history)
    assert chat == [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]}]
