"""The /process wire models against a stream recorded from AgentScope Runtime 1.1.6."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from agent_svc.protocol import (
    AgentRequest,
    DataContent,
    Message,
    MessageType,
    Response,
    TextContent,
)

_RECORDED = Path(__file__).parents[2] / "fixtures" / "peers" / "process-stream-example.txt"
_MODELS: dict[str, type[BaseModel]] = {
    "response": Response, "message": Message, "content": TextContent}


def _recorded_events() -> list[dict[str, object]]:
    lines = _RECORDED.read_text().splitlines()
    return [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]


def test_every_recorded_event_round_trips_to_the_same_json() -> None:
    events = _recorded_events()
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for event in events:
        model = _MODELS[str(event["object"])].model_validate(event)
        assert json.loads(model.model_dump_json()) == event


def test_a_request_keeps_unknown_fields_and_reads_typed_content() -> None:
    request = AgentRequest.model_validate({
        "input": [{"role": "user", "type": "message",
                   "content": [{"type": "text", "text": "hi"},
                               {"type": "data", "data": {"k": 1}}]}],
        "session_id": "s1", "custom_flag": True})
    message = request.input[0]
    assert message.text() == "hi"
    assert isinstance(message.content and message.content[1], DataContent)
    assert request.model_extra == {"custom_flag": True}
    assert request.stream is True and request.user_id is None


def test_a_request_without_input_names_the_missing_field() -> None:
    with pytest.raises(ValidationError) as info:
        AgentRequest.model_validate({"session_id": "s1"})
    assert info.value.errors()[0]["loc"] == ("input",)


def test_message_types_include_the_seeds_plugin_calls() -> None:
    call = Message(type=MessageType.PLUGIN_CALL, role="assistant",
                   content=[DataContent(data={"name": "run_ipython_cell", "call_id": "c1",
                                              "arguments": "{}"})])
    assert json.loads(call.model_dump_json())["type"] == "plugin_call"
