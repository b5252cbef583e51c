"""A planner -> executor -> reviewer pipeline served as an AgentApp.

The three agents are deterministic stand-ins for model-backed ones (no model
key needed): the planner splits an arithmetic question into steps, the
executor works them out, the reviewer checks the result again and signs off.
Swap any of them for a real agent (the built-in ReAct agent, an agentscope
agent) without touching the pipeline.

    python examples/pipeline/app.py                 # serve, ask one question, print the stream
    sandgate agent-server --app app:app             # (from this folder) just serve it
"""

from __future__ import annotations

import ast
import asyncio
import json
import operator
import re
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout

from sandgate.agent import AgentApp, AgentRequest, Message, TextContent, sequential  # noqa: E402

_OPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: operator.pow}


def evaluate(expression: str) -> float:
    """An arithmetic expression's value (numbers and + - * / ** only)."""
    def walk(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        raise ValueError(f"not plain arithmetic: {expression!r}")
    return float(walk(ast.parse(expression, mode="eval").body))


def _question(msgs: list[Message]) -> str:
    user = [m for m in msgs if m.role == "user"]
    return user[-1].text() if user else ""


async def planner(msgs: list[Message], request: AgentRequest) -> AsyncIterator[object]:
    """Finds the arithmetic in the question and plans one step per operation."""
    expression = "".join(re.findall(r"[\d.+\-*/() ]+", _question(msgs))).strip()
    yield "Plan:\n"
    yield f"1. evaluate {expression}\n"
    yield "2. hand the result to the reviewer"


async def executor(msgs: list[Message], request: AgentRequest) -> Message:
    """Carries out the plan's first step."""
    plan = next(m.text() for m in msgs if m.metadata.get("agent") == "planner")
    expression = plan.split("1. evaluate ", 1)[1].splitlines()[0]
    value = evaluate(expression)
    return Message(role="assistant", content=[TextContent(text=f"{expression} = {value:g}")])


async def reviewer(msgs: list[Message], request: AgentRequest) -> str:
    """Recomputes the executor's claim and approves or rejects it."""
    claim = next(m.text() for m in msgs if m.metadata.get("agent") == "executor")
    expression, _, stated = claim.rpartition(" = ")
    ok = abs(evaluate(expression) - float(stated)) < 1e-9
    return f"Review: {'approved' if ok else 'rejected'} ({claim})"


app = AgentApp(app_name="Pipeline", app_description="planner -> executor -> reviewer")
app.query()(sequential(planner, executor, reviewer, name="plan_execute_review").as_query())


async def _demo(question: str) -> None:
    import httpx2 as httpx

    from agent_svc.server import start_agent_server
    from agent_svc.settings import AgentSettings

    settings = AgentSettings(port=0, grpc_port=None, history="memory")
    server = await start_agent_server(app, settings)
    try:
        body = {"input": [{"role": "user", "content": [{"type": "text", "text": question}]}]}
        async with httpx.AsyncClient() as client, \
                client.stream("POST", f"{server.http_url}/process", json=body) as reply:
            async for line in reply.aiter_lines():
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    if event["object"] == "message" and event["status"] == "completed":
                        agent = event["metadata"].get("agent")
                        text = "".join(c.get("text") or "" for c in event["content"] or ())
                        print(f"[{agent}] {text}")
                    elif event["object"] == "response":
                        print(f"-- response {event['status']}")
    finally:
        await server.stop()


if __name__ == "__main__":
    asyncio.run(_demo(" ".join(sys.argv[1:]) or "What is 17 * 23 + 4?"))
