"""State, session history and memory services (AgentScope Runtime's interfaces).

In-memory and SQLite backends import with the package; the Redis backends live
in :mod:`agent_svc.services.redis_backend` (they need ``redis``).
"""

from agent_svc.services.base import Service, ServiceWithLifecycleManager
from agent_svc.services.memory import InMemoryMemoryService, MemoryService
from agent_svc.services.session import (
    InMemorySessionHistoryService,
    Session,
    SessionHistoryService,
)
from agent_svc.services.sqlite_backend import (
    SQLiteMemoryService,
    SQLiteSessionHistoryService,
    SQLiteStateService,
)
from agent_svc.services.state import InMemoryStateService, StateService

__all__ = [
    "InMemoryMemoryService",
    "InMemorySessionHistoryService",
    "InMemoryStateService",
    "MemoryService",
    "SQLiteMemoryService",
    "SQLiteSessionHistoryService",
    "SQLiteStateService",
    "Service",
    "ServiceWithLifecycleManager",
    "Session",
    "SessionHistoryService",
    "StateService",
]
