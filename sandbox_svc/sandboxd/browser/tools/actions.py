"""Tools that act on elements by ref: click, type, drag, forms, dialogs, files."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

from playwright.async_api import Error

from ..args import Args
from ..context import ToolContext
from ..errors import BrowserArgumentError, BrowserToolError
from ..snapshot import locate

if TYPE_CHECKING:
    from playwright._impl._api_structures import DropPayload

__all__ = [
    "click",
    "drag",
    "drop",
    "file_upload",
    "fill_form",
    "handle_dialog",
    "hover",
    "press_key",
    "select_option",
    "type_text",
]

Modifier = Literal["Alt", "Control", "ControlOrMeta", "Meta", "Shift"]
_MODIFIERS = ("Alt", "Control", "ControlOrMeta", "Meta", "Shift")
_FIELD_TYPES = ("textbox", "checkbox", "radio", "combobox", "slider")


async def click(ctx: ToolContext, args: Args) -> None:
    target = args.target(what="the element to click")
    double = args.boolean("doubleClick")
    button = cast(
        Literal["left", "middle", "right"], args.choice("button", ("left", "right", "middle"))
    )
    modifiers = args.string_list("modifiers") or []
    unknown = [m for m in modifiers if m not in _MODIFIERS]
    if unknown:
        raise BrowserArgumentError(
            f"browser_click: unknown modifiers {unknown}; allowed: {', '.join(_MODIFIERS)}"
        )
    tab = await ctx.tab()
    locator = await locate(tab.page, target)
    keys = cast(list[Modifier], modifiers) or None
    timeout = ctx.action_timeout_ms()
    if double:
        await ctx.act(tab, lambda: locator.dblclick(button=button, modifiers=keys, timeout=timeout))
    else:
        await ctx.act(tab, lambda: locator.click(button=button, modifiers=keys, timeout=timeout))
    ctx.add_result(f"{'Double-clicked' if double else 'Clicked'} {_name(args, target)}")
    ctx.want_snapshot()


async def type_text(ctx: ToolContext, args: Args) -> None:
    target = args.target(what="the editable element to type into")
    text = args.required_string("text", what="the text to type")
    submit, slowly = args.boolean("submit"), args.boolean("slowly")
    tab = await ctx.tab()
    locator = await locate(tab.page, target)
    timeout = ctx.action_timeout_ms()

    async def typing() -> None:
        if slowly:
            await locator.press_sequentially(text, timeout=timeout)
        else:
            await locator.fill(text, timeout=timeout)
        if submit:
            await locator.press("Enter", timeout=timeout)

    await ctx.act(tab, typing)
    how = "Typed" if slowly else "Filled"
    ctx.add_result(
        f"{how} {text!r} into {_name(args, target)}" + (" and pressed Enter" if submit else "")
    )
    ctx.want_snapshot()


async def hover(ctx: ToolContext, args: Args) -> None:
    target = args.target(what="the element to hover over")
    tab = await ctx.tab()
    locator = await locate(tab.page, target)
    await ctx.act(tab, lambda: locator.hover(timeout=ctx.action_timeout_ms()))
    ctx.add_result(f"Hovered over {_name(args, target)}")
    ctx.want_snapshot()


async def drag(ctx: ToolContext, args: Args) -> None:
    start = args.target("startTarget", "startRef", what="the element to drag")
    end = args.target("endTarget", "endRef", what="the element to drop it on")
    tab = await ctx.tab()
    source = await locate(tab.page, start)
    destination = await locate(tab.page, end)
    await ctx.act(tab, lambda: source.drag_to(destination, timeout=ctx.action_timeout_ms()))
    start_name = args.string("startElement") or start
    end_name = args.string("endElement") or end
    ctx.add_result(f"Dragged {start_name} onto {end_name}")
    ctx.want_snapshot()


async def select_option(ctx: ToolContext, args: Args) -> None:
    target = args.target(what="the <select> element")
    values = args.string_list("values")
    if values is None:
        raise BrowserArgumentError("browser_select_option needs 'values': the options to select")
    tab = await ctx.tab()
    locator = await locate(tab.page, target)
    await ctx.act(tab, lambda: locator.select_option(values, timeout=ctx.action_timeout_ms()))
    ctx.add_result(f"Selected {values} in {_name(args, target)}")
    ctx.want_snapshot()


async def press_key(ctx: ToolContext, args: Args) -> None:
    key = args.required_string("key", what="a key name such as Enter or ArrowLeft, or a character")
    tab = await ctx.tab()
    try:
        await ctx.act(tab, lambda: tab.page.keyboard.press(key))
    except Error as exc:
        if "Unknown key" in (exc.message or ""):
            raise BrowserToolError(
                f"Unknown key {key!r}; use names such as Enter, Tab, ArrowDown, Escape, "
                "Backspace, PageDown, F5, or one character, with modifiers as Shift+A"
            ) from None
        raise
    ctx.add_result(f"Pressed {key}")
    ctx.want_snapshot()


async def fill_form(ctx: ToolContext, args: Args) -> None:
    fields = args.objects("fields")
    if not fields:
        raise BrowserArgumentError("browser_fill_form needs at least one field in 'fields'")
    plans = []
    for field in fields:
        kind = field.choice("type", _FIELD_TYPES)
        if kind is None:
            raise BrowserArgumentError(
                f"{field.tool}: 'type' is required ({', '.join(_FIELD_TYPES)})"
            )
        value = field.required_string("value", what="the value to set")
        name = field.string("name", "element")
        plans.append((field.target(what="the field"), kind, value, name))
    tab = await ctx.tab()
    filled = []
    for target, kind, value, name in plans:
        locator = await locate(tab.page, target)
        timeout = ctx.action_timeout_ms()
        if kind in ("textbox", "slider"):
            await ctx.act(tab, partial(locator.fill, value, timeout=timeout))
        elif kind in ("checkbox", "radio"):
            checked = value.strip().lower() == "true"
            await ctx.act(tab, partial(locator.set_checked, checked, timeout=timeout))
        else:
            await ctx.act(tab, partial(locator.select_option, label=value, timeout=timeout))
        filled.append(f"- {name or target}: {value}")
    ctx.add_result("Filled the form:\n" + "\n".join(filled))
    ctx.want_snapshot()


async def handle_dialog(ctx: ToolContext, args: Args) -> None:
    if not args.has("accept"):
        raise BrowserArgumentError("browser_handle_dialog needs 'accept': true or false")
    accept = args.boolean("accept")
    prompt = args.string("promptText")
    tab = await ctx.tab()
    dialog = tab.take_dialog()
    if dialog is None:
        raise BrowserToolError("No dialog is open on the current tab; there is nothing to handle.")
    kind, message = dialog.type, dialog.message
    try:
        if accept:
            await ctx.act(
                tab, lambda: dialog.accept(prompt) if prompt is not None else dialog.accept()
            )
        else:
            await ctx.act(tab, dialog.dismiss)
    except Error as exc:
        raise BrowserToolError(
            f"The dialog could not be handled (it may have closed): {exc.message}"
        ) from None
    ctx.add_result(f'{"Accepted" if accept else "Dismissed"} the "{kind}" dialog "{message}"')
    ctx.want_snapshot()


async def file_upload(ctx: ToolContext, args: Args) -> None:
    paths = args.string_list("paths")
    tab = await ctx.tab()
    chooser = tab.take_file_chooser()
    if chooser is None:
        raise BrowserToolError(
            "No file chooser is open; click the file input (or the button that opens it) "
            "first, then call browser_file_upload."
        )
    try:
        files = [await ctx.input_file(p) for p in paths or []]
    except BrowserToolError:
        tab.restore_file_chooser(chooser)
        raise
    if not files:
        ctx.add_result("Cancelled the file chooser (no paths given)")
        ctx.want_snapshot()
        return
    await ctx.act(tab, lambda: chooser.set_files(files, timeout=ctx.action_timeout_ms()))
    shown = ", ".join(ctx.workspace.display(f) for f in files)
    ctx.add_result(f"Uploaded {shown}")
    ctx.want_snapshot()


async def drop(ctx: ToolContext, args: Args) -> None:
    target = args.target(what="the element to drop onto")
    paths = args.string_list("paths") or []
    data = args.string_map("data")
    if not paths and not data:
        raise BrowserArgumentError("browser_drop needs 'paths' (files under /workspace) or 'data'")
    files: list[Path] = [await ctx.input_file(p) for p in paths]
    tab = await ctx.tab()
    locator = await locate(tab.page, target)
    payload: DropPayload = {}
    if files:
        payload["files"] = list(files)
    if data:
        payload["data"] = data
    await ctx.act(tab, lambda: locator.drop(payload, timeout=ctx.action_timeout_ms()))
    what = ", ".join([ctx.workspace.display(f) for f in files] + sorted(data or {}))
    ctx.add_result(f"Dropped {what} onto {_name(args, target)}")
    ctx.want_snapshot()


def _name(args: Args, target: str) -> str:
    element = args.string("element")
    return f"{element} ({target})" if element else target
