"""Lifecycle events fanned out to WatchSandboxes subscribers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum

from sandbox_svc.registry import SandboxRecord

__all__ = ["EventBus", "EventType", "SandboxEvent"]


class EventType(StrEnum):
    CREATED = "created"
    BOUND = "bound"
    PAUSED = "paused"
    RESUMED = "resumed"
    DELETED = "deleted"
    EXPIRED = "expired"
    ADOPTED = "adopted"


@dataclass(frozen=True)
class SandboxEvent:
    type: EventType
    record: SandboxRecord
    time: float


class EventBus:
    """Best-effort fan-out: a subscriber that falls 256 events behind is dropped."""

    _QUEUE_SIZE = 256

    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[SandboxEvent | None]] = set()

    def publish(self, event_type: EventType, record: SandboxRecord) -> None:
        event = SandboxEvent(event_type, record, time.time())
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self._subscribers.discard(queue)
                queue.get_nowait()
                queue.put_nowait(None)  # tells the subscriber it was dropped

    async def subscribe(self) -> AsyncIterator[SandboxEvent]:
        queue: asyncio.Queue[SandboxEvent | None] = asyncio.Queue(self._QUEUE_SIZE)
        self._subscribers.add(queue)
        try:
            while (event := await queue.get()) is not None:
                yield event
        finally:
            self._subscribers.discard(queue)

    def close(self) -> None:
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(None)
            except asyncio.QueueFull:
                pass
        self._subscribers.clear()
