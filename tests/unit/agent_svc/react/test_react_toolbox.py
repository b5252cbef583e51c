"""The gateway's tools for the model: schemas, result text, listing cache, argument checks."""

from __future__ import annotations

from collections.abc import Mapping

from agent_svc.react.messages import ToolCall
from agent_svc.react.toolbox import MAX_OUTPUT_CHARS, GatewayTools, result_text, tool_schemas
from sandgate.sdk import (
    ImageBlock,
    ResourceBlock,
    TextBlock,
    ToolCallResult,
    ToolInfo,
    UnavailableError,
)
from sandgate.sdk.tools import ProgressCallback


def _tool(name: str, schema: dict[str, object] | None = None) -> ToolInfo:
    return ToolInfo(name=name, description=f"about {name}", input_schema=schema or {},
                    group="base", read_only=False)


def test_tools_become_function_schemas_with_names_chat_endpoints_accept() -> None:
    toolset = tool_schemas([
        _tool("run_shell_command", {"type": "object", "properties": {"command": {
            "type": "string"}}, "required": ["command"]}),
        _tool("docs.search/v2"), _tool("docs_search_v2"), _tool("x" * 80)])
    names = [s["function"]["name"] for s in toolset.schemas]
    assert names == ["run_shell_command", "docs_search_v2", "docs_search_v2_2", "x" * 64]
    assert toolset.schemas[0] == {"type": "function", "function": {
        "name": "run_shell_command", "description": "about run_shell_command",
        "parameters": {"type": "object", "properties": {"command": {"type": "string"}},
                       "required": ["command"]}}}
    assert toolset.schemas[1]["function"].get("parameters") == {"type": "object",
                                                                "properties": {}}
    assert toolset.tool_name("docs_search_v2") == "docs.search/v2"
    assert toolset.tool_name("docs_search_v2_2") == "docs_search_v2"
    assert toolset.tool_name("unknown") == "unknown"


def test_result_text_labels_blocks_describes_binaries_and_marks_errors() -> None:
    shell = ToolCallResult((TextBlock("a\nb\n", "stdout"), TextBlock("", "stderr"),
                            TextBlock("1", "returncode")), is_error=True)
    rich = ToolCallResult((TextBlock("plot"), ImageBlock(b"\x89PNG", "image/png", "display"),
                           ResourceBlock("file:///w/a.bin", "application/octet-stream",
                                         blob=b"123")))
    assert result_text(shell) == "Error:\nstdout:\na\nb\nreturncode: 1"
    assert result_text(rich) == (
        "plot\ndisplay: [image image/png, 4 bytes: shown to the user, not here]\n"
        "[resource file:///w/a.bin (application/octet-stream), 3 bytes]")
    assert result_text(ToolCallResult(())) == "(no output)"


def test_long_results_are_cut_visibly() -> None:
    text = result_text(ToolCallResult((TextBlock("x" * (MAX_OUTPUT_CHARS + 10)),)))
    assert text.endswith("[... 10 more characters not shown]")
    assert len(text) < MAX_OUTPUT_CHARS + 100


class FakeGateway:
    """Implements ToolClient: counts listings, records calls, can be down."""

    def __init__(self) -> None:
        self.listings = 0
        self.calls: list[tuple[str, Mapping[str, object] | None, str | None]] = []
        self.down = False

    async def list_tools(self, *, timeout: float = 30.0) -> list[ToolInfo]:
        self.listings += 1
        if self.down:
            raise UnavailableError("connection refused")
        return [_tool("a.b")]

    async def call_tool(self, name: str, arguments: Mapping[str, object] | None = None, *,
                        session: str | None = None, user: str | None = None,
                        on_progress: ProgressCallback | None = None,
                        timeout: float = 600.0) -> ToolCallResult:
        self.calls.append((name, arguments, session))
        if self.down:
            raise UnavailableError("connection refused")
        return ToolCallResult((TextBlock("ok"),))

    async def close(self) -> None:
        return None


async def test_a_listing_is_reused_until_its_ttl_passes() -> None:
    fake, now = FakeGateway(), [100.0]
    tools = GatewayTools(lambda: fake, ttl_s=30.0, call_timeout_s=5.0, clock=lambda: now[0])
    await tools.toolset()
    now[0] += 29.0
    await tools.toolset()
    assert fake.listings == 1
    now[0] += 2.0
    await tools.toolset()
    assert fake.listings == 2


async def test_calls_run_the_gateway_tool_in_the_session_and_failures_become_outcomes() -> None:
    fake = FakeGateway()
    tools = GatewayTools(lambda: fake, ttl_s=30.0, call_timeout_s=5.0)
    toolset = await tools.toolset()
    ok = await tools.call(ToolCall("c1", "a_b", '{"k": 1}'), toolset, session="s", user="u")
    empty = await tools.call(ToolCall("c2", "a_b", ""), toolset, session="s", user="u")
    assert not empty.is_error
    not_json = await tools.call(ToolCall("c3", "a_b", "{"), toolset, session="s", user="u")
    a_list = await tools.call(ToolCall("c4", "a_b", "[1]"), toolset, session="s", user="u")
    fake.down = True
    down = await tools.call(ToolCall("c5", "a_b", "{}"), toolset, session="s", user="u")
    assert (ok.output, ok.is_error) == ("ok", False)
    assert fake.calls[:2] == [("a.b", {"k": 1}, "s"), ("a.b", {}, "s")]
    assert not_json.is_error and "not valid JSON" in not_json.output
    assert a_list.is_error and "JSON object, not list" in a_list.output
    assert down.is_error and "connection refused" in down.output
    assert len(fake.calls) == 3
