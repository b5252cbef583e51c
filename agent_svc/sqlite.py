"""One SQLite database file used from asyncio: a connection, a lock, a worker thread.

SQLite calls block, so each runs in a thread (``asyncio.to_thread``), one at a
time per database (the lock); WAL journaling keeps readers of other processes
unblocked and ``synchronous=NORMAL`` makes a commit durable across a process
crash (not across a power loss, which needs FULL).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from agent_svc.errors import ServiceNotStartedError

__all__ = ["SQLiteDB"]

T = TypeVar("T")


class SQLiteDB:
    """A SQLite file opened by :meth:`open` with a schema, closed by :meth:`close`.

    Args:
        path: the database file (its directory is created).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    async def open(self, schema: str) -> None:
        """Open (creating) the file and apply ``schema`` (idempotent DDL)."""
        if self._conn is not None:
            return

        def _open() -> sqlite3.Connection:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.executescript(schema)
            return conn

        self._conn = await asyncio.to_thread(_open)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.to_thread(conn.close)

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(connection)`` in one transaction, in a worker thread.

        Raises:
            ServiceNotStartedError: the database is not open.
        """
        conn = self._conn
        if conn is None:
            raise ServiceNotStartedError(f"{self.path} is not open: call start() first")

        def _call() -> T:
            with self._lock:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(conn)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                return result

        return await asyncio.to_thread(_call)

    async def fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of one query."""
        return await self.run(lambda conn: conn.execute(sql, params).fetchall())

    async def execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Run one statement; answers the number of rows it changed."""
        return await self.run(lambda conn: conn.execute(sql, params).rowcount)
