"""AgentService over gRPC (placeholder until the service kit lands)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent_svc.app import AgentApp
    from agent_svc.auth import Authenticator
    from agent_svc.settings import AgentSettings

__all__ = ["start_grpc"]


async def start_grpc(app: AgentApp, settings: AgentSettings, host: str,
                     authenticator: Authenticator
                     ) -> tuple[str, Callable[[float], Awaitable[None]]]:
    """Start AgentService; answers its address and its stop function.

    Raises:
        NotImplementedError: not built yet.
    """
    raise NotImplementedError("AgentService gRPC is not built yet")
