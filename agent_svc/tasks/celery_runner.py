"""Tasks on Celery with Redis (``SANDGATE_TASK_BROKER=redis://...``).

The HTTP server only sends tasks and reads their state from the result backend;
``sandgate agent-worker --app module:app`` (see :func:`run_worker`) imports the
same app and executes them. A task is named ``sandgate:<path>`` and goes to its
spec's queue. Celery cannot tell an unknown task id from a queued one: both
read ``pending``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from celery import Celery
from celery.result import AsyncResult

from agent_svc.errors import TaskNotFoundError
from agent_svc.tasks.base import TaskInfo, TaskSpec, TaskStatus, call_task

__all__ = ["CeleryTaskRunner", "build_celery", "run_worker", "task_name"]

_STATES = {
    "PENDING": TaskStatus.PENDING, "RECEIVED": TaskStatus.PENDING,
    "STARTED": TaskStatus.RUNNING, "RETRY": TaskStatus.RUNNING,
    "SUCCESS": TaskStatus.FINISHED, "FAILURE": TaskStatus.ERROR, "REVOKED": TaskStatus.ERROR,
}


def task_name(path: str) -> str:
    return f"sandgate:{path}"


def build_celery(specs: Mapping[str, TaskSpec], broker: str, backend: str = "") -> Celery:
    """A Celery app with one Celery task per spec (used by the server and the worker)."""
    celery = Celery("sandgate-agent", broker=broker, backend=backend or broker)
    celery.conf.update(
        task_track_started=True, task_serializer="json", result_serializer="json",
        accept_content=["json"], broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False, task_default_queue="celery",
        # A worker that dies mid-task leaves it to be redelivered only when it is
        # declared idempotent (acks_late below); others are acknowledged on receipt.
        task_acks_late=False)
    for name, spec in specs.items():
        _register(celery, name, spec)
    return celery


def _register(celery: Celery, name: str, spec: TaskSpec) -> None:
    def run(payload: Any) -> Any:
        return asyncio.run(call_task(spec, payload))

    celery.task(name=task_name(name), acks_late=spec.idempotent, queue=spec.queue)(run)


class CeleryTaskRunner:
    """Sends tasks to Celery workers and reads their results.

    Args:
        broker: ``redis://host:port/db``.
        backend: result backend; empty means the broker.
    """

    def __init__(self, broker: str, backend: str = "") -> None:
        self._broker = broker
        self._backend = backend
        self._celery: Celery | None = None
        self._specs: Mapping[str, TaskSpec] = {}

    async def start(self, specs: Mapping[str, TaskSpec]) -> None:
        self._specs = dict(specs)
        self._celery = build_celery(self._specs, self._broker, self._backend)

    async def stop(self) -> None:
        celery, self._celery = self._celery, None
        if celery is not None:
            await asyncio.to_thread(celery.close)

    def _app(self) -> Celery:
        if self._celery is None:
            raise TaskNotFoundError("the task runner is not started")
        return self._celery

    async def submit(self, name: str, payload: Any) -> str:
        spec = self._specs.get(name)
        if spec is None:
            raise TaskNotFoundError(f"no task is registered at {name!r}")
        celery = self._app()
        result = await asyncio.to_thread(
            celery.send_task, task_name(name), args=[payload], queue=spec.queue)
        return str(result.id)

    async def get(self, task_id: str) -> TaskInfo:
        celery = self._app()

        def _read() -> TaskInfo:
            result = AsyncResult(task_id, app=celery)
            state = str(result.state)
            status = _STATES.get(state, TaskStatus.PENDING)
            if status is TaskStatus.FINISHED:
                return TaskInfo(task_id, status, result.result)
            if status is TaskStatus.ERROR:
                info = result.info
                text = f"{type(info).__name__}: {info}" if isinstance(info, BaseException) \
                    else str(info)
                return TaskInfo(task_id, status, text)
            return TaskInfo(task_id, status)

        return await asyncio.to_thread(_read)


def run_worker(specs: Mapping[str, TaskSpec], broker: str, backend: str = "",
               concurrency: int = 4, extra: Sequence[str] = ()) -> None:
    """Run a Celery worker for ``specs`` in the foreground (listening on their queues).

    Raises:
        SystemExit: when the worker exits.
    """
    celery = build_celery(specs, broker, backend)
    queues = sorted({spec.queue for spec in specs.values()} | {"celery"})
    celery.worker_main(["worker", "--loglevel=INFO", "--pool=threads",
                        f"--concurrency={concurrency}", "-Q", ",".join(queues), *extra])
