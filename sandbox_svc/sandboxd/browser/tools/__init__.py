"""The browser tools by name, in both Playwright MCP generations.

0.0.25 (AgentScope Runtime) and 0.0.83 share most names; their element
argument is ``ref`` and ``target`` respectively (both accepted everywhere),
and 0.0.25's four ``browser_tab_*`` tools (tabs numbered from 1) are 0.0.83's
``browser_tabs(action)`` (tabs numbered from 0). ``browser_close`` is handled
by the session itself: it ends the browser rather than acting in it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..args import Args
from ..context import ToolContext
from . import actions, capture, inspection, navigation

__all__ = ["CLOSE_TOOL", "TOOLS", "ToolHandler"]

ToolHandler = Callable[[ToolContext, Args], Awaitable[None]]

CLOSE_TOOL = "browser_close"

TOOLS: dict[str, ToolHandler] = {
    "browser_navigate": navigation.navigate,
    "browser_navigate_back": navigation.navigate_back,
    "browser_navigate_forward": navigation.navigate_forward,
    "browser_wait_for": navigation.wait_for,
    "browser_resize": navigation.resize,
    "browser_tabs": navigation.tabs,
    "browser_tab_list": navigation.tab_list,
    "browser_tab_new": navigation.tab_new,
    "browser_tab_select": navigation.tab_select,
    "browser_tab_close": navigation.tab_close,
    "browser_click": actions.click,
    "browser_type": actions.type_text,
    "browser_hover": actions.hover,
    "browser_drag": actions.drag,
    "browser_select_option": actions.select_option,
    "browser_press_key": actions.press_key,
    "browser_fill_form": actions.fill_form,
    "browser_handle_dialog": actions.handle_dialog,
    "browser_file_upload": actions.file_upload,
    "browser_drop": actions.drop,
    "browser_snapshot": inspection.snapshot,
    "browser_find": inspection.find,
    "browser_evaluate": inspection.evaluate,
    "browser_console_messages": inspection.console_messages,
    "browser_network_requests": inspection.network_requests,
    "browser_network_request": inspection.network_request,
    "browser_emulate_media": inspection.emulate_media,
    "browser_take_screenshot": capture.take_screenshot,
    "browser_pdf_save": capture.pdf_save,
}
