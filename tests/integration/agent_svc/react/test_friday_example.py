"""examples/friday, as its README serves it (``SANDGATE_AGENT_APP=examples.friday.app:agent_app``):
the seed's request answered with a scripted model, code run in a real sandbox."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import anyio
import httpx2 as httpx
import pytest

from agent_svc.app import AgentApp
from gateway.server import RunningGateway
from tests.fixtures.scripted_model import ScriptedModel, bubble_sort
from tests.integration.agent_svc.conftest import read_events, serving

ROOT = Path(__file__).resolve().parents[4]
SEED_REQUEST = "请帮我使用python生成一段冒泡排序算法,并执行"


def _fresh_friday() -> AgentApp:
    """examples/friday/app.py imported anew, so that it reads the environment set now."""
    spec = importlib.util.spec_from_file_location("friday_example_under_test",
                                                  ROOT / "examples" / "friday" / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = module.agent_app
    assert isinstance(app, AgentApp)
    return app


async def test_friday_answers_the_seeds_request_by_running_code_in_a_sandbox(
        gateway: RunningGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with ScriptedModel(bubble_sort) as model:
        for key, value in {"SANDGATE_MODEL_BASE_URL": model.base_url,
                           "SANDGATE_MODEL": "scripted", "SANDGATE_MODEL_API_KEY": "x",
                           "SANDGATE_GATEWAY_TARGET": gateway.grpc_address}.items():
            monkeypatch.setenv(key, value)
        app = _fresh_friday()
        async with serving(app, tmp_path) as server, httpx.AsyncClient(timeout=120) as client:
            with anyio.fail_after(120):
                status, events = await read_events(client, f"{server.http_url}/process", {
                    "input": [{"role": "user",
                               "content": [{"type": "text", "text": SEED_REQUEST}]}],
                    "session_id": "friday-1"})
    assert status == 200 and events[-1]["status"] == "completed"
    outputs = [e for e in events if e["object"] == "message" and e["status"] == "completed"
               and e["type"] == "plugin_call_output"]
    assert len(outputs) == 1
    assert "[11, 12, 22, 25, 34, 64, 90]" in outputs[0]["content"][0]["data"]["output"]
    system = model.requests[0]["messages"][0]
    assert system["role"] == "system" and "Friday" in system["content"]
