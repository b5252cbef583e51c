"""framework="agentscope" with the real agentscope 1.0.21, in a venv of its own.

agentscope 1.x needs ``mcp<2`` and ``openai<3``, so it cannot share our venv:
the fixture builds a venv once (agentscope plus the ``agent`` extra's
requirements, without mcp 2) in the user's cache directory
(``$XDG_CACHE_HOME/sandgate``, else ``~/.cache/sandgate``), named by a hash of
the requirements, so every checkout on the machine reuses it while the
requirements stay the same; the agent service runs there from this checkout
(``PYTHONPATH``), and this test talks to it over HTTP.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from sandbox_svc.server import RunningService
from tests.integration.agent_svc.conftest import read_events

ROOT = Path(__file__).resolve().parents[3]
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sandgate"
AGENTSCOPE = ["agentscope==1.0.21", "mcp<2", "openai<3", "greenlet"]
_UNREACHABLE = re.compile(r"NewConnectionError|Failed to establish|Temporary failure in name "
                          r"resolution|Network is unreachable|ConnectionRefused|No matching "
                          r"distribution found for agentscope", re.IGNORECASE)


def _requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [*AGENTSCOPE, *project["optional-dependencies"]["agent"]]


@pytest.fixture(scope="session")
def agentscope_python() -> Path:
    """The venv's python, built on first use (minutes) and reused after (instant)."""
    requirements = _requirements()
    stamp = hashlib.sha256("\n".join(requirements).encode()).hexdigest()
    venv = CACHE / f"agentscope-venv-{stamp[:12]}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{venv.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs at once: one builds, the other waits
        return _build_once(venv, requirements, stamp)


def _build_once(venv: Path, requirements: list[str], stamp: str) -> Path:
    ready = venv / ".sandgate-ready"
    python = venv / "bin" / "python"
    if ready.exists() and ready.read_text() == stamp and python.exists():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    base = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=300)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         *requirements], capture_output=True, text=True, timeout=1800)
    if install.returncode != 0:
        if _UNREACHABLE.search(install.stderr):
            pytest.skip(f"the package index is unreachable, so agentscope 1.0.21 cannot be "
                        f"installed: {install.stderr.strip().splitlines()[-1]}")
        pytest.fail(f"installing agentscope failed:\n{install.stderr[-3000:]}")
    check = subprocess.run([str(python), "-c", "import mcp, agentscope; "
                            "print(agentscope.__version__)"],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0 and check.stdout.strip() == "1.0.21", check.stderr
    ready.write_text(stamp)
    return python


@pytest.fixture
def agentscope_server(agentscope_python: Path, tmp_path: Path) -> Iterator[str]:
    """``python -m agent_svc`` serving agentscope_app:app in the agentscope venv."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SANDGATE_AGENT_STATE_DIR": str(tmp_path),
           "SANDGATE_AGENT_HISTORY": "memory", "SANDGATE_API_KEYS": "", "BEARER_TOKEN": ""}
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [str(agentscope_python), "-m", "agent_svc", "--app",
         "tests.integration.agent_svc.agentscope_app:app", "--port", "0", "--grpc-port", "-1"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # bounded: the process exits on failure
        found = re.search(r"at (http://[\d.]+:\d+)/process", line)
        if found is None:
            process.kill()
            process.wait(timeout=10)
            pytest.fail(f"the agent server did not start: {line}"
                        f"{(tmp_path / 'server.log').read_text()[-3000:]}")
        yield found.group(1)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        log.close()


async def test_a_real_agentscope_react_agent_streams_text_and_plugin_calls(
        agentscope_server: str) -> None:
    body = {"input": [{"role": "user", "content": [{"type": "text", "text": "what is 2+2?"}]}],
            "session_id": "as-1"}
    async with httpx.AsyncClient(timeout=60) as client:
        status, events = await read_events(client, f"{agentscope_server}/process", body)
    assert status == 200
    final = events[-1]
    assert final["status"] == "completed", final
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    output = final["output"]
    assert [(m["type"], m["role"]) for m in output] == [
        ("message", "assistant"), ("plugin_call", "assistant"),
        ("plugin_call_output", "tool"), ("message", "assistant")]
    assert output[0]["content"][0]["text"] == "Let me add."
    call = output[1]["content"][0]["data"]
    assert (call["name"], call["call_id"]) == ("add", "call-1")
    assert call["arguments"] == '{"a": 2, "b": 2}'
    assert output[2]["content"][0]["data"]["call_id"] == "call-1"
    assert '"text": "4"' in output[2]["content"][0]["data"]["output"]
    # The user's text reached the agent as an agentscope Msg, and the answer streamed.
    assert output[3]["content"][0]["text"] == "You asked: what is 2+2?. 2 + 2 = 4"
    deltas = [e["text"] for e in events if e["object"] == "content" and e.get("msg_id") ==
              output[3]["id"]]
    assert "".join(deltas) == output[3]["content"][0]["text"] and len(deltas) == 2


_FRIDAY_TOOL = """
import asyncio, sys
sys.path.insert(0, sys.argv[1])
from sandbox_tool import run_ipython_cell_in_sandbox

async def main():
    tool = run_ipython_cell_in_sandbox("friday-test", "u1")
    await tool("x = 21")
    print((await tool("print('hello'); x * 2")).content[0]["text"])

asyncio.run(main())
"""


async def test_fridays_python_tool_runs_in_the_sessions_sandbox(
        agentscope_python: Path, service: RunningService) -> None:
    # Async, so the event loop keeps serving SandboxService while the tool calls it.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SANDGATE_TARGET": service.address}
    process = await asyncio.create_subprocess_exec(
        str(agentscope_python), "-c", _FRIDAY_TOOL, str(ROOT / "examples" / "friday_agentscope"),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(120):
            stdout, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()[-3000:]
    assert stdout.decode().split() == ["stdout:", "hello", "result:", "42"]
