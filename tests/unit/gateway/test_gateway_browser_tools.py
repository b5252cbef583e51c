"""The browser group: its schemas, argument handling, and a call through to BrowserAction.

(Not named test_browser_tools.py: tests/integration/sandboxd has a module of that
name, and neither directory is a package.)

Calls go to a fake sandboxd: a real gRPC server in this process that records the
BrowserAction requests it gets and answers as told.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import grpc
import jsonschema
import mcp_types as types
import pytest
from gateway_fakes import FakeControl, caller

from gateway.audit import AuditLog
from gateway.calls import ToolCalls, release_tool_spec
from gateway.catalog import Catalog
from gateway.errors import ToolArgumentsError
from gateway.federation import Federation
from gateway.mcp_server import to_mcp_result
from gateway.results import ImageBlock, TextBlock
from gateway.sessions import Lease, SessionBinder, SessionKey
from gateway.telemetry import GatewayMetrics, tracer_for
from gateway.tools import default_groups
from gateway.tools.browser import SPECS, BrowserTools, build_request, check_references, to_result
from sandgate.sandbox.v1 import runtime_service_pb2 as rpb
from sandgate.sandbox.v1 import runtime_service_pb2_grpc as rpb_grpc

PEERS = (Path(__file__).resolve().parents[2] / "fixtures" / "peers"
         / "playwright-mcp-0.0.83.tools.json")
OLD_GENERATION = {"browser_navigate_forward", "browser_pdf_save", "browser_tab_list",
                  "browser_tab_new", "browser_tab_select", "browser_tab_close"}
BY_NAME = {s.name: s for s in SPECS}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def test_every_tool_of_both_generations_is_in_the_browser_group() -> None:
    peers = {t["name"] for t in json.loads(PEERS.read_text())} - {"browser_run_code_unsafe"}
    assert peers | OLD_GENERATION == set(BY_NAME)
    assert all(s.group == "browser" and s.description for s in SPECS)
    assert "browser" in {g.name for g in default_groups(1024)}


def test_schemas_are_valid_and_keep_combinators_out_of_the_top_level() -> None:
    for spec in SPECS:
        jsonschema.Draft202012Validator.check_schema(spec.input_schema)
        assert spec.input_schema["type"] == "object"
        assert not {"anyOf", "oneOf", "allOf"} & set(spec.input_schema), spec.name


@pytest.mark.parametrize("tool,arguments", [
    ("browser_click", {"element": "Send button", "ref": "e3"}),
    ("browser_click", {"target": "e3", "doubleClick": True, "button": "right"}),
    ("browser_take_screenshot", {"raw": True, "element": "logo", "ref": "e1"}),
    ("browser_take_screenshot", {"target": "e1", "type": "jpeg", "scale": "device"}),
    ("browser_drag", {"startRef": "e1", "endTarget": "e2"}),
    ("browser_console_messages", {}),
    ("browser_network_requests", {}),
    ("browser_tab_select", {"index": 2}),
    ("browser_tabs", {"action": "select", "index": 0}),
    ("browser_emulate_media", {"colorScheme": None, "media": "print"}),
])
def test_both_generations_spellings_pass_the_catalogs_checks(
        tool: str, arguments: dict[str, object]) -> None:
    catalog = Catalog(SPECS, {"browser": "browser"})
    spec = catalog.resolve("acme", tool)
    catalog.check_arguments(spec, arguments)
    check_references(tool, arguments)


@pytest.mark.parametrize("tool,arguments,missing", [
    ("browser_click", {"element": "Send button"}, "target (or ref)"),
    ("browser_type", {"ref": "  ", "text": "x"}, "target (or ref)"),
    ("browser_drag", {"startTarget": "e1"}, "endTarget (or endRef)"),
])
def test_an_element_named_in_neither_spelling_is_refused_naming_both(
        tool: str, arguments: dict[str, object], missing: str) -> None:
    with pytest.raises(ToolArgumentsError) as raised:
        check_references(tool, arguments)
    assert missing in str(raised.value)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_a_bad_argument_type_is_refused_by_the_catalog() -> None:
    catalog = Catalog(SPECS, {"browser": "browser"})
    with pytest.raises(ToolArgumentsError, match="action"):
        catalog.check_arguments(BY_NAME["browser_tabs"], {"action": "reload"})
    with pytest.raises(ToolArgumentsError, match="timeout"):
        catalog.check_arguments(BY_NAME["browser_navigate"], {"url": "x", "timeout": 0})


def test_the_request_carries_the_tool_its_arguments_as_json_and_the_calls_timeout() -> None:
    request = build_request("browser_navigate", {"url": "http://x/", "timeout": 12.5})
    assert request.tool == "browser_navigate"
    assert json.loads(request.arguments_json) == {"url": "http://x/"}
    assert request.timeout.ToNanoseconds() == 12_500_000_000
    assert build_request("browser_snapshot", {}).timeout.seconds == 30


def test_the_answer_becomes_text_and_image_blocks_with_long_text_cut() -> None:
    reply = rpb.BrowserActionResponse(is_error=True, content=[
        rpb.BrowserContent(text="x" * 50),
        rpb.BrowserContent(image=rpb.BrowserImage(data=PNG, mime_type="image/png"))])
    result = to_result(reply, sandbox_id="sbx-1", max_text=10)
    text, image = result.content
    assert isinstance(text, TextBlock) and text.text.startswith("x" * 10 + "\n[... truncated")
    assert image == ImageBlock(PNG, "image/png")
    assert result.is_error and result.sandbox_id == "sbx-1"


class FakeSandboxd(rpb_grpc.SandboxRuntimeServicer):
    """Answers BrowserAction with a text and a screenshot; ``bad`` URLs are refused."""

    def __init__(self) -> None:
        self.requests: list[rpb.BrowserActionRequest] = []
        self.metadata: list[dict[str, str]] = []

    async def BrowserAction(self, request: rpb.BrowserActionRequest,
                            context: grpc.aio.ServicerContext[object, object]
                            ) -> rpb.BrowserActionResponse:
        self.requests.append(request)
        self.metadata.append({k: str(v) for k, v in context.invocation_metadata() or ()})
        if json.loads(request.arguments_json).get("url") == "bad":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "url is not a URL")
        return rpb.BrowserActionResponse(content=[
            rpb.BrowserContent(text=f"### Result\nran {request.tool}"),
            rpb.BrowserContent(image=rpb.BrowserImage(data=PNG, mime_type="image/png"))])


class Control(FakeControl):
    def __init__(self, target: str) -> None:
        super().__init__(("filesystem", "browser"))
        self.target = target

    async def acquire(self, key: SessionKey, template: str) -> Lease:
        lease = await super().acquire(key, template)
        return Lease(lease.sandbox_id, self.target, "token")


@pytest.fixture
async def sandboxd() -> AsyncIterator[tuple[FakeSandboxd, str]]:
    fake = FakeSandboxd()
    server = grpc.aio.server()
    rpb_grpc.add_SandboxRuntimeServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield fake, f"127.0.0.1:{port}"
    await server.stop(0)


def _calls(control: Control) -> ToolCalls:
    tools = BrowserTools(1024 * 1024)
    metrics = GatewayMetrics()
    return ToolCalls(Catalog(tools.specs, {"browser": "browser"}, [release_tool_spec()]),
                     {"browser": tools}, SessionBinder(control, idle_s=60.0, metrics=metrics),
                     Federation([]), AuditLog(), metrics, tracer_for(None))


async def test_a_call_runs_as_browser_action_in_the_sessions_browser_sandbox(
        sandboxd: tuple[FakeSandboxd, str]) -> None:
    fake, target = sandboxd
    control = Control(target)
    calls = _calls(control)
    try:
        with anyio.fail_after(5):
            result = await calls.call(caller(), "browser_click", {"ref": "e3", "timeout": 5})
        mcp = to_mcp_result(result)
    finally:
        await calls.binder.close()
    assert [template for _, template in control.acquired] == ["browser"]
    (request,) = fake.requests
    assert (request.tool, json.loads(request.arguments_json)) == ("browser_click", {"ref": "e3"})
    assert request.timeout.seconds == 5
    assert fake.metadata[0]["authorization"] == "Bearer token"
    assert not mcp.is_error
    text, image = mcp.content
    assert isinstance(text, types.TextContent) and text.text.endswith("ran browser_click")
    assert isinstance(image, types.ImageContent) and image.mime_type == "image/png"
    assert base64.b64decode(image.data) == PNG


async def test_arguments_sandboxd_refuses_become_an_error_result(
        sandboxd: tuple[FakeSandboxd, str]) -> None:
    fake, target = sandboxd
    calls = _calls(Control(target))
    try:
        with anyio.fail_after(5):
            refused = await calls.call(caller(), "browser_navigate", {"url": "bad"})
            unnamed = await calls.call(caller(), "browser_hover", {"element": "menu"})
    finally:
        await calls.binder.close()
    assert refused.is_error and "url is not a URL" in refused.text
    assert unnamed.is_error and "target (or ref)" in unnamed.text
    assert len(fake.requests) == 1  # the unnamed element never reached sandboxd
