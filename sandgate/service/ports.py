"""The TCP port type every service's settings share, so each says the same thing
about a bad one and none lets it through to fail later at bind time."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

__all__ = ["ListenPort"]


def _listen_port(value: int) -> int:
    if not 0 <= value <= 65535:
        raise ValueError(f"a port must be in [0, 65535] (0 picks a free one), got {value}")
    return value


ListenPort = Annotated[int, AfterValidator(_listen_port)]
"""A port to listen on: 0 to 65535, where 0 lets the kernel pick a free one."""
