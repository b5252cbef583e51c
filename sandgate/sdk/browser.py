"""``sbx.browser``: Playwright-MCP-style browser tools of a browser sandbox."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sandgate.sandbox.v1 import runtime_service_pb2 as rpb
from sandgate.sandbox.v1 import runtime_service_pb2_grpc as rpb_grpc
from sandgate.sdk.deadlines import duration, work_deadline
from sandgate.sdk.errors import translated

__all__ = ["Browser", "BrowserResult"]


@dataclass(frozen=True)
class BrowserResult:
    text: str
    """What happened, then the page state (URL, title, snapshot with refs)."""
    images: list[tuple[str, bytes]] = field(default_factory=list)
    """(mime type, bytes) of screenshots."""
    is_error: bool = False


class Browser:
    """Browser tools of one browser sandbox."""

    def __init__(self, stub: rpb_grpc.SandboxRuntimeStub,
                 metadata: tuple[tuple[str, str], ...]) -> None:
        self._stub = stub
        self._metadata = metadata

    async def call(self, tool: str, arguments: dict[str, object] | None = None, *,
                   timeout: float | None = None) -> BrowserResult:
        """Run one browser tool, e.g. ``call("browser_navigate", {"url": ...})``.

        Args:
            tool: a Playwright MCP tool name.
            arguments: its arguments.
            timeout: seconds the sandbox gives the action (None: its default); the
                call's own deadline is this plus a slack.

        Raises:
            InvalidArgumentError: unknown tool or bad arguments.
            UnavailableError: this sandbox cannot start a browser.
            SandgateError: another failure of the call.
        """
        request = rpb.BrowserActionRequest(tool=tool, arguments_json=json.dumps(arguments or {}))
        if timeout is not None:
            request.timeout.CopyFrom(duration(timeout))
        reply = await translated(lambda: self._stub.BrowserAction(
            request, metadata=self._metadata, timeout=work_deadline(timeout)))
        texts = [block.text for block in reply.content if block.WhichOneof("block") == "text"]
        images = [(block.image.mime_type, block.image.data) for block in reply.content
                  if block.WhichOneof("block") == "image"]
        return BrowserResult("\n".join(texts), images, reply.is_error)
