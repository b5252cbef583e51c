"""Multi-agent pipelines: sequential and fan-out composition of agents.

An *agent* here is any callable ``agent(msgs, request)`` that returns what a
query function yields (an async iterator of ``str`` / ``Message`` /
``(Message, last)``), or a coroutine returning a ``str``, a ``Message`` or a
list of them. Pipelines are agents too, so they nest::

    review = sequential(planner, executor, reviewer)
    best = sequential(fan_out(researcher_a, researcher_b), judge)

    @app.query()
    async def query_func(self, msgs, request=None, **kwargs):
        async for item in review(msgs, request):
            yield item

- :func:`sequential`: each agent sees the request's messages followed by every
  message the agents before it produced (the conversation so far) and streams
  to the client as it goes.
- :func:`fan_out`: every agent gets the same messages and runs concurrently;
  each finished message is sent whole as soon as it is complete, so branches
  never interleave inside one message (messages arrive in the order they finish).

Every message a pipeline step produces carries ``metadata["agent"]``: the
step's name (its ``name`` attribute or ``__name__``, or the name given with
:func:`named`).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agent_svc.protocol import AgentRequest, Message, Role, TextContent
from agent_svc.stream import StreamBuilder

__all__ = ["Agent", "FanOut", "Named", "Sequential", "agent_name", "fan_out", "named",
           "sequential"]

Agent = Callable[[list[Message], AgentRequest], Any]
"""``agent(msgs, request)`` -> async iterator of yields, or awaitable of a result."""


@dataclass(frozen=True)
class Named:
    """An agent with an explicit name."""

    agent: Agent
    name: str

    def __call__(self, msgs: list[Message], request: AgentRequest) -> Any:
        return self.agent(msgs, request)


def named(agent: Agent, name: str) -> Named:
    """``agent`` under ``name`` (the ``metadata["agent"]`` of its messages)."""
    return Named(agent, name)


def agent_name(agent: Agent) -> str:
    name = getattr(agent, "name", None) or getattr(agent, "__name__", None)
    return str(name) if name else type(agent).__name__


async def _yields(result: Any) -> AsyncIterator[object]:
    if inspect.isasyncgen(result) or hasattr(result, "__aiter__"):
        async for item in result:
            yield item
        return
    if inspect.isawaitable(result):
        result = await result
    for item in result if isinstance(result, list) else [result]:
        if item is not None:
            yield item


def _tagged(message: Message, name: str) -> Message:
    if message.metadata.get("agent") == name:
        return message
    return message.model_copy(update={"metadata": {**message.metadata, "agent": name}})


async def _step(agent: Agent, msgs: list[Message], request: AgentRequest,
                produced: list[Message]) -> AsyncIterator[object]:
    """Run one agent: its yields, tagged with its name, as ``Message`` / ``(Message, last)``;
    its finished messages are appended to ``produced``."""
    name = agent_name(agent)
    collector = StreamBuilder(request, request.session_id or "")
    text: Message | None = None
    async for item in _yields(agent(list(msgs), request)):
        if isinstance(item, str):
            if not item:
                continue
            # A str delta grows one message per run of str yields, as in the stream builder.
            if text is None:
                text = Message(role=Role.ASSISTANT, content=[TextContent(text="")],
                               metadata={"agent": name})
            content = text.content[0] if text.content else None
            assert isinstance(content, TextContent)
            content.text = (content.text or "") + item
            pair: tuple[Message, bool] = (text.model_copy(deep=True), False)
            collector.feed(pair)
            _collect(collector, produced)
            yield pair
            continue
        text = None
        if isinstance(item, Message):
            item = _tagged(item, name)
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], Message):
            item = (_tagged(item[0], name), item[1])
        collector.feed(item)
        _collect(collector, produced)
        yield item
    collector.complete()
    _collect(collector, produced)


def _collect(collector: StreamBuilder, produced: list[Message]) -> None:
    """Append the messages ``collector`` finished since the last call."""
    produced.extend(m.model_copy(update={"sequence_number": None})
                    for m in collector.output[len(produced):])


class Sequential:
    """Agents one after another, each seeing the conversation so far."""

    def __init__(self, agents: Sequence[Agent], name: str = "sequential") -> None:
        if not agents:
            raise ValueError("a sequential pipeline needs at least one agent")
        self.agents = list(agents)
        self.name = name

    async def __call__(self, msgs: list[Message], request: AgentRequest
                       ) -> AsyncIterator[object]:
        conversation = list(msgs)
        for agent in self.agents:
            produced: list[Message] = []
            async for item in _step(agent, conversation, request, produced):
                yield item
            conversation += produced

    def as_query(self) -> Callable[..., AsyncIterator[object]]:
        """A query function (``@app.query()``) running this pipeline."""
        return _as_query(self)


class FanOut:
    """Agents run concurrently on the same messages."""

    def __init__(self, agents: Sequence[Agent], name: str = "fan_out") -> None:
        if not agents:
            raise ValueError("a fan-out needs at least one agent")
        self.agents = list(agents)
        self.name = name

    async def __call__(self, msgs: list[Message], request: AgentRequest
                       ) -> AsyncIterator[object]:
        finished: asyncio.Queue[Message | BaseException | None] = asyncio.Queue()

        async def branch(agent: Agent) -> None:
            produced: list[Message] = []
            sent = 0
            try:
                async for _ in _step(agent, msgs, request, produced):
                    for message in produced[sent:]:
                        await finished.put(message)
                    sent = len(produced)
                for message in produced[sent:]:
                    await finished.put(message)
            except Exception as exc:
                await finished.put(exc)
            finally:
                await finished.put(None)

        tasks = [asyncio.create_task(branch(agent)) for agent in self.agents]
        try:
            remaining = len(tasks)
            while remaining:
                item = await finished.get()
                if item is None:
                    remaining -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def as_query(self) -> Callable[..., AsyncIterator[object]]:
        """A query function (``@app.query()``) running this fan-out."""
        return _as_query(self)


def _as_query(pipeline: Sequential | FanOut) -> Callable[..., AsyncIterator[object]]:
    async def query_func(self: object, msgs: list[Message], request: AgentRequest | None = None,
                         **kwargs: Any) -> AsyncIterator[object]:
        async for item in pipeline(msgs, request or AgentRequest(input=msgs)):
            yield item

    query_func.__name__ = pipeline.name
    return query_func


def sequential(*agents: Agent, name: str = "sequential") -> Sequential:
    """Agents one after another (see the module docstring).

    Raises:
        ValueError: no agent is given.
    """
    return Sequential(agents, name)


def fan_out(*agents: Agent, name: str = "fan_out") -> FanOut:
    """Agents concurrently on the same messages (see the module docstring).

    Raises:
        ValueError: no agent is given.
    """
    return FanOut(agents, name)

