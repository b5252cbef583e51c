"""A conversation (``/process`` messages) as OpenAI chat-completions messages.

- user / system / assistant text messages -> the same roles (user images as
  ``image_url`` parts);
- ``plugin_call`` (and ``function_call``) -> ``tool_calls`` of one assistant
  message (joined to the assistant text just before them);
- ``plugin_call_output`` -> a ``tool`` message right after its call.

The result is always a valid chat: every tool call is answered right after
its assistant message, wherever its output was stored, and a call without an
output (a run interrupted mid-call, or an approval never given) gets a
stand-in result saying so. Approval messages, reasoning and errors are not sent.
"""

from __future__ import annotations

from collections.abc import Sequence

from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionContentPartParam,
    ChatCompletionMessageFunctionToolCallParam,
    ChatCompletionMessageParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionToolMessageParam,
    ChatCompletionUserMessageParam,
)

from agent_svc.protocol import ImageContent, Message, MessageType, Role, TextContent
from agent_svc.react.messages import data_of, read_call, read_output

__all__ = ["INTERRUPTED_OUTPUT", "UNAPPROVED_OUTPUT", "to_chat_messages"]

INTERRUPTED_OUTPUT = "This call returned no result: the run was interrupted while it ran."
UNAPPROVED_OUTPUT = "This call was not run: it needed the user's approval, which was not given."


def _user(message: Message) -> ChatCompletionUserMessageParam | None:
    parts: list[ChatCompletionContentPartParam] = []
    for content in message.content or ():
        if isinstance(content, TextContent) and content.text:
            parts.append({"type": "text", "text": content.text})
        elif isinstance(content, ImageContent) and content.image_url:
            parts.append({"type": "image_url", "image_url": {"url": content.image_url}})
    if not parts:
        return None
    if all(p["type"] == "text" for p in parts):
        return {"role": "user", "content": message.text()}
    return {"role": "user", "content": parts}


class _Chat:
    """Builds the chat; keeps the open assistant message's calls until they are answered."""

    def __init__(self, system_prompt: str, outputs: dict[str, str],
                 awaiting_approval: set[str]) -> None:
        self.messages: list[ChatCompletionMessageParam] = []
        if system_prompt:
            self.messages.append(ChatCompletionSystemMessageParam(role="system",
                                                                  content=system_prompt))
        self._outputs = outputs
        self._awaiting_approval = awaiting_approval
        self._assistant: ChatCompletionAssistantMessageParam | None = None
        self._calls: list[ChatCompletionMessageFunctionToolCallParam] = []

    def text(self, role: Role, text: str) -> None:
        self.answer_calls()
        if role == Role.ASSISTANT:
            self._assistant = {"role": "assistant", "content": text}
            self.messages.append(self._assistant)
        else:
            self.messages.append({"role": "system", "content": text})

    def user(self, message: ChatCompletionUserMessageParam) -> None:
        self.answer_calls()
        self.messages.append(message)

    def call(self, call_id: str, name: str, arguments: str) -> None:
        if self._assistant is None:
            self._assistant = {"role": "assistant", "content": None}
            self.messages.append(self._assistant)
        self._calls.append({"id": call_id, "type": "function",
                            "function": {"name": name, "arguments": arguments}})
        self._assistant["tool_calls"] = self._calls

    def answer_calls(self) -> None:
        for call in self._calls:
            call_id = call["id"]
            output = self._outputs.get(call_id)
            if output is None:
                output = (UNAPPROVED_OUTPUT if call_id in self._awaiting_approval
                          else INTERRUPTED_OUTPUT)
            self.messages.append(ChatCompletionToolMessageParam(
                role="tool", tool_call_id=call_id, content=output))
        self._assistant, self._calls = None, []


def to_chat_messages(system_prompt: str, history: Sequence[Message]
                     ) -> list[ChatCompletionMessageParam]:
    """The chat-completions messages for ``history`` after ``system_prompt`` (if any)."""
    outputs: dict[str, str] = {}
    awaiting_approval: set[str] = set()
    for message in history:
        if (output := read_output(message)) is not None:
            outputs.setdefault(*output)
        elif message.type == MessageType.MCP_APPROVAL_REQUEST:
            call_id = (data_of(message) or {}).get("call_id")
            if isinstance(call_id, str):
                awaiting_approval.add(call_id)
    chat = _Chat(system_prompt, outputs, awaiting_approval)
    for message in history:
        if message.type == MessageType.MESSAGE:
            if message.role == Role.USER:
                if (user := _user(message)) is not None:
                    chat.user(user)
            elif message.role in (Role.ASSISTANT, Role.SYSTEM) and message.text():
                chat.text(Role(message.role), message.text())
        elif (call := read_call(message)) is not None:
            chat.call(call.call_id, call.name, call.arguments)
    chat.answer_calls()
    return chat.messages
