from __future__ import annotations

import re
from pathlib import Path

import pytest

from sandbox_svc.sandboxd.browser import (
    BrowserSession,
    BrowserSettings,
    UnknownBrowserToolError,
)
from sandbox_svc.sandboxd.browser.snapshot import REF_PATTERN, find_in_snapshot, truncate
from sandbox_svc.sandboxd.errors import InvalidInputError
from sandbox_svc.sandboxd.paths import Workspace

SNAPSHOT = """- generic [ref=e1]:
  - heading "Shop" [level=1] [ref=e2]
  - list [ref=e3]:
    - listitem [ref=e4]: Apples
    - listitem [ref=e5]: Pears
    - listitem [ref=e6]: Plums
    - listitem [ref=e7]: Figs
    - listitem [ref=e8]: Dates
    - listitem [ref=e9]: Limes
    - listitem [ref=e10]: Kiwis
    - listitem [ref=e11]: Lemons
    - listitem [ref=e12]: Mangos
  - button "Buy apples" [ref=e13]"""


def test_refs_look_like_playwright_refs_with_optional_frame_prefix() -> None:
    assert all(REF_PATTERN.match(r) for r in ("e1", "e42", "f3e17"))
    assert not any(REF_PATTERN.match(r) for r in ("#id", "E1", "e", "button", "[ref=e1]"))


def test_find_shows_matches_under_their_ancestors() -> None:
    found = find_in_snapshot(SNAPSHOT, re.compile("apples", re.I), None, '"apples"')
    assert found.startswith('Found 2 matches for "apples":')
    first, second = found.split("\n\n", 1)[1].split("\n\n----\n\n")
    assert first.splitlines()[:4] == [
        "- generic [ref=e1]:",
        '  - heading "Shop" [level=1] [ref=e2]',
        "  - list [ref=e3]:",
        "    - listitem [ref=e4]: Apples",
    ]
    assert second.splitlines()[:3] == [
        "- generic [ref=e1]:",
        "  - list [ref=e3]:",
        "    - listitem [ref=e10]: Kiwis",
    ]
    assert second.splitlines()[-1] == '  - button "Buy apples" [ref=e13]'


def test_find_limits_results_and_says_when_nothing_matches() -> None:
    limited = find_in_snapshot(SNAPSHOT, re.compile("listitem"), 2, "/listitem/")
    assert limited.startswith("Found 9 matches for /listitem/ (showing the first 2):")
    assert find_in_snapshot(SNAPSHOT, re.compile("zebra"), None, '"zebra"') == (
        'No matches found for "zebra".'
    )


def test_long_text_is_cut_with_a_visible_marker() -> None:
    assert truncate("short", 10, "hint") == "short"
    cut = truncate("x" * 25, 10, "save it to a file")
    assert cut.startswith("x" * 10) and "15 more characters; save it to a file" in cut


async def test_bad_calls_are_refused_before_any_browser_starts(tmp_path: Path) -> None:
    session = BrowserSession(
        BrowserSettings(executable=tmp_path / "no-chromium"), Workspace(tmp_path)
    )
    with pytest.raises(UnknownBrowserToolError):
        await session.call("browser_levitate", {})
    with pytest.raises(InvalidInputError):
        await session.call("browser_snapshot", {}, timeout_s=0)
    assert not session.running
    closed = await session.call("browser_close", {})
    assert not closed.is_error and not session.running
