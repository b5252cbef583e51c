"""The browser tools of Playwright MCP, in both generations the peers use.

sandboxd runs every one of them in the sandbox's Chromium (``BrowserAction``);
this group only lists them and passes each call through: the tool name, the
arguments as JSON, the call's time budget. The answer's text and images become
content blocks, its ``is_error`` the result's.

Both generations are served under one schema per name. AgentScope Runtime's
(Playwright MCP 0.0.25) calls an element ``ref`` where 0.0.83 says ``target``
(``startRef``/``endRef`` for ``startTarget``/``endTarget``), and has four
``browser_tab_*`` tools (tabs numbered from 1) where 0.0.83 has one
``browser_tabs(action)`` (tabs numbered from 0). A schema lists both
spellings; since JSON Schema cannot require one of two names without a
top-level ``anyOf`` (which some model APIs refuse), the group checks that
itself before calling.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from google.protobuf.duration_pb2 import Duration

from gateway.catalog import ToolSpec
from gateway.errors import ToolArgumentsError
from gateway.results import ContentBlock, ImageBlock, TextBlock, ToolResult
from gateway.sessions import SandboxHandle
from gateway.tools.handler import ToolHandler
from sandgate.sandbox.v1 import runtime_service_pb2 as rpb

__all__ = ["SPECS", "BrowserTools", "build_request", "check_references", "to_result"]

_DEFAULT_TIMEOUT_S = 30.0
_MIN_TIMEOUT_S = 0.1
_MAX_TIMEOUT_S = 300.0
_DEADLINE_SLACK_S = 15.0
"""sandboxd enforces the budget (and may take 2 s more to report the page); the gRPC
deadline is a backstop."""

_TIMEOUT = {
    "type": "number", "minimum": _MIN_TIMEOUT_S, "maximum": _MAX_TIMEOUT_S,
    "description": f"Seconds this call may take (default {_DEFAULT_TIMEOUT_S:g}, at most "
                   f"{_MAX_TIMEOUT_S:g}); raise it for slow pages.",
}
_ELEMENT = {"type": "string",
            "description": "Human-readable description of the element, for the log."}
_TARGET = {"type": "string",
           "description": "The element: its ref from the last browser_snapshot (for example "
                          "\"e12\"), or a CSS selector."}
_REF = {"type": "string", "description": "Older name of target (AgentScope Runtime)."}
_FILENAME = {"type": "string",
             "description": "Save the output to this file under /workspace instead of "
                            "returning it."}
_ELEMENT_ARGS = {"element": _ELEMENT, "target": _TARGET, "ref": _REF}
"""An element in both spellings, with its description for the log."""


def _media(*values: str) -> dict[str, Any]:
    return {"anyOf": [{"type": "string", "enum": list(values)}, {"type": "null"}],
            "description": f"One of {', '.join(values)}; null removes the override."}


def _spec(name: str, description: str, properties: Mapping[str, Any] | None = None,
          required: tuple[str, ...] = (), *, read_only: bool = False,
          destructive: bool = False) -> ToolSpec:
    return ToolSpec(name=name, description=description, group="browser",
                    input_schema={"type": "object",
                                  "properties": {**(properties or {}), "timeout": _TIMEOUT},
                                  "required": list(required)},
                    read_only=read_only, destructive=destructive)


_AFTER = " The result ends with the page's state and a fresh snapshot."
_TAB_INDEX_1 = {"type": "number", "minimum": 1,
                "description": "Tab number as browser_tab_list shows it, from 1."}

SPECS = (
    _spec("browser_navigate",
          "Open a URL in the current tab and wait for it to load. http, https and file URLs "
          "under /workspace work; host loopback, private and cloud metadata addresses are "
          "blocked unless the sandbox's template allows them." + _AFTER,
          {"url": {"type": "string", "minLength": 1, "description": "The address to open."}},
          ("url",)),
    _spec("browser_navigate_back", "Go back to the previous page of the current tab." + _AFTER),
    _spec("browser_navigate_forward", "Go forward to the next page of the current tab."
          + _AFTER),
    _spec("browser_snapshot",
          "Describe the current page as an accessibility tree in YAML, with a ref such as "
          "[ref=e5] on every element you can act on. Prefer this to a screenshot; take a "
          "new one whenever the page has changed before using refs.",
          {"target": {**_TARGET, "description": "Describe only this element's subtree."},
           "ref": _REF, "filename": _FILENAME,
           "depth": {"type": "number", "minimum": 0,
                     "description": "Show the tree only this many levels deep."},
           "boxes": {"type": "boolean",
                     "description": "Add each element's position and size."}},
          read_only=True),
    _spec("browser_click",
          "Click an element named by its ref from the last snapshot." + _AFTER,
          {**_ELEMENT_ARGS,
           "doubleClick": {"type": "boolean", "description": "Double-click instead."},
           "button": {"type": "string", "enum": ["left", "right", "middle"],
                      "description": "Mouse button (default left)."},
           "modifiers": {"type": "array",
                         "items": {"type": "string", "enum": ["Alt", "Control", "ControlOrMeta",
                                                              "Meta", "Shift"]},
                         "description": "Keys held down during the click."}}),
    _spec("browser_type",
          "Put text into an editable element (replacing what it held), optionally pressing "
          "Enter afterwards to submit." + _AFTER,
          {**_ELEMENT_ARGS,
           "text": {"type": "string", "description": "The text to enter."},
           "submit": {"type": "boolean", "description": "Press Enter afterwards."},
           "slowly": {"type": "boolean",
                      "description": "Type one key at a time, for pages that react to "
                                     "each keystroke."}},
          ("text",)),
    _spec("browser_hover", "Move the mouse over an element." + _AFTER, _ELEMENT_ARGS),
    _spec("browser_drag",
          "Drag one element and drop it onto another." + _AFTER,
          {"startElement": _ELEMENT,
           "startTarget": {**_TARGET, "description": "The element to drag (ref or selector)."},
           "startRef": {"type": "string", "description": "Older name of startTarget."},
           "endElement": _ELEMENT,
           "endTarget": {**_TARGET, "description": "The element to drop onto."},
           "endRef": {"type": "string", "description": "Older name of endTarget."}}),
    _spec("browser_select_option",
          "Choose options of a <select> element by value or label." + _AFTER,
          {**_ELEMENT_ARGS,
           "values": {"type": "array", "items": {"type": "string"},
                      "description": "The options to select."}},
          ("values",)),
    _spec("browser_press_key",
          "Press a key on the keyboard, such as Enter, ArrowDown, Escape, a character, or "
          "a combination like Shift+A." + _AFTER,
          {"key": {"type": "string", "minLength": 1, "description": "Key name or character."}},
          ("key",)),
    _spec("browser_fill_form",
          "Fill several form fields in one call: text boxes, checkboxes, radio buttons, "
          "combo boxes and sliders." + _AFTER,
          {"fields": {"type": "array", "items": {
              "type": "object",
              "properties": {
                  "element": _ELEMENT, "target": _TARGET, "ref": _REF,
                  "name": {"type": "string", "description": "The field's name, for the log."},
                  "type": {"type": "string",
                           "enum": ["textbox", "checkbox", "radio", "combobox", "slider"],
                           "description": "What kind of field it is."},
                  "value": {"type": "string",
                            "description": "Text to enter, \"true\"/\"false\" for checkboxes "
                                           "and radio buttons, or the option's label."}},
              "required": ["name", "type", "value"]},
              "description": "The fields to fill, in order."}},
          ("fields",)),
    _spec("browser_take_screenshot",
          "Capture the viewport, the full page or one element as an image. Use "
          "browser_snapshot to act on the page; screenshots are for looking at it.",
          {**_ELEMENT_ARGS,
           "type": {"type": "string", "enum": ["png", "jpeg", "webp"],
                    "description": "Image format (default png)."},
           "filename": _FILENAME,
           "fullPage": {"type": "boolean",
                        "description": "The whole scrollable page instead of the viewport."},
           "scale": {"type": "string", "enum": ["css", "device"], "default": "css",
                     "description": "One image pixel per CSS pixel, or per device pixel."},
           "raw": {"type": "boolean",
                   "description": "Older option (AgentScope Runtime); PNG is the default "
                                  "anyway."}}),
    _spec("browser_wait_for",
          "Wait for text to appear or disappear on the page, or for some seconds." + _AFTER,
          {"time": {"type": "number", "minimum": 0, "description": "Seconds to wait."},
           "text": {"type": "string", "description": "Text to wait for."},
           "textGone": {"type": "string", "description": "Text to wait to disappear."}},
          read_only=True),
    _spec("browser_resize", "Set the size of the browser viewport in CSS pixels.",
          {"width": {"type": "number", "minimum": 1, "description": "Width in pixels."},
           "height": {"type": "number", "minimum": 1, "description": "Height in pixels."}},
          ("width", "height")),
    _spec("browser_tabs",
          "List, open, select or close browser tabs (numbered from 0).",
          {"action": {"type": "string", "enum": ["list", "new", "close", "select"],
                      "description": "What to do."},
           "index": {"type": "number", "minimum": 0,
                     "description": "Tab to select or close (close: default the current "
                                    "one)."},
           "url": {"type": "string", "description": "Address to open in a new tab."}},
          ("action",)),
    _spec("browser_tab_list", "List the open tabs, numbered from 1.", read_only=True),
    _spec("browser_tab_new", "Open a new tab, optionally at a URL, and switch to it.",
          {"url": {"type": "string", "description": "Address to open in the new tab."}}),
    _spec("browser_tab_select", "Switch to a tab by its number (from 1).",
          {"index": _TAB_INDEX_1}, ("index",)),
    _spec("browser_tab_close", "Close a tab by its number (from 1), or the current tab.",
          {"index": _TAB_INDEX_1}),
    _spec("browser_console_messages",
          "The current page's console messages and uncaught errors.",
          {"level": {"type": "string", "enum": ["error", "warning", "info", "debug"],
                     "default": "info",
                     "description": "Least severe level to include (default info)."},
           "all": {"type": "boolean",
                   "description": "Include messages from before the last navigation."},
           "filename": _FILENAME},
          read_only=True),
    _spec("browser_network_requests",
          "The requests the current page made since it loaded, numbered, with their status.",
          {"static": {"type": "boolean", "default": False,
                      "description": "Include successful static resources (images, scripts, "
                                     "styles)."},
           "filter": {"type": "string",
                      "description": "Only requests whose URL matches this regular "
                                     "expression."},
           "filename": _FILENAME},
          read_only=True),
    _spec("browser_network_request",
          "Details of one request from browser_network_requests: headers or body of the "
          "request or its response.",
          {"index": {"type": "integer", "minimum": 1,
                     "description": "The request's number in browser_network_requests."},
           "part": {"type": "string", "enum": ["request-headers", "request-body",
                                               "response-headers", "response-body"],
                    "description": "Only this part (default: a summary)."},
           "filename": _FILENAME},
          ("index",), read_only=True),
    _spec("browser_handle_dialog",
          "Accept or dismiss the alert, confirm or prompt dialog the page opened." + _AFTER,
          {"accept": {"type": "boolean", "description": "Accept (true) or dismiss (false)."},
           "promptText": {"type": "string", "description": "Answer to a prompt dialog."}},
          ("accept",)),
    _spec("browser_file_upload",
          "Choose files for the file chooser the page has open (click the file input "
          "first). Without paths the chooser is cancelled." + _AFTER,
          {"paths": {"type": "array", "items": {"type": "string"},
                     "description": "Files under /workspace to upload."}}),
    _spec("browser_drop",
          "Drop files from /workspace or data onto an element, as if dragged from outside "
          "the page." + _AFTER,
          {**_ELEMENT_ARGS,
           "paths": {"type": "array", "items": {"type": "string"},
                     "description": "Files under /workspace to drop."},
           "data": {"type": "object", "additionalProperties": {"type": "string"},
                    "description": "MIME type -> data to drop, such as "
                                   "{\"text/plain\": \"hello\"}."}}),
    _spec("browser_find",
          "Find text or a regular expression in the page's accessibility tree; returns the "
          "matching lines with their refs.",
          {"text": {"type": "string", "description": "Text to look for (ignoring case)."},
           "regex": {"type": "string", "description": "Regular expression, such as "
                                                      "/total: \\d+/i."},
           "filename": _FILENAME},
          read_only=True),
    _spec("browser_evaluate",
          "Run a JavaScript function in the page (or on one element) and return its result "
          "as JSON.",
          {**_ELEMENT_ARGS,
           "function": {"type": "string",
                        "description": "For example () => document.title, or (element) => "
                                       "element.textContent with a target."},
           "filename": _FILENAME},
          ("function",), destructive=True),
    _spec("browser_emulate_media",
          "Emulate CSS media features, such as a dark color scheme or print media.",
          {"colorScheme": _media("light", "dark"),
           "reducedMotion": _media("reduce", "no-preference"),
           "forcedColors": _media("active", "none"),
           "contrast": _media("more", "no-preference"),
           "media": _media("screen", "print")}),
    _spec("browser_pdf_save", "Save the current page as a PDF file under /workspace.",
          {"filename": {"type": "string",
                        "description": "File name (default page-<time>.pdf)."}}),
    _spec("browser_close",
          "Close the browser and all its tabs; the next browser call starts a fresh one "
          "without cookies or history.", destructive=True),
)

_ONE_OF: dict[str, tuple[tuple[str, str, str], ...]] = {
    "browser_click": (("target", "ref", "the element to click"),),
    "browser_type": (("target", "ref", "the element to type into"),),
    "browser_hover": (("target", "ref", "the element to hover over"),),
    "browser_select_option": (("target", "ref", "the <select> element"),),
    "browser_drop": (("target", "ref", "the element to drop onto"),),
    "browser_drag": (("startTarget", "startRef", "the element to drag"),
                     ("endTarget", "endRef", "the element to drop it on")),
}
"""Tool -> (name, older name, what it names): one of each pair is required."""


_NAMES = frozenset(spec.name for spec in SPECS)


def check_references(tool: str, arguments: Mapping[str, Any]) -> None:
    """Check that each element a tool needs is named, in either spelling.

    Raises:
        ToolArgumentsError: one is missing; the message names both spellings.
    """
    for name, older, what in _ONE_OF.get(tool, ()):
        if not any(isinstance(arguments.get(n), str) and arguments[n].strip()
                   for n in (name, older)):
            raise ToolArgumentsError(
                f"invalid arguments for {tool}: {name} (or {older}) is required: {what}, as a "
                "ref from the last browser_snapshot (for example \"e12\") or a CSS selector")


def _duration(seconds: float) -> Duration:
    value = Duration()
    value.FromNanoseconds(int(seconds * 1e9))
    return value


def build_request(tool: str, arguments: Mapping[str, Any]) -> rpb.BrowserActionRequest:
    """The BrowserAction request of a call: ``timeout`` is the call's, not the tool's."""
    passed = {k: v for k, v in arguments.items() if k != "timeout"}
    timeout = float(arguments.get("timeout") or _DEFAULT_TIMEOUT_S)
    return rpb.BrowserActionRequest(tool=tool, arguments_json=json.dumps(passed),
                                    timeout=_duration(timeout))


def to_result(reply: rpb.BrowserActionResponse, *, sandbox_id: str,
              max_text: int) -> ToolResult:
    """sandboxd's answer as content blocks; text longer than ``max_text`` is cut."""
    blocks: list[ContentBlock] = []
    for block in reply.content:
        if block.WhichOneof("block") == "image":
            blocks.append(ImageBlock(block.image.data, block.image.mime_type or "image/png"))
            continue
        text = block.text
        if len(text) > max_text:
            text = (text[:max_text] + f"\n[... truncated: {len(text) - max_text} more "
                    "characters; pass filename to save the whole output into /workspace]")
        blocks.append(TextBlock(text))
    return ToolResult(tuple(blocks), is_error=reply.is_error, sandbox_id=sandbox_id)


class BrowserTools:
    """``browser`` group."""

    name = "browser"
    specs = SPECS

    def __init__(self, max_result_bytes: int) -> None:
        self._max_text = max_result_bytes

    def handler(self, name: str) -> ToolHandler:
        """The handler of one browser tool (they share one sandboxd RPC, BrowserAction).

        Raises:
            KeyError: the group has no such tool.
        """
        if name not in _NAMES:
            raise KeyError(name)

        async def run(arguments: Mapping[str, Any], sandbox: SandboxHandle | None
                      ) -> ToolResult:
            assert sandbox is not None
            check_references(name, arguments)
            request = build_request(name, arguments)
            reply = await sandbox.stub.BrowserAction(
                request, metadata=sandbox.metadata(),
                timeout=request.timeout.ToNanoseconds() / 1e9 + _DEADLINE_SLACK_S)
            return to_result(reply, sandbox_id=sandbox.sandbox_id, max_text=self._max_text)

        return run
