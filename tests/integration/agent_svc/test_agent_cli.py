"""``sandgate agent-server``: serves an app named module:attribute, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from pathlib import Path

import grpc
import httpx2 as httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[3]


async def test_agent_server_serves_http_and_grpc_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SANDGATE_AGENT_STATE_DIR": str(tmp_path),
           "SANDGATE_API_KEYS": "", "BEARER_TOKEN": ""}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sandgate.cli.main", "agent-server",
        "--app", "tests.integration.agent_svc.apps:app", "--port", "0", "--grpc-port", "0",
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    try:
        async with asyncio.timeout(60):
            http_line = (await process.stdout.readline()).decode()
            grpc_line = (await process.stdout.readline()).decode()
        url = re.search(r"at (http://\S+)/process", http_line)
        address = re.search(r"gRPC\) at (\S+)", grpc_line)
        assert url and address, (http_line, grpc_line)
        async with httpx.AsyncClient() as client:
            reply = await client.post(f"{url.group(1)}/process", json={
                "input": [{"role": "user", "content": [{"type": "text", "text": "cli"}]}],
                "stream": False})
        async with grpc.aio.insecure_channel(address.group(1)) as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert reply.json()["output"][0]["content"][0]["text"] == "you said: cli"
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert code == 0


_MODEL_KEYS = ("SANDGATE_AGENT_APP", "SANDGATE_MODEL_BASE_URL", "SANDGATE_MODEL",
               "SANDGATE_MODEL_API_KEY", "OPENAI_API_KEY", "DASHSCOPE_API_KEY")


async def test_agent_server_without_an_app_serves_the_built_in_agent(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in _MODEL_KEYS}
    env.update({"PYTHONPATH": str(ROOT), "SANDGATE_AGENT_STATE_DIR": str(tmp_path),
                "SANDGATE_API_KEYS": "", "BEARER_TOKEN": "",
                "SANDGATE_GATEWAY_TARGET": f"127.0.0.1:{closed_port}"})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sandgate.cli.main", "agent-server", "--port", "0",
        "--grpc-port", "-1", cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    try:
        async with asyncio.timeout(60):
            http_line = (await process.stdout.readline()).decode()
        url = re.search(r"at (http://\S+)/process", http_line)
        assert url, http_line
        async with httpx.AsyncClient(timeout=30) as client:
            reply = await client.post(f"{url.group(1)}/process", json={
                "input": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                "stream": False})
            readiness = await client.get(f"{url.group(1)}/readiness")
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            code = await process.wait()
        stderr = (await process.stderr.read()).decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert reply.status_code == 200
    assert reply.json()["status"] == "failed"
    assert reply.json()["error"]["code"] == "model_not_configured"
    assert readiness.status_code == 503
    assert "SANDGATE_MODEL_BASE_URL" in stderr  # said at start, before any request
    assert code == 0


async def test_agent_server_without_an_app_says_how_to_name_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SANDGATE_AGENT_APP"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sandgate.cli.main", "agent-server", "--app", "nocolon",
        cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(60):
        _, stderr = await process.communicate()
    assert process.returncode == 2
    assert "module:attribute" in stderr.decode()
