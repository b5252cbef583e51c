"""load_upstreams: the mcpServers file of federated MCP servers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.federation import UpstreamConfig, load_upstreams


def test_stdio_and_http_upstreams_with_prefixes_tenants_and_timeouts(tmp_path: Path) -> None:
    path = tmp_path / "upstreams.yaml"
    path.write_text(
        "mcpServers:\n"
        "  docs:\n"
        "    command: python3\n"
        "    args: [server.py, --quiet]\n"
        "    env: {ROOT: /srv}\n"
        "  web:\n"
        "    type: http\n"
        "    url: https://search.example/mcp\n"
        "    headers: {Authorization: Bearer abc}\n"
        "    prefix: web_\n"
        "    tenants: [acme]\n"
        "    timeout_s: 5\n"
        "  off:\n"
        "    command: nothing\n"
        "    disabled: true\n")
    docs, web = load_upstreams(path, timeout_s=12)
    assert docs == UpstreamConfig(name="docs", prefix="docs__",
                                  command=("python3", "server.py", "--quiet"),
                                  env={"ROOT": "/srv"}, timeout_s=12)
    assert (web.url, web.prefix, web.tenants, web.timeout_s) == (
        "https://search.example/mcp", "web_", frozenset({"acme"}), 5.0)
    assert web.headers == {"Authorization": "Bearer abc"}


@pytest.mark.parametrize("entry,message", [
    ({"command": "a", "url": "http://b"}, "either"),
    ({}, "either"),
    ({"command": "a", "colour": "red"}, "unknown keys"),
])
def test_malformed_entries_say_what_is_wrong(tmp_path: Path, entry: dict[str, object],
                                             message: str) -> None:
    path = tmp_path / "upstreams.json"
    path.write_text(json.dumps({"mcpServers": {"x": entry}}))
    with pytest.raises(ValueError, match=message):
        load_upstreams(path)


def test_a_file_without_mcp_servers_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "upstreams.json"
    path.write_text("[]")
    with pytest.raises(ValueError, match="mcpServers"):
        load_upstreams(path)
