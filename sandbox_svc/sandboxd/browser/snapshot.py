"""Accessibility snapshots with refs, and resolving a ref back to its element.

Snapshots come from Playwright's own ``aria_snapshot(mode="ai")``: YAML with
``[ref=eN]`` on every element an agent can act on (``fNeM`` inside iframes).
Playwright keeps, per frame, the last snapshot taken, and its ``aria-ref=``
selector engine resolves refs against that snapshot only, so a ref from an
older snapshot whose element is gone (or a ref from before a navigation)
matches nothing. An element that survives keeps its ref from one snapshot to
the next. ``locate`` checks a ref before acting on it, so a stale ref fails at
once with a message asking for a new snapshot instead of waiting for a timeout.
"""

from __future__ import annotations

import re

from playwright.async_api import Error, Locator, Page

from .errors import BrowserToolError, StaleRefError

__all__ = ["REF_PATTERN", "capture", "find_in_snapshot", "locate", "truncate"]

REF_PATTERN = re.compile(r"^(?:f\d+)?e\d+$")
_EMBEDDED_REF = re.compile(r"\[ref=((?:f\d+)?e\d+)\]")
_CONTEXT_LINES = 3


async def capture(
    page: Page,
    *,
    root: Locator | None = None,
    depth: int | None = None,
    boxes: bool = False,
    timeout_ms: float,
) -> str:
    """The page's (or ``root``'s) snapshot; it becomes the one refs resolve against."""
    if root is not None:
        return await root.aria_snapshot(
            mode="ai", depth=depth, boxes=boxes or None, timeout=timeout_ms
        )
    return await page.aria_snapshot(mode="ai", depth=depth, boxes=boxes or None, timeout=timeout_ms)


async def locate(page: Page, target: str) -> Locator:
    """The element a ref (or, failing that, a selector) names on ``page``.

    Raises:
        StaleRefError: a ref that is not in the page's last snapshot.
        BrowserToolError: a selector that matches no element, or several.
    """
    if REF_PATTERN.match(target):
        locator = page.get_by_ref(target)
        try:
            found = await locator.count()
        except Error:  # "invalid frame": the ref's frame is gone since the snapshot
            found = 0
        if found == 0:
            raise StaleRefError(target)
        return locator
    embedded = _EMBEDDED_REF.search(target)
    if embedded:
        raise BrowserToolError(
            f'"{target}" is not a target. To use the element with [ref={embedded[1]}] '
            f'from the page snapshot, pass "{embedded[1]}".'
        )
    try:
        locator = page.locator(target)
        count = await locator.count()
    except Error as exc:
        raise BrowserToolError(
            f'"{target}" is neither a ref from the page snapshot (such as "e5") nor a valid '
            f"selector: {_first_line(exc)}"
        ) from None
    if count == 0:
        raise BrowserToolError(
            f'"{target}" does not match any element. Use a ref from the last browser_snapshot '
            '(such as "e5") or a CSS selector that matches one element.'
        )
    if count > 1:
        raise BrowserToolError(
            f'"{target}" matches {count} elements; use a ref from the last browser_snapshot '
            "or a selector that matches exactly one."
        )
    return locator


def truncate(text: str, limit: int, hint: str) -> str:
    """Cut ``text`` to ``limit`` characters, with a visible marker saying what to do."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n... [truncated: {len(text) - limit} more characters; {hint}]"


def find_in_snapshot(
    snapshot: str, matches: re.Pattern[str], max_results: int | None, query: str
) -> str:
    """Matching snapshot lines with a few lines of context under their ancestors.

    The layout follows Playwright MCP's ``browser_find``: windows of context
    around each match, each headed by the lines of its ancestors, ``...`` where
    lines are skipped, windows separated by ``----``.
    """
    lines = snapshot.split("\n")
    indents = [len(line) - len(line.lstrip()) for line in lines]
    hits = [i for i, line in enumerate(lines) if matches.search(line)]
    if not hits:
        return f"No matches found for {query}."
    shown = hits[:max_results] if max_results is not None else hits
    windows: list[list[int]] = []
    for line in shown:
        start, end = max(0, line - _CONTEXT_LINES), min(len(lines) - 1, line + _CONTEXT_LINES)
        if windows and start <= windows[-1][1] + 1:
            windows[-1][1] = max(windows[-1][1], end)
        else:
            windows.append([start, end])
    on_path: set[int] = set()
    for line in shown:
        on_path.add(line)
        on_path.update(_ancestors(lines, indents, line))
    snippets = []
    for start, end in windows:
        indices = _ancestors(lines, indents, start) + list(range(start, end + 1))
        out: list[str] = []
        for n, index in enumerate(indices):
            previous = indices[n - 1] if n else None
            if (
                previous is not None
                and index > previous + 1
                and index not in on_path
                and previous not in on_path
            ):
                out.append(" " * indents[index] + "...")
            out.append(lines[index])
        snippets.append("\n".join(out))
    word = "match" if len(hits) == 1 else "matches"
    header = f"Found {len(hits)} {word} for {query}"
    if len(shown) < len(hits):
        header += f" (showing the first {len(shown)})"
    return header + ":\n\n" + "\n\n----\n\n".join(snippets)


def _ancestors(lines: list[str], indents: list[int], index: int) -> list[int]:
    found: list[int] = []
    indent = indents[index]
    for i in range(index - 1, -1, -1):
        if indent <= 0:
            break
        if lines[i].strip() and indents[i] < indent:
            found.append(i)
            indent = indents[i]
    return found[::-1]


def _first_line(exc: Error) -> str:
    text = (exc.message or str(exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__
