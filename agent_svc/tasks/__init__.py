"""Background tasks: ``@app.task(path)``, run by the embedded SQLite queue or by Celery.

The Celery runner lives in :mod:`agent_svc.tasks.celery_runner` and is imported
only when a broker is configured (Celery is a heavy import).
"""

from agent_svc.tasks.base import TaskInfo, TaskRunner, TaskSpec, TaskStatus, call_task
from agent_svc.tasks.embedded import INTERRUPTED, EmbeddedTaskRunner

__all__ = [
    "INTERRUPTED",
    "EmbeddedTaskRunner",
    "TaskInfo",
    "TaskRunner",
    "TaskSpec",
    "TaskStatus",
    "call_task",
]
