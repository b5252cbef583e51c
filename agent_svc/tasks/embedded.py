"""The embedded task queue: durable in SQLite, run by a few asyncio workers in-process.

A submitted task is written to ``tasks`` before its id is answered, so no
restart loses it: pending tasks run on the next start. A task that was
``running`` when the process stopped (gracefully or not) is not silently run
twice: on the next start it is marked ``error`` with the reason, unless its
spec is declared ``idempotent`` (``@app.task(path, idempotent=True)``), in which
case it runs again. A ``finished`` or ``error`` task is never run again.

One process owns a task file at a time (a lock beside it): a second server on
the same state directory refuses to start rather than mark the first one's
running tasks as interrupted.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent_svc.errors import TaskNotFoundError
from agent_svc.sqlite import SQLiteDB
from agent_svc.tasks.base import TaskInfo, TaskSpec, TaskStatus, call_task

__all__ = ["INTERRUPTED", "EmbeddedTaskRunner"]

logger = logging.getLogger(__name__)

INTERRUPTED = ("the server stopped while this task was running; it was not run again because "
               "its task is not declared idempotent (@app.task(..., idempotent=True))")
"""The ``result`` of a task that was running when its process stopped."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    idempotent INTEGER NOT NULL,
    submitted_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS tasks_status ON tasks (status, submitted_at);
"""


class EmbeddedTaskRunner:
    """Tasks in a SQLite file, run by ``concurrency`` workers of this process.

    Args:
        path: the database file, e.g. ``<state_dir>/agent-tasks.db``.
        concurrency: tasks run at once.
    """

    def __init__(self, path: Path, concurrency: int = 4) -> None:
        self._db = SQLiteDB(path)
        self._concurrency = concurrency
        self._specs: Mapping[str, TaskSpec] = {}
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._lock_path = path.with_name(path.name + ".lock")
        self._lock_fd: int | None = None

    def _take_lock(self) -> None:
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise RuntimeError(f"{self._db.path} is used by another agent server (pid "
                               f"{owner}); give each server its own SANDGATE_AGENT_STATE_DIR"
                               ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    async def start(self, specs: Mapping[str, TaskSpec]) -> None:
        """Take the task file, recover what a previous process left, start the workers.

        Raises:
            RuntimeError: another process owns the task file.
        """
        self._specs = dict(specs)
        self._take_lock()
        await self._db.open(_SCHEMA)
        idempotent = [name for name, spec in self._specs.items() if spec.idempotent]

        def _recover(conn: sqlite3.Connection) -> list[str]:
            marks = ",".join("?" * len(idempotent))
            if idempotent:
                conn.execute(f"UPDATE tasks SET status='pending', started_at=NULL "
                             f"WHERE status='running' AND name IN ({marks})", idempotent)
            conn.execute("UPDATE tasks SET status='error', result=?, finished_at=? "
                         "WHERE status='running'", (json.dumps(INTERRUPTED), time.time()))
            rows = conn.execute("SELECT id FROM tasks WHERE status='pending' "
                                "ORDER BY submitted_at").fetchall()
            return [row[0] for row in rows]

        for task_id in await self._db.run(_recover):
            self._queue.put_nowait(task_id)
        loop = asyncio.get_running_loop()
        self._workers = [loop.create_task(self._work(), name=f"agent-task-worker-{i}")
                         for i in range(self._concurrency)]

    async def stop(self) -> None:
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        await self._db.close()
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # releases the lock

    async def submit(self, name: str, payload: Any) -> str:
        spec = self._specs.get(name)
        if spec is None:
            raise TaskNotFoundError(f"no task is registered at {name!r}")
        task_id = str(uuid.uuid4())
        await self._db.execute(
            "INSERT INTO tasks (id, name, payload, status, idempotent, submitted_at) "
            "VALUES (?, ?, ?, 'pending', ?, ?)",
            (task_id, name, json.dumps(payload), int(spec.idempotent), time.time()))
        self._queue.put_nowait(task_id)
        return task_id

    async def get(self, task_id: str) -> TaskInfo:
        rows = await self._db.fetch("SELECT status, result FROM tasks WHERE id = ?", (task_id,))
        if not rows:
            raise TaskNotFoundError(f"no task has the id {task_id!r}")
        status, result = rows[0]
        return TaskInfo(task_id, TaskStatus(status),
                        json.loads(result) if result is not None else None)

    async def _claim(self, task_id: str) -> tuple[str, Any] | None:
        def _take(conn: sqlite3.Connection) -> tuple[str, Any] | None:
            row = conn.execute("SELECT name, payload FROM tasks WHERE id = ? AND "
                               "status = 'pending'", (task_id,)).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE tasks SET status='running', started_at=? WHERE id = ?",
                         (time.time(), task_id))
            return str(row[0]), json.loads(row[1])

        return await self._db.run(_take)

    async def _finish(self, task_id: str, status: TaskStatus, result: Any) -> None:
        await self._db.execute(
            "UPDATE tasks SET status=?, result=?, finished_at=? WHERE id = ?",
            (status.value, json.dumps(result), time.time(), task_id))

    async def _work(self) -> None:
        while True:
            task_id = await self._queue.get()
            claimed = await self._claim(task_id)
            if claimed is None:
                continue
            name, payload = claimed
            spec = self._specs.get(name)
            if spec is None:
                await self._finish(task_id, TaskStatus.ERROR,
                                   f"this app has no task at {name!r} any more")
                continue
            try:
                result = await call_task(spec, payload)
            except asyncio.CancelledError:
                # Stopping: leave the row 'running'; the next start decides (re-run
                # when idempotent, else error), exactly as after a crash.
                raise
            except Exception as exc:
                logger.exception("task %s (%s) failed", task_id, name)
                await self._finish(task_id, TaskStatus.ERROR, f"{type(exc).__name__}: {exc}")
            else:
                try:
                    json.dumps(result)
                except (TypeError, ValueError) as exc:
                    await self._finish(task_id, TaskStatus.ERROR,
                                       f"the task's result is not JSON: {exc}")
                else:
                    await self._finish(task_id, TaskStatus.FINISHED, result)
