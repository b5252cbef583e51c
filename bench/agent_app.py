"""The trivial AgentApp of the /process benchmark: one text message per request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from agent_svc.app import AgentApp
from agent_svc.protocol import AgentRequest, Message

__all__ = ["app"]

app = AgentApp(app_name="bench", app_description="answers pong")


@app.query()
async def pong(self: AgentApp, msgs: list[Message], request: AgentRequest | None = None,
               **kwargs: Any) -> AsyncIterator[object]:
    yield "pong"
