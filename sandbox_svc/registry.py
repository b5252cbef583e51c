"""The durable registry of sandboxes (SQLite by default).

A restarted sandbox_svc reads it to re-adopt live sandboxes and reap dead ones,
so nothing it started is ever leaked silently. Writes are single statements or
short IMMEDIATE transactions: claiming a pooled sandbox and binding a session
are atomic even with several tasks (or processes) sharing the file.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Protocol, TypeVar

__all__ = ["Registry", "SandboxRecord", "SandboxStatus", "SqliteRegistry"]

T = TypeVar("T")


class SandboxStatus(StrEnum):
    STARTING = "starting"
    READY = "ready"
    PAUSED = "paused"


@dataclass(frozen=True)
class SandboxRecord:
    """What the control plane remembers about one sandbox."""

    sandbox_id: str
    template: str
    uid: int
    token: str
    status: SandboxStatus
    created_at: float
    last_active_at: float
    tenant: str = ""
    """Empty while the sandbox waits in the warm pool."""
    user_id: str = ""
    session_id: str = ""
    """Set when the sandbox is bound to a session key."""
    expires_at: float | None = None
    target: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def pooled(self) -> bool:
        return not self.tenant

    def with_changes(self, **changes: object) -> SandboxRecord:
        return replace(self, **changes)  # type: ignore[arg-type]


class Registry(Protocol):
    """Storage of sandbox records (SQLite here; Redis for several replicas)."""

    async def insert(self, record: SandboxRecord) -> None: ...
    async def update(self, record: SandboxRecord) -> None: ...
    async def remove(self, sandbox_id: str) -> None: ...
    async def get(self, sandbox_id: str) -> SandboxRecord | None: ...
    async def all(self) -> list[SandboxRecord]: ...
    async def find_session(
        self, tenant: str, user_id: str, session_id: str, template: str
    ) -> SandboxRecord | None: ...
    async def claim_pooled(
        self, template: str, tenant: str, user_id: str, session_id: str,
        now: float, expires_at: float,
    ) -> SandboxRecord | None: ...
    async def allocate_uid(self, base: int, count: int) -> int | None: ...
    async def clear_reservations(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS sandboxes (
    sandbox_id TEXT PRIMARY KEY,
    template TEXT NOT NULL,
    uid INTEGER NOT NULL UNIQUE,
    token TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_active_at REAL NOT NULL,
    tenant TEXT NOT NULL DEFAULT '',
    user_id TEXT NOT NULL DEFAULT '',
    session_id TEXT NOT NULL DEFAULT '',
    expires_at REAL,
    target TEXT NOT NULL DEFAULT '',
    labels TEXT NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX IF NOT EXISTS sandboxes_session
    ON sandboxes (tenant, user_id, session_id, template) WHERE session_id != '';
CREATE TABLE IF NOT EXISTS uid_reservations (uid INTEGER PRIMARY KEY);
"""

_COLUMNS = (
    "sandbox_id, template, uid, token, status, created_at, last_active_at, "
    "tenant, user_id, session_id, expires_at, target, labels"
)


def _row(record: SandboxRecord) -> tuple[object, ...]:
    return (
        record.sandbox_id, record.template, record.uid, record.token, record.status.value,
        record.created_at, record.last_active_at, record.tenant, record.user_id,
        record.session_id, record.expires_at, record.target, json.dumps(record.labels),
    )


def _record(row: tuple[object, ...]) -> SandboxRecord:
    (sid, template, uid, token, status, created, active, tenant, user, session,
     expires, target, labels) = row
    return SandboxRecord(
        sandbox_id=str(sid), template=str(template), uid=int(uid),  # type: ignore[call-overload]
        token=str(token), status=SandboxStatus(status), created_at=float(created),  # type: ignore[arg-type]
        last_active_at=float(active), tenant=str(tenant), user_id=str(user),  # type: ignore[arg-type]
        session_id=str(session),
        expires_at=None if expires is None else float(expires),  # type: ignore[arg-type]
        target=str(target), labels=json.loads(str(labels)),
    )


class SqliteRegistry:
    """Registry in one SQLite file (WAL), used from a worker thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        path.chmod(0o600)  # holds per-sandbox tokens
        self._lock = threading.Lock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                return fn(self._conn)

        return await asyncio.to_thread(locked)

    async def insert(self, record: SandboxRecord) -> None:
        def op(c: sqlite3.Connection) -> None:
            c.execute("BEGIN IMMEDIATE")
            try:
                c.execute(f"INSERT INTO sandboxes ({_COLUMNS}) VALUES ({','.join('?' * 13)})",
                          _row(record))
                c.execute("DELETE FROM uid_reservations WHERE uid = ?", (record.uid,))
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

        await self._run(op)

    async def update(self, record: SandboxRecord) -> None:
        def op(c: sqlite3.Connection) -> None:
            c.execute(
                f"REPLACE INTO sandboxes ({_COLUMNS}) VALUES ({','.join('?' * 13)})", _row(record)
            )

        await self._run(op)

    async def remove(self, sandbox_id: str) -> None:
        await self._run(lambda c: c.execute(
            "DELETE FROM sandboxes WHERE sandbox_id = ?", (sandbox_id,)))

    async def get(self, sandbox_id: str) -> SandboxRecord | None:
        def op(c: sqlite3.Connection) -> SandboxRecord | None:
            row = c.execute(f"SELECT {_COLUMNS} FROM sandboxes WHERE sandbox_id = ?",
                            (sandbox_id,)).fetchone()
            return None if row is None else _record(row)

        return await self._run(op)

    async def all(self) -> list[SandboxRecord]:
        def op(c: sqlite3.Connection) -> list[SandboxRecord]:
            rows = c.execute(f"SELECT {_COLUMNS} FROM sandboxes ORDER BY created_at").fetchall()
            return [_record(r) for r in rows]

        return await self._run(op)

    async def find_session(
        self, tenant: str, user_id: str, session_id: str, template: str
    ) -> SandboxRecord | None:
        def op(c: sqlite3.Connection) -> SandboxRecord | None:
            row = c.execute(
                f"SELECT {_COLUMNS} FROM sandboxes WHERE tenant = ? AND user_id = ? "
                "AND session_id = ? AND template = ?",
                (tenant, user_id, session_id, template),
            ).fetchone()
            return None if row is None else _record(row)

        return await self._run(op)

    async def claim_pooled(
        self, template: str, tenant: str, user_id: str, session_id: str,
        now: float, expires_at: float,
    ) -> SandboxRecord | None:
        # One statement: SQLite serialises writers, so two claimers never get
        # the same row, and the unique session index refuses a double binding.
        def op(c: sqlite3.Connection) -> SandboxRecord | None:
            try:
                row = c.execute(
                    "UPDATE sandboxes SET tenant = ?, user_id = ?, session_id = ?, "
                    "last_active_at = ?, expires_at = ? WHERE sandbox_id = ("
                    " SELECT sandbox_id FROM sandboxes WHERE template = ? AND tenant = '' "
                    " AND status = 'ready' ORDER BY created_at LIMIT 1) "
                    f"RETURNING {_COLUMNS}",
                    (tenant, user_id, session_id, now, expires_at, template),
                ).fetchone()
            except sqlite3.IntegrityError:
                return None
            return None if row is None else _record(row)

        return await self._run(op)

    async def allocate_uid(self, base: int, count: int) -> int | None:
        """Reserve the lowest free uid in [base, base+count); None when all are taken."""

        def op(c: sqlite3.Connection) -> int | None:
            c.execute("BEGIN IMMEDIATE")
            try:
                used = {r[0] for r in c.execute("SELECT uid FROM sandboxes")}
                used |= {r[0] for r in c.execute("SELECT uid FROM uid_reservations")}
                free = next((u for u in range(base, base + count) if u not in used), None)
                if free is not None:
                    c.execute("INSERT INTO uid_reservations (uid) VALUES (?)", (free,))
                c.execute("COMMIT")
                return free
            except BaseException:
                c.execute("ROLLBACK")
                raise

        return await self._run(op)

    async def clear_reservations(self) -> None:
        """Forget reservations of a previous process (its launches never finished)."""
        await self._run(lambda c: c.execute("DELETE FROM uid_reservations"))
