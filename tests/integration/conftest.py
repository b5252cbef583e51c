"""Fixtures that start the real control plane with real bwrap sandboxes."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sandbox_svc.server import RunningService, build_server
from sandbox_svc.settings import SandboxServiceSettings


@pytest.fixture
def state_dir() -> Iterator[Path]:
    # Short and world-searchable: sandboxes reach their sockets and
    # workspaces through it, and Unix socket paths must stay under 108 bytes.
    path = Path(tempfile.mkdtemp(prefix="sg-", dir="/tmp"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def make_settings(state_dir: Path, **overrides: object) -> SandboxServiceSettings:
    values: dict[str, object] = dict(
        host="127.0.0.1", port=0, state_dir=state_dir, pool_size=0, max_sandboxes=16,
        auto_cleanup=True, api_keys="", bearer_token="", reap_interval_s=3600.0)
    values.update(overrides)
    return SandboxServiceSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def zygote() -> bool:
    """Whether sandboxd is forked from the zygote (the default); a module that
    overrides this fixture runs its ``service`` both ways."""
    return True


@pytest.fixture
async def service(state_dir: Path, zygote: bool) -> AsyncIterator[RunningService]:
    running = await build_server(make_settings(state_dir, zygote=zygote))
    yield running
    await running.stop(grace=0.5)
