"""What `sandgate up` prints for the agent: the curl line and how to give it a model."""

from __future__ import annotations

import json
import shlex

from sandgate.cli.up_text import DEMO_REQUEST, agent_lines, curl_line

URL = "http://127.0.0.1:8090/process"


def test_the_curl_line_posts_the_seeds_request_in_session_demo() -> None:
    argv = shlex.split(curl_line(URL, None))
    assert argv[:5] == ["curl", "-N", "-X", "POST", URL]
    assert argv[argv.index("-H") + 1] == "Content-Type: application/json"
    assert json.loads(argv[argv.index("-d") + 1]) == {
        "input": [{"role": "user", "content": [{"type": "text", "text": DEMO_REQUEST}]}],
        "session_id": "demo"}
    assert not any(a.startswith("Authorization") for a in argv)


def test_a_key_is_sent_as_a_bearer_header_quoted_for_the_shell() -> None:
    argv = shlex.split(curl_line(URL, "it's-a-key"))
    headers = [argv[i + 1] for i, a in enumerate(argv) if a == "-H"]
    assert headers == ["Content-Type: application/json", "Authorization: Bearer it's-a-key"]


def test_without_a_model_the_built_in_agent_lines_say_how_to_start_one() -> None:
    lines = agent_lines(URL, None, app_name="Sandgate agent", model=None, builtin=True)
    text = "\n".join(lines)
    assert "model_not_configured" in text
    assert "--script bubble-sort" in text and "SANDGATE_MODEL=scripted" in text
    assert "SANDGATE_MODEL=qwen-turbo DASHSCOPE_API_KEY=" in text


def test_a_configured_model_or_a_users_app_gets_no_model_advice() -> None:
    configured = agent_lines(URL, None, app_name="Sandgate agent",
                             model=("qwen-turbo", "https://dashscope.example/v1"), builtin=True)
    user_app = agent_lines(URL, None, app_name="Friday", model=None, builtin=False)
    assert configured[-1].split() == ["model", "qwen-turbo", "at", "https://dashscope.example/v1"]
    assert len(user_app) == 2 and "Friday" in user_app[0]
    assert not any("make run" in line for line in configured + user_app)
