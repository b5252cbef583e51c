"""One streamed model turn over an OpenAI-compatible chat-completions endpoint.

:meth:`ChatModel.turn` yields the answer's text deltas as they arrive and, last,
the whole :class:`ModelTurn` (text and tool calls, whose argument fragments it
joins). Failures of the official ``openai`` client become the agent's errors
here, in one mapping: no connection or a 5xx -> ``model_unavailable``, no
answer in time -> ``model_timeout``, a 4xx -> ``model_rejected``, an answer that
is no chat stream -> ``model_bad_response``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import openai
from openai import AsyncOpenAI, omit
from openai.types.chat import (
    ChatCompletionChunk,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageParam,
)

from agent_svc.protocol import AgentRequest
from agent_svc.react.errors import (
    ModelBadResponseError,
    ModelRejectedError,
    ModelTimeoutError,
    ModelUnavailableError,
    ReactAgentError,
)
from agent_svc.react.messages import ToolCall
from agent_svc.react.settings import ReactSettings

__all__ = ["ChatModel", "ModelTurn", "model_error"]

_DETAIL_CHARS = 300
_T = TypeVar("_T")


@dataclass
class ModelTurn:
    """What the model answered in one turn."""

    text: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None


def _detail(exc: openai.APIError) -> str:
    message = " ".join(str(exc.message).split())
    return message[:_DETAIL_CHARS]


def model_error(exc: openai.OpenAIError | ValueError, base_url: str) -> ReactAgentError:
    """The agent's error for a failure of the model client (the one mapping)."""
    where = f"the model endpoint {base_url}"
    if isinstance(exc, openai.APITimeoutError):
        return ModelTimeoutError(f"{where} did not answer in time")
    if isinstance(exc, openai.APIConnectionError):
        return ModelUnavailableError(f"{where} could not be reached: {_detail(exc)}")
    if isinstance(exc, openai.InternalServerError):
        return ModelUnavailableError(
            f"{where} failed (HTTP {exc.status_code}): {_detail(exc)}")
    if isinstance(exc, openai.APIStatusError):
        return ModelRejectedError(
            f"{where} refused the request (HTTP {exc.status_code}): {_detail(exc)}; check "
            "SANDGATE_MODEL, the API key and the endpoint's limits")
    if isinstance(exc, openai.APIResponseValidationError):
        return ModelBadResponseError(f"{where} sent an answer that is not a chat completion")
    if isinstance(exc, openai.APIError):
        return ModelUnavailableError(f"{where} reported an error: {_detail(exc)}")
    if isinstance(exc, ValueError):  # json.JSONDecodeError: data lines that are not JSON
        return ModelBadResponseError(f"{where} streamed data that is not JSON")
    return ModelUnavailableError(f"{where} failed: {type(exc).__name__}")


class _Calls:
    """Joins streamed tool-call fragments by their index."""

    def __init__(self) -> None:
        self._parts: dict[int, list[str]] = {}

    def add(self, chunk_call: object) -> None:
        index = getattr(chunk_call, "index", None)
        if not isinstance(index, int):
            index = len(self._parts)
        parts = self._parts.setdefault(index, ["", "", ""])
        call_id = getattr(chunk_call, "id", None)
        if isinstance(call_id, str) and call_id:
            parts[0] = call_id
        function = getattr(chunk_call, "function", None)
        name = getattr(function, "name", None)
        if isinstance(name, str) and name and name != parts[1]:
            parts[1] += name
        arguments = getattr(function, "arguments", None)
        if isinstance(arguments, str):
            parts[2] += arguments

    def calls(self) -> list[ToolCall]:
        calls = []
        for _, (call_id, name, arguments) in sorted(self._parts.items()):
            if not name:
                raise ModelBadResponseError("the model asked for a tool call without a name")
            calls.append(ToolCall(call_id or f"call_{secrets.token_hex(12)}", name, arguments))
        return calls


class ChatModel:
    """The model endpoint of :class:`ReactSettings`; one HTTP client, opened on first use."""

    def __init__(self, settings: ReactSettings) -> None:
        self._settings = settings
        self._client: AsyncOpenAI | None = None

    def _connected(self) -> AsyncOpenAI:
        if self._client is None:
            self._client = AsyncOpenAI(
                api_key=self._settings.model_api_key, base_url=self._settings.model_base_url,
                timeout=self._settings.model_timeout_s,
                max_retries=self._settings.model_max_retries)
        return self._client

    async def turn(self, messages: Sequence[ChatCompletionMessageParam],
                   tools: Sequence[ChatCompletionFunctionToolParam], request: AgentRequest
                   ) -> AsyncIterator[str | ModelTurn]:
        """Stream one answer: text deltas, then the complete :class:`ModelTurn`.

        The request's model parameters (``model``, ``temperature``, ``top_p``,
        ``max_tokens``, ``stop``, ``seed``) override the settings' model.

        Raises:
            ModelUnavailableError, ModelTimeoutError, ModelRejectedError,
            ModelBadResponseError: see :func:`model_error`.
        """
        settings = self._settings
        turn = ModelTurn()
        calls = _Calls()
        chunks = 0
        try:
            stream = await self._connected().chat.completions.create(
                model=request.model or settings.model, messages=list(messages),
                tools=list(tools) if tools else omit, stream=True,
                temperature=_given(request.temperature), top_p=_given(request.top_p),
                max_tokens=_given(request.max_tokens), stop=_given(request.stop),
                seed=_given(request.seed))
            async with stream:
                async for chunk in stream:
                    chunks += 1
                    for delta in _deltas(chunk, turn):
                        text = getattr(delta, "content", None)
                        if isinstance(text, str) and text:
                            turn.text += text
                            yield text
                        for chunk_call in getattr(delta, "tool_calls", None) or ():
                            calls.add(chunk_call)
        except (openai.OpenAIError, json.JSONDecodeError) as exc:
            raise model_error(exc, settings.model_base_url) from None
        if not chunks:
            raise ModelBadResponseError(
                f"the model endpoint {settings.model_base_url} answered without any chat "
                "completion chunk; is it an OpenAI-compatible /chat/completions endpoint?")
        turn.calls = calls.calls()
        yield turn

    async def close(self) -> None:
        """Close the HTTP client (a later turn opens a new one)."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()


def _given(value: _T | None) -> _T | openai.Omit:
    return omit if value is None else value


def _deltas(chunk: ChatCompletionChunk, turn: ModelTurn) -> list[object]:
    """The chunk's first choice's delta, checked; the finish reason goes to ``turn``.

    Raises:
        ModelBadResponseError: the chunk has no list of choices.
    """
    # Chunks are not validated by the client: read them defensively.
    choices = getattr(chunk, "choices", None)
    if not isinstance(choices, list):
        raise ModelBadResponseError("the model streamed a chunk without choices")
    if not choices:
        return []  # a usage-only chunk
    choice = choices[0]
    reason = getattr(choice, "finish_reason", None)
    if isinstance(reason, str):
        turn.finish_reason = reason
    delta = getattr(choice, "delta", None)
    return [delta] if delta is not None else []
