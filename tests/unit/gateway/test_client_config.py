"""What `sandgate up` prints for MCP clients."""

from __future__ import annotations

import json

from sandgate.cli.up import client_config_lines

URL = "http://127.0.0.1:8000/mcp"


def _json_blocks(lines: list[str]) -> list[dict[str, object]]:
    blocks, current = [], []
    for line in lines:
        if line.strip() == "{" or current:
            current.append(line)
            if line == "    }":
                blocks.append(json.loads("\n".join(current)))
                current = []
    return blocks


def test_with_a_key_every_client_config_sends_it_as_a_bearer_header() -> None:
    lines = client_config_lines(URL, "k-123")
    claude = next(line for line in lines if "claude mcp add" in line)
    assert claude.split() == ["claude", "mcp", "add", "--transport", "http", "sandgate", URL,
                              "--header", '"Authorization:', 'Bearer', 'k-123"']
    cursor, vscode = _json_blocks(lines)
    assert cursor == {"mcpServers": {"sandgate": {
        "url": URL, "headers": {"Authorization": "Bearer k-123"}}}}
    assert vscode == {"servers": {"sandgate": {
        "type": "http", "url": URL, "headers": {"Authorization": "Bearer k-123"}}}}


def test_without_a_key_no_header_is_printed() -> None:
    lines = client_config_lines(URL, None)
    assert not any("Authorization" in line for line in lines)
    assert _json_blocks(lines)[0] == {"mcpServers": {"sandgate": {"url": URL}}}
