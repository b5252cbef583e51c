from __future__ import annotations

import re
from pathlib import Path

import grpc
import playwright
import pytest

from sandbox_svc.sandboxd.browser import (
    BrowserArgumentError,
    BrowserUnavailableError,
    UnknownBrowserToolError,
    parse_arguments,
)
from sandbox_svc.sandboxd.browser.args import Args
from sandbox_svc.sandboxd.browser.settings import CHROMIUM_ARGS, DISABLED_FEATURES
from sandbox_svc.sandboxd.servicer import STATUS_CODES
from sandgate.service.boundary import status_for


def test_empty_arguments_json_means_no_arguments() -> None:
    assert parse_arguments("") == {} and parse_arguments("  \n") == {}
    assert parse_arguments('{"url": "https://example.com"}') == {"url": "https://example.com"}


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '"a string"', "null", "3"])
def test_arguments_json_must_be_a_json_object(text: str) -> None:
    with pytest.raises(BrowserArgumentError):
        parse_arguments(text)


def test_an_element_is_named_by_target_or_by_ref() -> None:
    assert Args("browser_click", {"target": "e3"}).target() == "e3"
    assert Args("browser_click", {"ref": " e4 ", "element": "Go"}).target() == "e4"
    drag = Args("browser_drag", {"startRef": "e1", "endTarget": "e2"})
    assert drag.target("startTarget", "startRef") == "e1"
    assert drag.target("endTarget", "endRef") == "e2"
    with pytest.raises(BrowserArgumentError, match="'target' or 'ref'"):
        Args("browser_click", {"element": "Go"}).target()


def test_arguments_of_the_wrong_type_are_refused() -> None:
    args = Args("t", {"flag": "yes", "n": True, "x": 1.5, "names": [1], "map": {"a": 1}})
    with pytest.raises(BrowserArgumentError):
        args.boolean("flag")
    with pytest.raises(BrowserArgumentError):
        args.number("n")  # JSON true is not a number
    with pytest.raises(BrowserArgumentError):
        args.integer("x")
    with pytest.raises(BrowserArgumentError):
        args.string_list("names")
    with pytest.raises(BrowserArgumentError):
        args.string_map("map")
    with pytest.raises(BrowserArgumentError):
        Args("t", {"action": "fly"}).choice("action", ("list", "new"))


def test_lenient_forms_are_accepted() -> None:
    args = Args("t", {"values": "one", "index": 2.0, "extra": {"ignored": True}})
    assert args.string_list("values") == ["one"]
    assert args.integer("index") == 2
    assert args.boolean("missing", default=True) is True
    assert args.string("absent") is None


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (
            UnknownBrowserToolError("browser_fly", ["browser_click"]),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (BrowserArgumentError("bad"), grpc.StatusCode.INVALID_ARGUMENT),
        (BrowserUnavailableError("no chromium"), grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_browser_errors_map_to_the_statuses_browser_action_documents(
    error: Exception, code: grpc.StatusCode
) -> None:
    assert status_for(STATUS_CODES, error) == code


def test_our_disabled_features_keep_every_feature_playwright_disables() -> None:
    # Chromium keeps only the last --disable-features, and ours comes last.
    bundle = Path(playwright.__file__).parent / "driver/package/lib/coreBundle.js"
    source = bundle.read_text()
    block = re.search(r"disabledFeatures = \[(.*?)\]\.filter", source, re.DOTALL)
    assert block, "Playwright's default switches moved; re-check DISABLED_FEATURES"
    theirs = set(re.findall(r'^\s*"(\w+)"', block[1], re.MULTILINE))
    windows_or_edge_only = {t for t in theirs if t.startswith("ms")}
    assert theirs - windows_or_edge_only <= set(DISABLED_FEATURES)
    assert sum(a.startswith("--disable-features=") for a in CHROMIUM_ARGS) == 1
