"""The MCP face: session keys from headers, results as MCP content, the server in-memory."""

from __future__ import annotations

import base64

import anyio
import mcp_types as types
import pytest
from gateway_fakes import FakeControl, build_calls, caller
from mcp import Client
from mcp.shared.exceptions import MCPError

from gateway.calls import Caller
from gateway.errors import SessionKeyError
from gateway.mcp_server import SANDBOX_META, Context, build_mcp_server, session_for, to_mcp_result
from gateway.results import ImageBlock, ResourceBlock, TextBlock, ToolResult
from sandgate.service.keys import Principal

KEYED = Principal("acme", "abc123")


def test_the_explicit_session_header_wins_over_the_legacy_session_id() -> None:
    key = session_for(KEYED, {"x-sandgate-session": "chat-7", "mcp-session-id": "f00",
                              "x-sandgate-user": "ada"})
    assert (key.tenant, key.user_id, key.session_id) == ("acme", "ada", "chat-7")


def test_a_legacy_session_id_is_used_only_as_a_digest() -> None:
    key = session_for(KEYED, {"mcp-session-id": "4d760f29d9e64f44b0e7a7ce743e7cda"})
    assert key.session_id.startswith("mcp-") and "4d760f29" not in key.session_id
    assert key == session_for(KEYED, {"mcp-session-id": "4d760f29d9e64f44b0e7a7ce743e7cda"})


def test_without_headers_the_session_is_the_principals() -> None:
    assert session_for(KEYED, {}).session_id == "key-abc123"
    assert session_for(Principal("default"), {}).session_id == "local"


def test_a_malformed_session_header_is_refused() -> None:
    with pytest.raises(SessionKeyError, match="X-Sandgate-Session"):
        session_for(KEYED, {"x-sandgate-session": "two words"})


def test_results_become_labelled_mcp_content_with_the_sandbox_in_meta() -> None:
    result = ToolResult((TextBlock("hi\n", "stdout"), ImageBlock(b"\x89PNG", "image/png"),
                         ResourceBlock("file:///w/a.wav", "audio/wav", blob=b"RIFF"),
                         ResourceBlock("file:///w/a.bin", "application/octet-stream",
                                       blob=b"\x00")),
                        is_error=True, sandbox_id="sbx-9").with_note("fresh sandbox")
    mcp = to_mcp_result(result)
    note, text, image, audio, blob = mcp.content
    assert isinstance(note, types.TextContent) and note.text == "fresh sandbox"
    assert isinstance(text, types.TextContent) and text.meta == {"sandgate/label": "stdout"}
    assert isinstance(image, types.ImageContent) and base64.b64decode(image.data) == b"\x89PNG"
    assert isinstance(audio, types.AudioContent) and audio.mime_type == "audio/wav"
    assert isinstance(blob, types.EmbeddedResource)
    assert mcp.is_error and mcp.meta == {SANDBOX_META: "sbx-9"}


class _Resolver:
    """A fixed caller, as the stdio face has."""

    def __init__(self, who: Caller) -> None:
        self._caller = who

    def principal(self, ctx: Context) -> Principal:
        return self._caller.principal

    def caller(self, ctx: Context) -> Caller:
        return self._caller


async def test_the_server_lists_and_calls_tools_in_memory() -> None:
    calls, _, _ = build_calls()
    server = build_mcp_server(calls, _Resolver(caller()), version="test")
    async with Client(server) as client:
        with anyio.fail_after(5):
            tools = {t.name: t for t in (await client.list_tools()).tools}
            result = await client.call_tool("echo", {"text": "hello"})
    assert tools["echo"].input_schema["required"] == ["text"]
    assert tools["sandbox_release"].annotations is not None
    assert tools["sandbox_release"].annotations.destructive_hint is True
    assert not result.is_error
    assert isinstance(result.content[0], types.TextContent)
    assert result.content[0].text == "hello in sbx-1"


async def test_a_misconfigured_gateway_answers_a_protocol_error() -> None:
    calls, _, _ = build_calls(FakeControl(templates=["other"]))
    server = build_mcp_server(calls, _Resolver(caller()), version="test")
    async with Client(server) as client:
        with anyio.fail_after(5), pytest.raises(MCPError) as raised:
            await client.call_tool("echo", {"text": "hello"})
    assert raised.value.code == types.INTERNAL_ERROR
    assert "misconfigured" in raised.value.message
