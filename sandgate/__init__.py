"""Sandgate: secure sandboxes served as MCP tools and gRPC APIs.

``from sandgate import Sandbox, AsyncSandbox, ToolGateway, AsyncToolGateway`` gives
the client SDK. The import
is lazy so that sandboxd, which only needs the generated stubs, starts fast.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AsyncSandbox", "AsyncToolGateway", "Sandbox", "ToolGateway"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from sandgate import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'sandgate' has no attribute {name!r}")
