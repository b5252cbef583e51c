"""The ``sandgate`` command line: ``sandbox`` commands against a running SandboxService,
and ``sandgate up`` (all three services) answering the /process curl line it prints."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx

from sandbox_svc.server import RunningService
from tests.fixtures.scripted_model import ScriptedModel, bubble_sort

ROOT = Path(__file__).resolve().parents[2]


async def _sandgate(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "sandgate.cli.main", *args],
        capture_output=True, text=True, timeout=60)


async def test_create_exec_list_and_remove_from_the_command_line(
        service: RunningService) -> None:
    target = ("--target", service.address)
    created = await _sandgate("sandbox", "create", "--template", "base", *target)
    assert created.returncode == 0, created.stderr
    sandbox_id = created.stdout.strip()
    listed = await _sandgate("sandbox", "ls", *target)
    assert sandbox_id in listed.stdout
    ran = await _sandgate("sandbox", "exec", sandbox_id, *target, "--", "echo hi; exit 3")
    assert (ran.returncode, ran.stdout) == (3, "hi\n")
    late = await _sandgate("sandbox", "exec", sandbox_id, *target, "--timeout", "1", "--",
                           "echo started; sleep 30")
    assert (late.returncode, late.stdout) == (124, "started\n")  # as timeout(1) exits
    assert "timed out after 1 s" in late.stderr
    assert (await _sandgate("sandbox", "rm", sandbox_id, *target)).returncode == 0
    gone = await _sandgate("sandbox", "rm", sandbox_id, *target)
    assert gone.returncode == 2 and "not found" in gone.stderr


async def test_create_prints_only_the_id_on_stdout_and_the_isolation_on_stderr(
        service: RunningService) -> None:
    target = ("--target", service.address)
    created = await _sandgate("sandbox", "create", "--template", "base", *target)
    assert created.returncode == 0, created.stderr
    sandbox_id, = created.stdout.split()
    isolation = [line for line in created.stderr.splitlines() if line.startswith("isolation:")]
    assert isolation == ["isolation: bubblewrap; namespaces user,mount,pid,net,ipc,uts,cgroup; "
                         "uid 65534; seccomp default; user namespaces disabled; network none"]
    assert (await _sandgate("sandbox", "rm", sandbox_id, *target)).returncode == 0


async def test_templates_lists_each_template_with_its_isolation(
        service: RunningService) -> None:
    listed = await _sandgate("sandbox", "templates", "--target", service.address)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    names = [line.split()[0] for line in lines[1:] if not line.startswith(" ")]
    assert names == ["base", "browser", "filesystem"]
    browser = lines[lines.index(next(x for x in lines if x.startswith("browser"))) + 1]
    assert "seccomp browser" in browser and "network egress" in browser
    assert "user namespaces disabled" in browser


async def test_help_lists_every_command() -> None:
    helped = await _sandgate("--help")
    for command in ("up", "sandbox-server", "sandbox", "gc", "bench"):
        assert command in helped.stdout


_UP_PORTS = {"SANDGATE_SANDBOX_PORT": "0", "SANDGATE_GATEWAY_PORT": "0",
             "SANDGATE_GATEWAY_GRPC_PORT": "0", "SANDGATE_AGENT_PORT": "0",
             "SANDGATE_AGENT_GRPC_PORT": "0"}
_FOREIGN = ("SANDGATE_AGENT_APP", "SANDGATE_MODEL_BASE_URL", "SANDGATE_MODEL",
            "SANDGATE_MODEL_API_KEY", "OPENAI_API_KEY", "DASHSCOPE_API_KEY", "SANDGATE_API_KEYS",
            "BEARER_TOKEN", "SANDGATE_BEARER_TOKEN", "SANDGATE_GATEWAY_KEY")


@asynccontextmanager
async def sandgate_up(state_dir: Path, **env: str) -> AsyncIterator[list[str]]:
    """``sandgate up`` on free ports; answers what it printed up to "Ctrl-C stops"."""
    environ = {k: v for k, v in os.environ.items() if k not in _FOREIGN}
    environ.update({"PYTHONPATH": str(ROOT), "SANDGATE_STATE_DIR": str(state_dir),
                    "SANDGATE_POOL_SIZE": "0", **_UP_PORTS, **env})
    log = (state_dir / "up.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sandgate.cli.main", "up", cwd=ROOT, env=environ,
        stdout=asyncio.subprocess.PIPE, stderr=log)
    assert process.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(120):
            while not lines or not lines[-1].strip().startswith("Ctrl-C stops"):
                line = await process.stdout.readline()
                assert line, f"sandgate up ended: {(state_dir / 'up.log').read_text()}"
                lines.append(line.decode().rstrip("\n"))
        yield lines
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        log.close()


def _process_url(lines: list[str]) -> str:
    found = next(re.search(r"Agent \(/process, SSE\)\s+(http://\S+/process)", line)
                 for line in lines if "Agent (/process" in line)
    assert found, lines
    return found.group(1)


def _curl_line(lines: list[str]) -> list[str]:
    """The printed curl command, as its arguments."""
    return shlex.split(next(line for line in lines if line.strip().startswith("curl ")))


async def _ask_as_curl_does(curl: list[str]) -> list[dict[str, Any]]:
    """Send what the curl line sends (its URL, headers and body) and read the SSE answer."""
    url = next(arg for arg in curl if arg.startswith("http://"))
    headers = dict(curl[i + 1].split(": ", 1) for i, arg in enumerate(curl) if arg == "-H")
    body = curl[curl.index("-d") + 1]
    async with httpx.AsyncClient(timeout=120) as client, asyncio.timeout(120):
        async with client.stream("POST", url, content=body.encode(), headers=headers) as reply:
            assert reply.status_code == 200
            text = (await reply.aread()).decode()
    return [json.loads(line.removeprefix("data: ")) for line in text.splitlines()
            if line.startswith("data: ")]


def _finished(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events
            if e["object"] == "message" and e["status"] == "completed" and e["type"] == kind]


async def test_up_serves_process_and_its_curl_line_runs_bubble_sort_in_a_sandbox(
        state_dir: Path) -> None:
    async with ScriptedModel(bubble_sort) as model, sandgate_up(
            state_dir, SANDGATE_MODEL_BASE_URL=model.base_url, SANDGATE_MODEL="scripted",
            SANDGATE_MODEL_API_KEY="x") as lines:
        url = _process_url(lines)
        curl = _curl_line(lines)
        events = await _ask_as_curl_does(curl)
    assert url in curl and "Authorization" not in " ".join(curl)
    assert json.loads(curl[curl.index("-d") + 1])["input"][0]["content"][0]["text"] == \
        "请帮我使用python生成一段冒泡排序算法,并执行"
    assert any(line.split() == ["model", "scripted", "at", model.base_url] for line in lines)
    assert events[-1]["object"] == "response" and events[-1]["status"] == "completed"
    output, = _finished(events, "plugin_call_output")
    assert output["content"][0]["data"]["name"] == "run_ipython_cell"
    assert "[11, 12, 22, 25, 34, 64, 90]" in output["content"][0]["data"]["output"]
    assert not output["content"][0]["data"]["is_error"]
    assert len(model.requests) == 2


async def test_up_with_tenant_keys_prints_a_keyed_curl_line_and_the_agent_reaches_the_gateway(
        state_dir: Path) -> None:
    async with ScriptedModel(bubble_sort) as model, sandgate_up(
            state_dir, SANDGATE_API_KEYS="k-acme=acme", SANDGATE_MODEL_BASE_URL=model.base_url,
            SANDGATE_MODEL="scripted", SANDGATE_MODEL_API_KEY="x") as lines:
        url = _process_url(lines)
        curl = _curl_line(lines)
        async with httpx.AsyncClient(timeout=30) as client:
            anonymous = await client.post(url, json={"input": []})
        events = await _ask_as_curl_does(curl)
    assert anonymous.status_code == 401
    assert "Authorization: Bearer k-acme" in curl
    assert events[-1]["status"] == "completed"
    output, = _finished(events, "plugin_call_output")
    assert "[11, 12, 22, 25, 34, 64, 90]" in output["content"][0]["data"]["output"]


async def test_up_without_a_model_says_how_to_give_the_agent_one(state_dir: Path) -> None:
    async with sandgate_up(state_dir) as lines:
        events = await _ask_as_curl_does(_curl_line(lines))
    text = "\n".join(lines)
    assert "python -m tests.fixtures.scripted_model --port 8400 --script bubble-sort" in text
    assert "SANDGATE_MODEL_BASE_URL=http://127.0.0.1:8400/v1 SANDGATE_MODEL=scripted" in text
    assert "qwen-turbo" in text
    assert events[-1]["status"] == "failed"
    assert events[-1]["error"]["code"] == "model_not_configured"
