"""What a task is, and what runs it.

``@app.task(path, queue=..., idempotent=...)`` registers a :class:`TaskSpec`;
``POST <path>`` submits its JSON body to the app's :class:`TaskRunner` and
answers ``{task_id, status: "submitted"}``; ``GET <path>/{task_id}`` answers
``{status, result}`` with a status of ``pending``, ``running``, ``finished`` or
``error`` (AgentScope Runtime's words). A task function takes the body as its
one argument (or no argument), may be sync (run in a thread), async, or a
generator (its items are collected into a list); its return value must be JSON
data (pydantic models and dataclasses are converted).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from agent_svc.endpoints import to_jsonable

__all__ = ["TaskInfo", "TaskRunner", "TaskSpec", "TaskStatus", "call_task"]


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    FINISHED = "finished"
    ERROR = "error"


@dataclass(frozen=True)
class TaskSpec:
    """A task function registered at a path."""

    name: str
    """The task's name: the path it is submitted to."""
    func: Callable[..., Any]
    queue: str = "celery"
    """Celery queue the task goes to (the embedded queue has one queue for all)."""
    idempotent: bool = False
    """Safe to run twice: a task of this kind that was running when the process
    stopped is run again on the next start instead of being marked ``error``."""


@dataclass(frozen=True)
class TaskInfo:
    """A task's status and, once finished, its result (its error message on ``error``)."""

    task_id: str
    status: TaskStatus
    result: Any = None

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status.value, "result": self.result}


class TaskRunner(Protocol):
    """Runs the app's tasks: the embedded SQLite queue or Celery."""

    async def start(self, specs: Mapping[str, TaskSpec]) -> None:
        """Begin running ``specs`` (name -> spec), recovering work left by a previous run."""

    async def stop(self) -> None:
        """Stop; tasks still running are handled as the runner documents."""

    async def submit(self, name: str, payload: Any) -> str:
        """Queue a run of the task ``name`` with ``payload``; answers the task id.

        Raises:
            TaskNotFoundError: no task of that name is registered.
        """

    async def get(self, task_id: str) -> TaskInfo:
        """The task's status and result.

        Raises:
            TaskNotFoundError: no task has that id (Celery cannot tell: ``pending``).
        """


async def call_task(spec: TaskSpec, payload: Any) -> Any:
    """Run one task function with ``payload`` and answer its result as JSON data."""
    func = spec.func
    args = (payload,) if inspect.signature(func).parameters else ()
    if inspect.isasyncgenfunction(func):
        return to_jsonable([item async for item in func(*args)])
    if inspect.iscoroutinefunction(func):
        return to_jsonable(await func(*args))

    def _sync() -> Any:
        value = func(*args)
        if inspect.isgenerator(value):
            value = list(value)
        return value

    return to_jsonable(await asyncio.to_thread(_sync))
