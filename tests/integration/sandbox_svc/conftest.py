"""What the local-backend tests of this package share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from sandbox_svc.local.backend import LocalBackend


@contextlib.asynccontextmanager
async def opened_backend(state_dir: Path, *, uid_count: int, uid_base: int = 200_000,
                         zygote: bool = True) -> AsyncIterator[LocalBackend]:
    """A real LocalBackend on ``state_dir``; on exit every sandbox left there is
    destroyed and the backend closed (its zygote let go)."""
    opened = await asyncio.to_thread(LocalBackend.for_host, state_dir, uid_base=uid_base,
                                     uid_count=uid_count, zygote=zygote)
    try:
        yield opened
    finally:
        for leftover in await opened.leftovers():
            await opened.destroy(leftover)
        await opened.close()
