"""A small MCP server the federation tests start: ``python upstream_server.py stdio|http``.

Over HTTP it listens on a free loopback port and prints the port on its first
stdout line.
"""

from __future__ import annotations

import socket
import sys

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer

server = MCPServer("upstream")


@server.tool()
def echo(text: str) -> str:
    """Repeat the text, so the caller can tell who answered."""
    return f"upstream says: {text}"


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
async def nap(seconds: float) -> str:
    """Sleep, to test timeouts."""
    await anyio.sleep(seconds)
    return "rested"


async def _serve_http() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(server.streamable_http_app(), log_level="warning")
    await uvicorn.Server(config).serve(sockets=[sock])


if __name__ == "__main__":
    if sys.argv[1:] == ["http"]:
        anyio.run(_serve_http)
    else:
        server.run("stdio")
