"""Host agents with Sandgate: ``from sandgate.agent import AgentApp, AgentRequest``.

The names AgentScope Runtime users know, re-exported from :mod:`agent_svc`
(lazily, so that importing the generated ``sandgate.agent.v1`` stubs stays
cheap). Nothing here imports ``mcp`` or the sandbox and gateway services.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent_svc.app import AgentApp
    from agent_svc.pipeline import FanOut, Sequential, fan_out, sequential
    from agent_svc.protocol import (
        AgentRequest,
        DataContent,
        ImageContent,
        Message,
        MessageType,
        Response,
        Role,
        RunStatus,
        TextContent,
    )
    from agent_svc.services import (
        InMemoryMemoryService,
        InMemorySessionHistoryService,
        InMemoryStateService,
        MemoryService,
        ServiceWithLifecycleManager,
        Session,
        SessionHistoryService,
        SQLiteMemoryService,
        SQLiteSessionHistoryService,
        SQLiteStateService,
        StateService,
    )
    from agent_svc.services.redis_backend import (
        RedisMemoryService,
        RedisSessionHistoryService,
        RedisStateService,
    )

__all__ = [
    "AgentApp",
    "AgentRequest",
    "DataContent",
    "FanOut",
    "ImageContent",
    "InMemoryMemoryService",
    "InMemorySessionHistoryService",
    "InMemoryStateService",
    "MemoryService",
    "Message",
    "MessageType",
    "RedisMemoryService",
    "RedisSessionHistoryService",
    "RedisStateService",
    "Response",
    "Role",
    "RunStatus",
    "SQLiteMemoryService",
    "SQLiteSessionHistoryService",
    "SQLiteStateService",
    "Sequential",
    "ServiceWithLifecycleManager",
    "Session",
    "SessionHistoryService",
    "StateService",
    "TextContent",
    "fan_out",
    "sequential",
]

_HOMES = {
    "AgentApp": "agent_svc.app",
    "FanOut": "agent_svc.pipeline", "Sequential": "agent_svc.pipeline",
    "fan_out": "agent_svc.pipeline", "sequential": "agent_svc.pipeline",
    **dict.fromkeys(["AgentRequest", "DataContent", "ImageContent", "Message", "MessageType",
                     "Response", "Role", "RunStatus", "TextContent"], "agent_svc.protocol"),
    **dict.fromkeys(["RedisMemoryService", "RedisSessionHistoryService", "RedisStateService"],
                    "agent_svc.services.redis_backend"),
}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'sandgate.agent' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES.get(name, "agent_svc.services")), name)
