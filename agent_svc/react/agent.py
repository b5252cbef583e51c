"""The built-in ReAct agent: a chat model that calls the gateway's tools until it answers.

One run (one ``/process`` request)::

    read the session's history -> run approved calls (if the input answers
    approval requests) -> repeat at most max_steps times:
        stream the model (text deltas are yielded as they come)
        no tool calls -> done
        each call: yield plugin_call; run it in the session's sandbox (or, for an
        approval tool, yield mcp_approval_request) and yield plugin_call_output
    -> still calling tools after max_steps: StepLimitError

Each model call is a span ``agent.model_call`` and each tool call a span
``agent.tool_call`` under the caller's current span (the server's
``agent.run``); the tool call's trace context goes on to the gateway in the
gRPC metadata, so the gateway's ``tool.call`` span continues the same trace.

What the run yields is what a query function may yield (:mod:`agent_svc.protocol`):
``str`` text deltas and complete :class:`Message` objects. Every finished
message is appended to the history before it is yielded.

A run that asks for approval ends after its ``mcp_approval_request`` messages;
its response completes normally with that request as the last output (as
OpenAI's Responses API does). The client answers with a new request in the
same session whose input holds an ``mcp_approval_response``.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Sequence

from opentelemetry import trace

from agent_svc.protocol import AgentRequest, Message, Role, TextContent
from agent_svc.react.approval import match_answers, pending_approvals, rejection_text
from agent_svc.react.chat_format import to_chat_messages
from agent_svc.react.errors import ReactAgentError, StepLimitError
from agent_svc.react.history import ConversationHistory, SessionHistoryAdapter
from agent_svc.react.messages import (
    ApprovalAnswer,
    ToolCall,
    approval_answer,
    approval_request_message,
    call_message,
    new_approval_id,
    output_message,
)
from agent_svc.react.model import ChatModel, ModelTurn
from agent_svc.react.settings import ReactSettings
from agent_svc.react.toolbox import GatewayTools, ToolClient, Toolset
from agent_svc.telemetry import tracer_for
from sandgate.sdk.tools import AsyncToolGateway

__all__ = ["QueryFunction", "ReactAgent", "gateway_factory", "make_react_query", "react_query"]

Yield = str | Message
QueryFunction = Callable[..., AsyncIterator[Yield]]
"""``async def query(self, msgs, request=None, **kwargs)``, an async generator function."""


class _Run:
    """One run's conversation: the history so far, and where finished messages go."""

    def __init__(self, history: ConversationHistory | None, user_id: str, session_id: str,
                 messages: list[Message]) -> None:
        self._history = history
        self.user_id = user_id
        self.session_id = session_id
        self.messages = messages

    async def record(self, message: Message) -> Message:
        if self._history is not None:
            await self._history.append_messages(self.user_id, self.session_id, [message])
        self.messages.append(message)
        return message


class ReactAgent:
    """The built-in agent, shared by every run of an app.

    Args:
        settings: the model endpoint, limits, approval tools, system prompt.
        gateway_factory: makes the gateway client (:func:`gateway_factory` makes
            the SDK's AsyncToolGateway); called once, on first use, inside the
            running event loop.
        history: where conversations are kept; None leaves it to each run (see
            :meth:`run`).
        record_history: append each finished message to ``history``; False when
            something else records the runs (an AgentApp with a session history).
        tracer_provider: where the model and tool call spans go (default: the
            global provider).
    """

    def __init__(self, settings: ReactSettings, gateway_factory: Callable[[], ToolClient],
                 history: ConversationHistory | None = None, *,
                 record_history: bool = True,
                 tracer_provider: trace.TracerProvider | None = None) -> None:
        self.settings = settings
        self.history = history
        self.record_history = record_history
        self._tracer = tracer_for(tracer_provider)
        self._model = ChatModel(settings)
        self._tools = GatewayTools(gateway_factory, ttl_s=settings.tools_ttl_s,
                                   call_timeout_s=settings.tool_timeout_s)

    async def run(self, msgs: Sequence[Message], request: AgentRequest, *,
                  history: ConversationHistory | None = None,
                  record_history: bool | None = None) -> AsyncIterator[Yield]:
        """Answer ``msgs`` (the request's new input) in the request's session.

        Args:
            msgs: the new input messages (user text, approval responses).
            request: the request (session, user, model parameters).
            history: this run's history instead of the agent's; with neither,
                the run sees only ``msgs``.
            record_history: instead of the agent's ``record_history``.

        Raises:
            ModelNotConfiguredError: no model endpoint, name or key is set.
            ApprovalResponseError, ApprovalNotFoundError: a bad approval answer.
            ToolsUnavailableError: the gateway could not list tools.
            ModelUnavailableError, ModelTimeoutError, ModelRejectedError,
            ModelBadResponseError: the model failed.
            StepLimitError: the model still called tools after ``max_steps`` turns.
        """
        self.settings.check_model()
        session_id = request.session_id or f"react-{secrets.token_hex(8)}"
        user_id = request.user_id or session_id
        store = history if history is not None else self.history
        record = self.record_history if record_history is None else record_history
        prior = await store.get_messages(user_id, session_id) if store is not None else []
        answers: list[tuple[Message, ApprovalAnswer]] = []
        inputs: list[Message] = []
        for message in msgs:
            answer = approval_answer(message)
            if answer is None:
                inputs.append(message)
            else:
                answers.append((message, answer))
        approved = match_answers(pending_approvals(prior), [a for _, a in answers])
        toolset = await self._tools.toolset()
        run = _Run(store if record else None, user_id, session_id, prior)
        for (message, _), (pending, answer) in zip(answers, approved, strict=True):
            await run.record(message)
            if answer.approve:
                yield await self._call(run, pending.call, toolset)
            else:
                yield await run.record(output_message(
                    pending.call, rejection_text(answer), is_error=True))
        for message in inputs:
            await run.record(message)
        for step in range(1, self.settings.max_steps + 1):
            turn = ModelTurn()
            async for item in self._model_turn(run, toolset, request, step):
                if isinstance(item, str):
                    yield item
                else:
                    turn = item
            if turn.text:
                # Already streamed as deltas; kept for the next turns' context.
                await run.record(Message(role=Role.ASSISTANT,
                                         content=[TextContent(text=turn.text)]))
            if not turn.calls:
                return
            waiting = False
            for call in turn.calls:
                yield await run.record(call_message(call))
                if self.settings.needs_approval(toolset.tool_name(call.name)):
                    yield await run.record(approval_request_message(call, new_approval_id()))
                    waiting = True
                else:
                    yield await self._call(run, call, toolset)
            if waiting:
                return
        raise StepLimitError(
            f"the agent stopped after {self.settings.max_steps} model steps without a final "
            "answer (the model kept calling tools); raise SANDGATE_AGENT_MAX_STEPS or ask "
            "for less at once")

    async def _model_turn(self, run: _Run, toolset: Toolset, request: AgentRequest, step: int
                          ) -> AsyncIterator[str | ModelTurn]:
        # Not the current span: it would stay current in the consumer between yields.
        span = self._tracer.start_span("agent.model_call", attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": request.model or self.settings.model,
            "sandgate.step": step})
        try:
            async for item in self._model.turn(
                    to_chat_messages(self.settings.system_prompt, run.messages),
                    toolset.schemas, request):
                if not isinstance(item, str):
                    span.set_attribute("sandgate.tool_calls", len(item.calls))
                    if item.finish_reason:
                        span.set_attribute("gen_ai.response.finish_reasons",
                                           [item.finish_reason])
                yield item
        except ReactAgentError as exc:
            span.set_status(trace.StatusCode.ERROR, exc.code)
            raise
        finally:
            span.end()

    async def _call(self, run: _Run, call: ToolCall, toolset: Toolset) -> Message:
        tool = toolset.tool_name(call.name)
        with self._tracer.start_as_current_span("agent.tool_call", attributes={
                "sandgate.tool": tool, "sandgate.session_id": run.session_id}) as span:
            outcome = await self._tools.call(call, toolset, session=run.session_id,
                                             user=run.user_id)
            span.set_attribute("sandgate.is_error", outcome.is_error)
            if outcome.is_error:
                span.set_status(trace.StatusCode.ERROR, "tool_error")
        return await run.record(output_message(call, outcome.output, is_error=outcome.is_error))

    async def close(self) -> None:
        """Close the model's HTTP client and the gateway channel."""
        try:
            await self._model.close()
        finally:
            await self._tools.close()


def gateway_factory(settings: ReactSettings) -> Callable[[], ToolClient]:
    """Makes the SDK's gateway client for ``settings.gateway_target`` and its key."""
    return lambda: AsyncToolGateway(settings.gateway_target, settings.gateway_api_key)


def react_query(agent: ReactAgent) -> QueryFunction:
    """A query function (``@app.query`` shape) that runs ``agent``.

    ``msgs`` is the request's new input (``request.input`` when empty); the
    conversation continues the history of ``request.session_id`` /
    ``request.user_id`` and its tools run in that session's sandbox. An agent
    without a history of its own reads the app's ``session_history`` (an
    AgentScope-style session service, through :class:`SessionHistoryAdapter`)
    and leaves recording to the app, which records every run's input and output.
    """

    async def query(self: object, msgs: Sequence[Message] = (),
                    request: AgentRequest | None = None, **kwargs: object
                    ) -> AsyncIterator[Yield]:
        if request is None:
            request = AgentRequest(input=list(msgs))
        history: ConversationHistory | None = None
        service = getattr(self, "session_history", None)
        if agent.history is None and service is not None:
            history = SessionHistoryAdapter(service)
        async for item in agent.run(list(msgs) or request.input, request, history=history,
                                    record_history=False if history is not None else None):
            yield item

    return query


def make_react_query(settings: ReactSettings, gateway_factory: Callable[[], ToolClient],
                     history: ConversationHistory | None = None) -> QueryFunction:
    """The built-in agent as a query function for :class:`AgentApp`.

    Wire it into an app like a hand-written query function::

        settings = ReactSettings()   # SANDGATE_MODEL_BASE_URL, SANDGATE_MODEL, ... keys
        app.query(framework="sandgate")(make_react_query(settings, gateway_factory(settings)))

    Without ``history`` the agent reads the app's ``session_history`` and the app
    records each run (so a conversation continues across requests with the same
    ``session_id``); with a :class:`ConversationHistory` the agent reads and
    records there itself (then give the app no session history of the same store,
    or messages are kept twice).

    The returned function is ``async def query(self, msgs, request=None, **kwargs)``
    and yields ``str`` text deltas and complete ``Message`` objects. Errors end the
    run with a :class:`~agent_svc.react.errors.ReactAgentError` whose ``code`` is
    stable (``model_not_configured``, ``model_unavailable``, ...). To close the
    model and gateway clients at shutdown, build a :class:`ReactAgent` yourself,
    wrap it with :func:`react_query` and ``await agent.close()`` in ``shutdown``.
    """
    return react_query(ReactAgent(settings, gateway_factory, history))
