"""Sequential and fan-out pipelines of agents."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from agent_svc.pipeline import fan_out, named, sequential
from agent_svc.protocol import AgentRequest, Message, TextContent
from agent_svc.stream import StreamBuilder

_REQUEST = AgentRequest.model_validate(
    {"input": [{"role": "user", "content": [{"type": "text", "text": "add 2 and 2"}]}],
     "session_id": "s"})


async def planner(msgs: list[Message], request: AgentRequest) -> AsyncIterator[object]:
    yield "plan: "
    yield f"compute '{msgs[-1].text()}'"


async def executor(msgs: list[Message], request: AgentRequest) -> Message:
    assert [m.text() for m in msgs] == ["add 2 and 2", "plan: compute 'add 2 and 2'"]
    return Message(content=[TextContent(text="result: 4")])


async def reviewer(msgs: list[Message], request: AgentRequest) -> AsyncIterator[object]:
    yield (Message(id="r", content=[TextContent(text="looks ")]), False)
    yield (Message(id="r", content=[TextContent(text=f"looks right ({len(msgs)} seen)")]),
           True)


async def _output(items: AsyncIterator[object]) -> list[Message]:
    builder = StreamBuilder(_REQUEST, "s")
    builder.start()
    async for item in items:
        builder.feed(item)
    builder.complete()
    return builder.output


async def test_a_sequential_pipeline_hands_each_agent_the_conversation_so_far() -> None:
    output = await _output(sequential(planner, executor, reviewer)(_REQUEST.input, _REQUEST))
    assert [m.text() for m in output] == [
        "plan: compute 'add 2 and 2'", "result: 4", "looks right (3 seen)"]
    assert [m.metadata["agent"] for m in output] == ["planner", "executor", "reviewer"]


async def test_fan_out_runs_agents_concurrently_and_never_interleaves_messages() -> None:
    started: list[str] = []
    both = asyncio.Event()

    def worker(name: str) -> object:
        async def run(msgs: list[Message], request: AgentRequest) -> AsyncIterator[object]:
            started.append(name)
            if len(started) == 2:
                both.set()
            async with asyncio.timeout(5):
                await both.wait()  # only returns if the other branch runs at the same time
            yield f"{name} part 1, "
            await asyncio.sleep(0)
            yield f"{name} part 2"
        return named(run, name)

    output = await _output(fan_out(worker("a"), worker("b"))(_REQUEST.input, _REQUEST))
    assert sorted(m.text() for m in output) == ["a part 1, a part 2", "b part 1, b part 2"]
    assert {m.metadata["agent"] for m in output} == {"a", "b"}


async def test_pipelines_nest_and_a_failing_branch_fails_the_pipeline() -> None:
    async def judge(msgs: list[Message], request: AgentRequest) -> str:
        return f"judged {len(msgs) - 1} answers"

    nested = sequential(fan_out(planner, executor_free := named(planner, "planner2")), judge)
    output = await _output(nested(_REQUEST.input, _REQUEST))
    assert output[-1].text() == "judged 2 answers"
    assert executor_free.name == "planner2"

    async def broken(msgs: list[Message], request: AgentRequest) -> str:
        raise RuntimeError("branch down")

    with pytest.raises(RuntimeError, match="branch down"):
        await _output(fan_out(planner, broken)(_REQUEST.input, _REQUEST))


def test_an_empty_pipeline_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one agent"):
        sequential()
