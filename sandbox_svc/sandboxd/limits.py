"""Server limits of sandboxd, in one frozen value passed to every component."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import InvalidInputError

__all__ = ["KIB", "MIB", "Limits", "resolve_timeout"]

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request may ask of the daemon."""

    read_chunk_bytes: int = 64 * KIB
    """Size of each ReadFile chunk."""
    max_read_bytes: int = 64 * MIB
    """Most bytes one ReadFile returns; larger files are read with offset/limit."""
    max_file_bytes: int = 64 * MIB
    """Largest file WriteFile or EditFile may produce."""
    max_list_entries: int = 10_000
    """Most entries one ListDirectory returns (then ``truncated``)."""
    max_search_results: int = 1_000
    """Most paths one SearchFiles returns; also its default."""
    max_scan_entries: int = 1_000_000
    """Most directory entries a listing or search visits before it stops."""
    default_timeout_s: float = 60.0
    """Timeout of a command or cell when the request sets none."""
    min_timeout_s: float = 0.001
    max_timeout_s: float = 3600.0
    default_output_bytes: int = 1 * MIB
    """Output cap of a command when the request sets none."""
    max_output_bytes: int = 16 * MIB
    """Largest output cap a request may ask for."""
    max_cell_output_bytes: int = 8 * MIB
    """Output budget of one cell (stream text plus rich data)."""
    max_concurrent_commands: int = 64
    """Commands running at once; more get RESOURCE_EXHAUSTED."""
    max_message_bytes: int = 16 * MIB
    """Largest gRPC message, in either direction."""


def resolve_timeout(seconds: float | None, limits: Limits) -> float:
    """Return the effective timeout, the default when unset.

    Raises:
        InvalidInputError: the timeout is outside the allowed range.
    """
    if seconds is None:
        return limits.default_timeout_s
    if not math.isfinite(seconds) or not (limits.min_timeout_s <= seconds <= limits.max_timeout_s):
        raise InvalidInputError(
            f"timeout {seconds:g} s is out of range; allowed: "
            f"{limits.min_timeout_s * 1000:g} ms to {limits.max_timeout_s:g} s"
        )
    return seconds
