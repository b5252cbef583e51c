"""What ``sandgate up`` prints: how to connect MCP clients and how to ask the agent."""

from __future__ import annotations

import json
import shlex

__all__ = ["DEMO_REQUEST", "agent_lines", "client_config_lines", "curl_line", "process_body"]

DEMO_REQUEST = "请帮我使用python生成一段冒泡排序算法,并执行"
"""The seed's request: write bubble sort in Python and run it (in a sandbox)."""
_SCRIPTED_MODEL_ENV = ("SANDGATE_MODEL_BASE_URL=http://127.0.0.1:8400/v1 "
                       "SANDGATE_MODEL=scripted SANDGATE_MODEL_API_KEY=x")
_DASHSCOPE_ENV = ("SANDGATE_MODEL_BASE_URL=https://dashscope.aliyuncs.com/compatible-mode/v1 "
                  "SANDGATE_MODEL=qwen-turbo DASHSCOPE_API_KEY=sk-...")


def client_config_lines(url: str, key: str | None) -> list[str]:
    """How to point Claude Code, Cursor and VS Code at the gateway."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    header_flag = f' --header "Authorization: Bearer {key}"' if key else ""
    cursor: dict[str, object] = {"url": url, **({"headers": headers} if headers else {})}
    vscode: dict[str, object] = {"type": "http", **cursor}
    lines = ["  Claude Code:", f"    claude mcp add --transport http sandgate {url}{header_flag}",
             "", "  Cursor (~/.cursor/mcp.json):"]
    lines += ["    " + line for line in
              json.dumps({"mcpServers": {"sandgate": cursor}}, indent=2).splitlines()]
    lines += ["", "  VS Code (.vscode/mcp.json):"]
    lines += ["    " + line for line in
              json.dumps({"servers": {"sandgate": vscode}}, indent=2).splitlines()]
    lines += ["", "  Clients that name no session share one sandbox per API key (one in all "
              "without keys);", "  give a client its own with the header "
              "X-Sandgate-Session: <any name>."]
    return lines


def process_body(text: str = DEMO_REQUEST, session_id: str = "demo") -> dict[str, object]:
    """A ``/process`` request body: one user message in ``session_id``."""
    return {"input": [{"role": "user", "content": [{"type": "text", "text": text}]}],
            "session_id": session_id}


def curl_line(url: str, key: str | None) -> str:
    """A curl command that streams the answer to :data:`DEMO_REQUEST` from ``url``."""
    auth = f" -H {shlex.quote(f'Authorization: Bearer {key}')}" if key else ""
    body = json.dumps(process_body(), ensure_ascii=False, separators=(",", ":"))
    return (f"curl -N -X POST {url} -H 'Content-Type: application/json'{auth} "
            f"-d {shlex.quote(body)}")


def agent_lines(url: str, key: str | None, *, app_name: str,
                model: tuple[str, str] | None, builtin: bool) -> list[str]:
    """How to ask the agent at ``url``, and how to give the built-in agent a model.

    Args:
        url: the ``/process`` URL.
        key: a key the agent service accepts (None without keys).
        app_name: the app served.
        model: the built-in agent's (model, endpoint), None when it has none.
        builtin: the app is the built-in agent (else a user's app).
    """
    lines = [f"  ask the agent ({app_name}):", f"    {curl_line(url, key)}"]
    if not builtin:
        return lines
    if model is not None:
        name, endpoint = model
        return [*lines, f"  model                  {name} at {endpoint}"]
    return [*lines,
            "  the built-in agent has no model yet: runs end failed (model_not_configured).",
            "  Start Sandgate with one, e.g. the scripted demo model (offline, no key):",
            "    .venv/bin/python -m tests.fixtures.scripted_model --port 8400 "
            "--script bubble-sort &",
            f"    {_SCRIPTED_MODEL_ENV} make run",
            "  or a real endpoint (any OpenAI-compatible one), e.g. DashScope:",
            f"    {_DASHSCOPE_ENV} make run"]
