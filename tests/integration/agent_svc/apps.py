"""Small AgentApps the integration tests serve (importable as ``module:attribute``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

from pydantic import BaseModel

from agent_svc.app import AgentApp
from agent_svc.protocol import AgentRequest, DataContent, Message, MessageType, TextContent


class Gate:
    """Lets a test hold a query function at a point and release it."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = asyncio.Event()


def echo_app(**options: Any) -> AgentApp:
    """Answers "you said: <text>" in two deltas; "fail" raises; "tool" adds a plugin call."""
    app = AgentApp(app_name="Echo", app_description="answers what it hears", **options)
    app.state_log: list[str] = []  # type: ignore[attr-defined]

    @app.init
    async def init(self: AgentApp) -> None:
        self.state_log.append("init")  # type: ignore[attr-defined]

    @app.shutdown
    def shutdown(self: AgentApp) -> None:
        self.state_log.append("shutdown")  # type: ignore[attr-defined]

    @app.query()
    async def query(self: AgentApp, msgs: list[Message], request: AgentRequest | None = None,
                    **kwargs: Any) -> AsyncIterator[object]:
        text = msgs[-1].text()
        if text == "fail":
            yield "about to fail"
            raise ValueError("the model is unreachable")
        if text == "tool":
            yield Message(type=MessageType.PLUGIN_CALL, role="assistant", content=[
                DataContent(data={"name": "run_shell_command", "arguments": '{"command":"ls"}',
                                  "call_id": "c1"})])
        yield "you said: "
        yield text
    return app


def gated_app(gate: Gate) -> AgentApp:
    """Streams "start", waits for the gate, then "end"; records cancellation."""
    app = AgentApp(app_name="Gated")

    @app.query()
    async def query(self: AgentApp, msgs: list[Message], request: AgentRequest | None = None,
                    **kwargs: Any) -> AsyncIterator[object]:
        yield "start"
        gate.entered.set()
        try:
            await gate.release.wait()
        except asyncio.CancelledError:
            gate.cancelled.set()
            raise
        yield (Message(id="m-end", content=[TextContent(text="end")]), True)
    return app


class Numbers(BaseModel):
    count: int


def endpoints_app() -> AgentApp:
    """Custom endpoints of every kind."""
    app = AgentApp(app_name="Endpoints")

    @app.endpoint("/sync", methods=["GET"])
    def sync_hello(name: str = "world") -> dict[str, str]:
        return {"hello": name}

    @app.endpoint("/async")
    async def async_double(body: Numbers) -> dict[str, int]:
        return {"double": body.count * 2}

    @app.endpoint("/agen")
    async def agen(body: Numbers) -> AsyncIterator[dict[str, int]]:
        for i in range(body.count):
            yield {"i": i}

    @app.endpoint("/gen", methods=["GET"])
    def gen() -> Iterator[object]:
        yield {"step": 1}
        yield Numbers(count=2)
        raise RuntimeError("generator broke")

    @app.get("/native")
    async def native() -> dict[str, str]:
        return {"native": "fastapi"}
    return app


def tasks_app(hold: asyncio.Event | None = None) -> AgentApp:
    """Tasks: a square (sync), a slow one (waits for ``hold``), an idempotent slow one."""
    app = AgentApp(app_name="Tasks")

    @app.task("/square")
    def square(data: dict[str, Any]) -> dict[str, int]:
        return {"result": data["x"] ** 2}

    @app.task("/broken")
    async def broken(data: dict[str, Any]) -> None:
        raise KeyError("missing")

    @app.task("/slow")
    async def slow(data: dict[str, Any]) -> str:
        if hold is not None:
            await hold.wait()
        return "slow done"

    @app.task("/slow-idempotent", idempotent=True)
    async def slow_again(data: dict[str, Any]) -> str:
        if hold is not None:
            await hold.wait()
        return "ran again"
    return app


app = echo_app()
"""For ``sandgate agent-server --app tests.integration.agent_svc.apps:app``."""
task_app = tasks_app()
"""For the Celery worker: ``sandgate agent-worker --app <this module>:task_app``."""
