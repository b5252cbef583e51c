"""Tools that read the page: snapshot, find, evaluate, console, network, media."""

from __future__ import annotations

import re
from typing import Literal, cast

from playwright.async_api import Error, Request

from ..args import Args
from ..context import ToolContext
from ..errors import BrowserArgumentError, BrowserToolError
from ..snapshot import capture, find_in_snapshot, locate
from ..tab import Tab

__all__ = [
    "console_messages",
    "emulate_media",
    "evaluate",
    "find",
    "network_request",
    "network_requests",
    "snapshot",
]

_LEVELS = ("error", "warning", "info", "debug")
_LEVEL_OF = {"error": 0, "assert": 0, "warning": 1, "debug": 3, "trace": 3}
_PARTS = ("request-headers", "request-body", "response-headers", "response-body")
_EVALUATE = """async (expr) => {
  const value = eval(`(${expr})`);
  const result = await (typeof value === 'function' ? value() : value);
  return JSON.stringify(result, null, 2) ?? 'undefined';
}"""
_EVALUATE_ON = """async (element, expr) => {
  const value = eval(`(${expr})`);
  const result = await (typeof value === 'function' ? value(element) : value);
  return JSON.stringify(result, null, 2) ?? 'undefined';
}"""
_TEXT_TYPES = ("text/", "json", "javascript", "xml", "html", "css", "csv", "x-www-form-urlencoded")


async def snapshot(ctx: ToolContext, args: Args) -> None:
    target = args.optional_target()
    depth = args.integer("depth")
    if depth is not None and depth < 0:
        raise BrowserArgumentError("browser_snapshot: 'depth' must be zero or more")
    tab = await ctx.tab()
    root = await locate(tab.page, target) if target else None
    ctx.want_snapshot(
        root=root, depth=depth, boxes=args.boolean("boxes"), filename=args.string("filename")
    )


async def find(ctx: ToolContext, args: Args) -> None:
    text, pattern = args.string("text"), args.string("regex")
    if bool(text) == bool(pattern):
        raise BrowserArgumentError("browser_find needs exactly one of 'text' or 'regex'")
    max_results = args.integer("maxResults")
    if max_results is not None and max_results <= 0:
        raise BrowserArgumentError("browser_find: 'maxResults' must be a positive whole number")
    if text:
        query, compiled = f'"{text}"', re.compile(re.escape(text), re.IGNORECASE)
    else:
        query, compiled = _compile_regex(cast(str, pattern))
    tab = await ctx.tab()
    snapshot_text = await capture(tab.page, timeout_ms=ctx.timeout_ms())
    body = find_in_snapshot(snapshot_text, compiled, max_results, query)
    await ctx.add_text_result("Find results", body, args.string("filename"))


def _compile_regex(source: str) -> tuple[str, re.Pattern[str]]:
    literal = re.fullmatch(r"/(.*)/([a-z]*)", source, re.DOTALL)
    pattern, flag_letters = (literal[1], literal[2]) if literal else (source, "")
    flags = 0
    for letter in flag_letters.replace("g", ""):
        flags |= {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}.get(letter, 0)
    try:
        return f"/{pattern}/{flag_letters}", re.compile(pattern, flags)
    except re.error as exc:
        raise BrowserArgumentError(f"browser_find: invalid regular expression: {exc}") from None


async def evaluate(ctx: ToolContext, args: Args) -> None:
    expression = args.required_string(
        "function", what="a JavaScript function such as () => document.title"
    )
    target = args.optional_target()
    tab = await ctx.tab()
    try:
        if target:
            locator = await locate(tab.page, target)
            finished, outcome = await tab.race_modal(
                locator.evaluate(_EVALUATE_ON, expression, timeout=ctx.action_timeout_ms())
            )
        else:
            finished, outcome = await tab.race_modal(tab.page.evaluate(_EVALUATE, expression))
    except Error as exc:
        message = (exc.message or str(exc)).strip()
        raise BrowserToolError(
            f"The script failed: {message.splitlines()[0] if message else exc}"
        ) from None
    if not finished:
        ctx.add_result("The script opened a dialog; it is waiting for browser_handle_dialog.")
        return
    await ctx.add_text_result("Evaluation result", str(outcome), args.string("filename"))


async def console_messages(ctx: ToolContext, args: Args) -> None:
    level = args.choice("level", _LEVELS) or "info"
    keep_all = args.boolean("all")
    tab = await ctx.tab()
    window: Literal["all", "since-navigation"] = "all" if keep_all else "since-navigation"
    lines = []
    errors = warnings = total = 0
    for message in await tab.page.console_messages(filter=window):
        total += 1
        rank = _LEVEL_OF.get(message.type, 2)
        errors += rank == 0
        warnings += rank == 1
        if rank <= _LEVELS.index(level):
            where = message.location
            lines.append(
                f"[{message.type.upper()}] {message.text} @ {where['url']}:{where['lineNumber']}"
            )
    for error in await tab.page.page_errors(filter=window):
        total += 1
        errors += 1
        lines.append(f"[ERROR] {error.stack or error.message}")
    header = [f"Total messages: {total} (Errors: {errors}, Warnings: {warnings})"]
    if len(lines) != total:
        header.append(f'Returning {len(lines)} messages for level "{level}"')
    await ctx.add_text_result("Console", "\n".join([*header, "", *lines]), args.string("filename"))


async def network_requests(ctx: ToolContext, args: Args) -> None:
    show_static = args.boolean("static")
    keep_all = args.boolean("all")
    pattern = args.string("filter")
    try:
        url_filter = re.compile(pattern) if pattern else None
    except re.error as exc:
        raise BrowserArgumentError(f"browser_network_requests: invalid 'filter': {exc}") from None
    tab = await ctx.tab()
    lines, hidden = [], 0
    for number, request in tab.requests:
        if not keep_all and number <= tab.navigation_number:
            continue
        if not show_static and not _is_fetch(request) and _succeeded(request):
            hidden += 1
            continue
        if url_filter and not url_filter.search(request.url):
            continue
        lines.append(f"{number}. {_request_line(request)}")
    if hidden:
        plural, them = ("", "it") if hidden == 1 else ("s", "them")
        option = '"static": true'
        lines.append(
            f"\nNote: {hidden} static request{plural} not shown; pass {option} to see {them}."
        )
    if not lines:
        lines.append("No requests since the page loaded.")
    await ctx.add_text_result("Network", "\n".join(lines), args.string("filename"))


async def network_request(ctx: ToolContext, args: Args) -> None:
    number = args.integer("index")
    if number is None or number < 1:
        raise BrowserArgumentError(
            "browser_network_request needs 'index': a request number from browser_network_requests"
        )
    part = args.choice("part", _PARTS)
    tab = await ctx.tab()
    request = _numbered(tab, number)
    response = request.existing_response
    filename = args.string("filename")
    if part == "request-headers":
        await ctx.add_text_result(
            "Request headers", _headers(await request.all_headers()), filename
        )
    elif part == "request-body":
        await ctx.add_text_result("Request body", request.post_data or "(no body)", filename)
    elif part == "response-headers":
        headers = _headers(await response.all_headers()) if response else "(no response)"
        await ctx.add_text_result("Response headers", headers, filename)
    elif part == "response-body":
        await _response_body(ctx, request, filename)
    else:
        await ctx.add_text_result("Request", await _details(number, request), filename)


def _numbered(tab: Tab, number: int) -> Request:
    for n, request in tab.requests:
        if n == number:
            return request
    raise BrowserToolError(
        f"Request #{number} is not known (it may be older than the ones kept); "
        "call browser_network_requests to see the numbers."
    )


async def _details(number: int, request: Request) -> str:
    response = request.existing_response
    lines = [f"#{number} [{request.method.upper()}] {request.url}", "", "  General"]
    if response:
        lines.append(f"    status:    [{response.status}] {response.status_text}")
    elif request.failure:
        lines.append(f"    status:    [FAILED] {request.failure}")
    lines.append(f"    type:      {request.resource_type}")
    for title, headers in (
        ("Request headers", await request.all_headers()),
        ("Response headers", await response.all_headers() if response else {}),
    ):
        if headers:
            lines += ["", f"  {title}", *(f"    {k}: {v}" for k, v in headers.items())]
    hints = []
    if request.post_data:
        hints.append(
            'Call browser_network_request with part="request-body" to read the request body.'
        )
    if response and response.status not in (204, 304) and response.status >= 200:
        hints.append(
            'Call browser_network_request with part="response-body" to read the response body.'
        )
    return "\n".join(lines + ([""] + hints if hints else []))


async def _response_body(ctx: ToolContext, request: Request, filename: str | None) -> None:
    response = request.existing_response
    if response is None:
        raise BrowserToolError("This request has no response (yet, or it failed).")
    try:
        body = await response.body()
    except Error as exc:
        raise BrowserToolError(f"The response body is not available: {exc.message}") from None
    content_type = (await response.all_headers()).get("content-type", "")
    if filename or not any(t in content_type for t in _TEXT_TYPES):
        if not filename:
            raise BrowserToolError(
                f"The body is binary ({content_type or 'unknown type'}, {len(body)} bytes); "
                "pass filename to save it into /workspace."
            )
        _, shown = await ctx.write_file(filename, body)
        ctx.add_result(f"- [Response body]({shown})")
        return
    await ctx.add_text_result("Response body", body.decode("utf-8", "replace"), None)


def _headers(headers: dict[str, str]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in headers.items()) or "(none)"


def _is_fetch(request: Request) -> bool:
    return request.resource_type in ("fetch", "xhr")


def _succeeded(request: Request) -> bool:
    if request.failure:
        return False
    response = request.existing_response
    return response is not None and response.status < 400


def _request_line(request: Request) -> str:
    url = request.url if len(request.url) <= 200 else request.url[:200] + "..."
    line = f"[{request.method.upper()}] {url}"
    response = request.existing_response
    if response:
        line += f" => [{response.status}] {response.status_text}"
    elif request.failure:
        line += f" => [FAILED] {request.failure}"
    return line


async def emulate_media(ctx: ToolContext, args: Args) -> None:
    features = {
        "colorScheme": ("color_scheme", ("light", "dark")),
        "reducedMotion": ("reduced_motion", ("reduce", "no-preference")),
        "forcedColors": ("forced_colors", ("active", "none")),
        "contrast": ("contrast", ("more", "no-preference")),
        "media": ("media", ("screen", "print")),
    }
    chosen: dict[str, str] = {}
    for name, (keyword, allowed) in features.items():
        if not args.has(name):
            continue
        value = args.string(name)
        if value is not None and value not in allowed:
            raise BrowserArgumentError(
                f"browser_emulate_media: {name} must be one of {allowed} or null"
            )
        chosen[keyword] = value if value is not None else "null"  # null clears the override
    if not chosen:
        raise BrowserArgumentError(
            "browser_emulate_media needs at least one of " + ", ".join(features)
        )
    tab = await ctx.tab()
    await tab.page.emulate_media(**chosen)  # type: ignore[arg-type]
    ctx.add_result("Emulating " + ", ".join(f"{k}={v}" for k, v in chosen.items()))
