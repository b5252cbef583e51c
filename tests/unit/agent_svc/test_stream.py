"""The stream builder: yields of a query function -> /process events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent_svc.protocol import (
    AgentRequest,
    DataContent,
    ErrorInfo,
    Message,
    MessageType,
    TextContent,
)
from agent_svc.stream import Event, InvalidYieldError, StreamBuilder

_RECORDED = Path(__file__).parents[2] / "fixtures" / "peers" / "process-stream-example.txt"
_VARYING = {"id", "msg_id", "created_at", "completed_at"}


def _request(**fields: Any) -> AgentRequest:
    return AgentRequest.model_validate({"input": [{"role": "user", "content": [
        {"type": "text", "text": "hi"}]}], **fields})


def _dump(events: list[Event]) -> list[dict[str, Any]]:
    return [json.loads(e.model_dump_json()) for e in events]


def _run(*items: object, session: str = "123") -> list[dict[str, Any]]:
    builder = StreamBuilder(_request(), session)
    events = builder.start()
    for item in items:
        events += builder.feed(item)
    return _dump(events + builder.complete())


def _shape(value: Any) -> Any:
    """The event with its ids and times blanked (they vary between runs)."""
    if isinstance(value, dict):
        return {k: ("*" if k in _VARYING and v is not None else _shape(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return value


def _recorded() -> list[dict[str, Any]]:
    lines = _RECORDED.read_text().splitlines()
    return [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]


def test_one_text_yield_gives_exactly_the_recorded_stream() -> None:
    events = _run("Hello! I am Friday.")
    assert _shape(events) == _shape(_recorded())


def test_a_complete_message_gives_the_recorded_stream_too() -> None:
    events = _run(Message(role="assistant", content=[TextContent(text="Hello! I am Friday.")]))
    assert _shape(events) == _shape(_recorded())


def test_ids_inside_one_stream_agree() -> None:
    events = _run("a")
    response_id = events[0]["id"]
    assert {e["id"] for e in events if e["object"] == "response"} == {response_id}
    msg_id = events[2]["id"]
    assert events[3]["msg_id"] == msg_id and events[4]["id"] == msg_id
    assert events[5]["output"][0]["id"] == msg_id


def test_the_request_id_becomes_the_response_id() -> None:
    builder = StreamBuilder(_request(id="req-7"), "s")
    assert {e.model_dump()["id"] for e in builder.start() + builder.complete()} == {"req-7"}


def test_text_deltas_extend_one_message_and_the_final_content_is_whole() -> None:
    events = _run("Hel", "lo", "!")
    assert [(e["object"], e["status"]) for e in events] == [
        ("response", "created"), ("response", "in_progress"), ("message", "in_progress"),
        ("content", "in_progress"), ("content", "in_progress"), ("content", "in_progress"),
        ("message", "completed"), ("response", "completed")]
    assert [e["text"] for e in events[3:6]] == ["Hel", "lo", "!"]
    assert all(e["delta"] is True for e in events[3:6])
    assert events[6]["content"][0]["text"] == "Hello!"
    assert events[6]["content"][0]["delta"] is None
    assert [e["sequence_number"] for e in events] == list(range(8))


def test_growing_message_pairs_send_only_what_is_new() -> None:
    message = Message(role="assistant", content=[TextContent(text="The ans")])
    grown = message.model_copy(update={"content": [TextContent(text="The answer is 4")]})
    events = _run((message, False), (grown, True))
    deltas = [e["text"] for e in events if e["object"] == "content"]
    assert deltas == ["The ans", "wer is 4"]
    assert events[-1]["output"][0]["content"][0]["text"] == "The answer is 4"


def test_a_new_message_closes_the_open_one_first() -> None:
    call = Message(type=MessageType.PLUGIN_CALL, role="assistant", content=[DataContent(
        data={"name": "run_ipython_cell", "arguments": '{"code": "1+1"}', "call_id": "c1"})])
    events = _run("Let me compute.", call, "It is 2.")
    kinds = [(e["object"], e.get("type"), e["status"]) for e in events]
    assert kinds == [
        ("response", None, "created"), ("response", None, "in_progress"),
        ("message", "message", "in_progress"), ("content", "text", "in_progress"),
        ("message", "message", "completed"),
        ("message", "plugin_call", "in_progress"), ("content", "data", "completed"),
        ("message", "plugin_call", "completed"),
        ("message", "message", "in_progress"), ("content", "text", "in_progress"),
        ("message", "message", "completed"),
        ("response", None, "completed")]
    data_event = events[6]
    assert data_event["delta"] is False and data_event["msg_id"] == events[5]["id"]
    assert [m["type"] for m in events[-1]["output"]] == ["message", "plugin_call", "message"]


def test_a_message_that_never_said_last_is_completed_at_the_end() -> None:
    events = _run((Message(content=[TextContent(text="partial")]), False))
    assert events[-2]["object"] == "message" and events[-2]["status"] == "completed"
    assert events[-2]["role"] == "assistant"


def test_updates_to_a_completed_message_are_dropped() -> None:
    message = Message(content=[TextContent(text="done")])
    events = _run((message, True), (message, False))
    assert [e["object"] for e in events].count("message") == 2


def test_failure_marks_the_open_message_incomplete_and_carries_the_error() -> None:
    builder = StreamBuilder(_request(), "s")
    events = builder.start() + builder.feed("half")
    events += builder.fail(ErrorInfo(code="agent_error", message="ValueError: boom"))
    dumped = _dump(events)
    assert dumped[-2]["object"] == "message" and dumped[-2]["status"] == "incomplete"
    assert dumped[-1]["status"] == "failed"
    assert dumped[-1]["error"] == {"code": "agent_error", "message": "ValueError: boom"}
    assert dumped[-1]["completed_at"] is not None


def test_cancel_ends_the_response_canceled() -> None:
    builder = StreamBuilder(_request(), "s")
    dumped = _dump(builder.start() + builder.cancel())
    assert [e["status"] for e in dumped] == ["created", "in_progress", "canceled"]
    assert dumped[-1]["error"] is None and dumped[-1]["output"] == []


@pytest.mark.parametrize("item", [42, None, ("text", True), (Message(), "yes"), b"bytes"])
def test_other_yields_are_refused_with_what_is_allowed(item: object) -> None:
    builder = StreamBuilder(_request(), "s")
    with pytest.raises(InvalidYieldError, match=r"str .*Message"):
        builder.feed(item)


def test_empty_text_yields_send_nothing() -> None:
    assert _run("")[2]["object"] == "response"
