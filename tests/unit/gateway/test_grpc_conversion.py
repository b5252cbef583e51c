"""The gRPC face's conversion of tools and results to protos."""

from __future__ import annotations

from gateway.grpc_server import to_proto_result, to_proto_tool
from gateway.results import ImageBlock, ResourceBlock, TextBlock, ToolResult
from gateway.tools import default_groups
from sandgate.gateway.v1 import gateway_service_pb2 as pb


def test_results_keep_labels_raw_image_bytes_and_notes_first() -> None:
    result = ToolResult((TextBlock("out", "stdout"), ImageBlock(b"\x89PNG", "image/png"),
                         ResourceBlock("file:///w/a", "text/plain", text="a")),
                        is_error=True, sandbox_id="sbx-2", structured={"n": 1}).with_note("n.b.")
    message = to_proto_result(result)
    assert [b.WhichOneof("block") for b in message.content] == ["text", "text", "image",
                                                               "resource"]
    assert (message.content[1].label, message.content[1].text.text) == ("stdout", "out")
    assert message.content[2].image.data == b"\x89PNG"
    assert message.content[3].resource.text == "a"
    assert message.is_error and message.sandbox_id == "sbx-2"
    assert message.structured_content["n"] == 1


def test_tools_carry_their_schema_source_and_group() -> None:
    spec = next(s for g in default_groups(1024) for s in g.specs if s.name == "edit_file")
    tool = to_proto_tool(spec)
    assert tool.source == pb.TOOL_SOURCE_SANDBOX and tool.group == "filesystem"
    assert list(tool.input_schema["required"]) == ["path", "edits"]
