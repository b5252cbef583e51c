"""Fixtures: real agent servers (uvicorn on 127.0.0.1:0), a real redis-server, an SSE reader."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import redis

from agent_svc.app import AgentApp
from agent_svc.server import RunningAgentServer, start_agent_server
from agent_svc.settings import AgentSettings
from tests.integration.agent_svc.services_fixtures import (
    memory_service,
    session_service,
    state_service,
)

__all__ = ["memory_service", "redis_server", "redis_url", "session_service", "state_service"]

USER_INPUT = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


def agent_settings(state_dir: Path, **overrides: Any) -> AgentSettings:
    """Settings for a test server: port 0, no gRPC, no keys, history in memory."""
    values: dict[str, Any] = dict(
        host="127.0.0.1", port=0, grpc_port=None, state_dir=state_dir, api_keys="",
        bearer_token="", history="memory", task_broker="", task_backend="",
        task_concurrency=2)
    values.update(overrides)
    return AgentSettings(**values)


@asynccontextmanager
async def serving(app: AgentApp, state_dir: Path, **overrides: Any
                  ) -> AsyncIterator[RunningAgentServer]:
    running = await start_agent_server(app, agent_settings(state_dir, **overrides))
    try:
        yield running
    finally:
        await running.stop(grace=5.0)


def parse_sse(text: str) -> list[dict[str, Any]]:
    """The JSON of each ``data:`` event of an SSE body."""
    events = []
    for block in text.split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
    return events


async def read_events(client: httpx.AsyncClient, url: str, body: dict[str, Any],
                      **kwargs: Any) -> tuple[int, list[dict[str, Any]]]:
    """POST ``body`` and read the whole SSE answer."""
    async with client.stream("POST", url, json=body, **kwargs) as response:
        text = (await response.aread()).decode()
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return response.status_code, parse_sse(text)
        return response.status_code, [json.loads(text)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A real redis-server on a free loopback port in a temp dir; answers its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is missing: run scripts/bootstrap.sh (Debian redis-server)")
    workdir = Path(tempfile.mkdtemp(prefix="sg-redis-"))
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
         "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.02)
        client.close()
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """The session's redis-server, emptied for this test."""
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    yield redis_server
