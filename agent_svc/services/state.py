"""Agent state: serialised state dicts per user, session and round (AgentScope Runtime's API).

``save_state(user_id, state, session_id=None, round_id=None)`` stores ``state``
in round ``round_id``, or in a new round numbered one past the highest (1 for
the first) when ``round_id`` is None, and answers the round. ``export_state``
answers a round's state, the latest round's when ``round_id`` is None, or
``None``. A missing ``session_id`` means the session ``"default"``.
"""

from __future__ import annotations

import copy
from abc import abstractmethod
from typing import Any

from agent_svc.errors import ServiceNotStartedError
from agent_svc.services.base import Service

__all__ = ["DEFAULT_SESSION", "InMemoryStateService", "StateService"]

DEFAULT_SESSION = "default"


class StateService(Service):
    """Stores agent state by user, session and round.

    Raises:
        ServiceNotStartedError: from any method before ``start()``.
    """

    @abstractmethod
    async def save_state(self, user_id: str, state: dict[str, Any],
                         session_id: str | None = None, round_id: int | None = None) -> int:
        """Store ``state``; answers the round it was stored in."""

    @abstractmethod
    async def export_state(self, user_id: str, session_id: str | None = None,
                           round_id: int | None = None) -> dict[str, Any] | None:
        """A round's state (the latest when ``round_id`` is None), or ``None``."""

    @abstractmethod
    async def list_rounds(self, user_id: str, session_id: str | None = None) -> list[int]:
        """The session's rounds, ascending."""

    @abstractmethod
    async def delete_state(self, user_id: str, session_id: str | None = None) -> None:
        """Forget every round of the session."""


class InMemoryStateService(StateService):
    """State in a dict: for tests and development (lost on stop)."""

    def __init__(self) -> None:
        self._store: dict[tuple[str, str], dict[int, dict[str, Any]]] | None = None

    async def start(self) -> None:
        if self._store is None:
            self._store = {}

    async def stop(self) -> None:
        self._store = None

    async def health(self) -> bool:
        return self._store is not None

    def _rounds(self, user_id: str, session_id: str | None) -> dict[int, dict[str, Any]]:
        if self._store is None:
            raise ServiceNotStartedError("the state service is not started")
        return self._store.setdefault((user_id, session_id or DEFAULT_SESSION), {})

    async def save_state(self, user_id: str, state: dict[str, Any],
                         session_id: str | None = None, round_id: int | None = None) -> int:
        rounds = self._rounds(user_id, session_id)
        if round_id is None:
            round_id = max(rounds, default=0) + 1
        rounds[round_id] = copy.deepcopy(state)
        return round_id

    async def export_state(self, user_id: str, session_id: str | None = None,
                           round_id: int | None = None) -> dict[str, Any] | None:
        rounds = self._rounds(user_id, session_id)
        if not rounds:
            return None
        state = rounds.get(max(rounds) if round_id is None else round_id)
        return copy.deepcopy(state) if state is not None else None

    async def list_rounds(self, user_id: str, session_id: str | None = None) -> list[int]:
        return sorted(self._rounds(user_id, session_id))

    async def delete_state(self, user_id: str, session_id: str | None = None) -> None:
        self._rounds(user_id, session_id).clear()
