"""The registry in one SQLite file (WAL): durable, shared safely by several processes.

Writes are single statements or short IMMEDIATE transactions, so binding a
session is atomic even with several managers (or processes) on the file: SQLite
serialises writers, and a unique index refuses a second sandbox for one session.

The schema is versioned with ``PRAGMA user_version``:

- 0 (unversioned, before sandbox uids moved to the local backend): a ``uid``
  column and a ``uid_reservations`` table. Opening such a file copies its rows
  into the current table without ``uid`` and drops the reservations.
- 2: the current schema below.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sandbox_svc.errors import RegistryUnavailableError, SessionConflictError
from sandbox_svc.registry import Binding, SandboxRecord, SandboxStatus, SessionKey

__all__ = ["SCHEMA_VERSION", "SqliteRegistry"]

T = TypeVar("T")

SCHEMA_VERSION = 2

_TABLE = """
CREATE TABLE {name} (
    sandbox_id TEXT PRIMARY KEY,
    template TEXT NOT NULL,
    token TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_active_at REAL NOT NULL,
    tenant TEXT NOT NULL DEFAULT '',
    user_id TEXT NOT NULL DEFAULT '',
    session_id TEXT NOT NULL DEFAULT '',
    expires_at REAL,
    target TEXT NOT NULL DEFAULT '',
    labels TEXT NOT NULL DEFAULT '{{}}'
)
"""
_SESSION_INDEX = """
CREATE UNIQUE INDEX IF NOT EXISTS sandboxes_session
    ON sandboxes (tenant, user_id, session_id, template) WHERE session_id != ''
"""

_FIELDS = ("sandbox_id", "template", "token", "status", "created_at", "last_active_at",
           "tenant", "user_id", "session_id", "expires_at", "target", "labels")
_COLUMNS = ", ".join(_FIELDS)
_PLACEHOLDERS = ", ".join("?" * len(_FIELDS))
_KEY_MATCH = "tenant = ? AND user_id = ? AND session_id = ? AND template = ?"
_OLDEST_POOLED = ("SELECT sandbox_id FROM sandboxes WHERE template = ? AND tenant = '' "
                  "AND status = ? ORDER BY created_at LIMIT 1")
"""The sandbox a claim takes: parameters template, READY."""


def _row(record: SandboxRecord) -> tuple[object, ...]:
    return (
        record.sandbox_id, record.template, record.token, record.status.value,
        record.created_at, record.last_active_at, record.tenant, record.user_id,
        record.session_id, record.expires_at, record.target, json.dumps(record.labels),
    )


def _record(row: tuple[object, ...]) -> SandboxRecord:
    (sid, template, token, status, created, active, tenant, user, session,
     expires, target, labels) = row
    return SandboxRecord(
        sandbox_id=str(sid), template=str(template), token=str(token),
        status=SandboxStatus(status), created_at=float(created),  # type: ignore[arg-type]
        last_active_at=float(active), tenant=str(tenant), user_id=str(user),  # type: ignore[arg-type]
        session_id=str(session),
        expires_at=None if expires is None else float(expires),  # type: ignore[arg-type]
        target=str(target), labels=json.loads(str(labels)),
    )


def _key(key: SessionKey) -> tuple[str, str, str, str]:
    return (key.tenant, key.user_id, key.session_id, key.template)


def _columns(c: sqlite3.Connection, table: str) -> list[str]:
    return [str(r[1]) for r in c.execute(f"PRAGMA table_info({table})")]


def _migrate(c: sqlite3.Connection, path: Path) -> None:
    """Bring the file to SCHEMA_VERSION, in one transaction (another process may race us)."""
    c.execute("BEGIN IMMEDIATE")
    try:
        version = int(c.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise RegistryUnavailableError(
                f"registry {path} has schema version {version}, written by a newer Sandgate; "
                f"this build reads version {SCHEMA_VERSION}. Upgrade, or move the file away "
                "(its sandboxes are then reaped as leftovers)")
        if version < SCHEMA_VERSION:
            old = _columns(c, "sandboxes")
            c.execute(_TABLE.format(name="sandboxes_new"))
            if old:
                # Copy the columns both schemas have; the old uid column is dropped.
                shared = ", ".join(f for f in _FIELDS if f in old)
                c.execute(f"INSERT INTO sandboxes_new ({shared}) SELECT {shared} FROM sandboxes")
                c.execute("DROP TABLE sandboxes")  # drops its session index too
            c.execute("ALTER TABLE sandboxes_new RENAME TO sandboxes")
            c.execute("DROP TABLE IF EXISTS uid_reservations")
            c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        c.execute(_SESSION_INDEX)
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise


class SqliteRegistry:
    """Registry in one SQLite file, used from a worker thread.

    Raises:
        RegistryUnavailableError: (on construction) the file has a newer schema.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        path.chmod(0o600)  # holds per-sandbox tokens
        self._lock = threading.Lock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        # WAL's NORMAL: a commit is not fsynced, yet the file stays consistent; only
        # an OS crash or power loss can drop the last commits, and that also ends
        # every sandbox the rows describe (a crashed service loses nothing).
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        try:
            _migrate(self._conn, path)
        except BaseException:
            self._conn.close()
            raise

    async def close(self) -> None:
        """Close the file. Raises: nothing."""
        def op() -> None:
            with self._lock:
                self._conn.close()

        await asyncio.to_thread(op)

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                return fn(self._conn)

        return await asyncio.to_thread(locked)

    async def insert(self, record: SandboxRecord) -> None:
        """See :meth:`Registry.insert`."""
        def op(c: sqlite3.Connection) -> None:
            try:
                c.execute(f"INSERT INTO sandboxes ({_COLUMNS}) VALUES ({_PLACEHOLDERS})",
                          _row(record))
            except sqlite3.IntegrityError as exc:
                if record.session is not None and \
                        exc.sqlite_errorcode == sqlite3.SQLITE_CONSTRAINT_UNIQUE:
                    raise SessionConflictError(str(record.session)) from None
                raise

        await self._run(op)

    async def update(self, record: SandboxRecord) -> bool:
        """See :meth:`Registry.update`."""
        def op(c: sqlite3.Connection) -> bool:
            assignments = ", ".join(f"{f} = ?" for f in _FIELDS[1:])
            try:
                cursor = c.execute(
                    f"UPDATE sandboxes SET {assignments} WHERE sandbox_id = ?",
                    (*_row(record)[1:], record.sandbox_id))
            except sqlite3.IntegrityError:
                raise SessionConflictError(str(record.session)) from None
            return cursor.rowcount == 1

        return await self._run(op)

    async def remove(self, sandbox_id: str) -> None:
        """See :meth:`Registry.remove`."""
        await self._run(lambda c: c.execute(
            "DELETE FROM sandboxes WHERE sandbox_id = ?", (sandbox_id,)))

    async def get(self, sandbox_id: str) -> SandboxRecord | None:
        """See :meth:`Registry.get`."""
        def op(c: sqlite3.Connection) -> SandboxRecord | None:
            row = c.execute(f"SELECT {_COLUMNS} FROM sandboxes WHERE sandbox_id = ?",
                            (sandbox_id,)).fetchone()
            return None if row is None else _record(row)

        return await self._run(op)

    async def all(self) -> list[SandboxRecord]:
        """See :meth:`Registry.all`."""
        def op(c: sqlite3.Connection) -> list[SandboxRecord]:
            rows = c.execute(f"SELECT {_COLUMNS} FROM sandboxes ORDER BY created_at").fetchall()
            return [_record(r) for r in rows]

        return await self._run(op)

    async def bind_session(self, key: SessionKey, now: float,
                           expires_at: float) -> Binding | None:
        """See :meth:`Registry.bind_session`: one IMMEDIATE transaction."""
        def op(c: sqlite3.Connection) -> Binding | None:
            c.execute("BEGIN IMMEDIATE")
            try:
                binding = _bind(c, key, now, expires_at)
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            return binding

        return await self._run(op)

    async def claim_pooled(self, template: str, tenant: str, now: float, expires_at: float,
                           labels: dict[str, str]) -> SandboxRecord | None:
        """See :meth:`Registry.claim_pooled`: one UPDATE statement (atomic on its own)."""
        def op(c: sqlite3.Connection) -> SandboxRecord | None:
            row = c.execute(
                "UPDATE sandboxes SET tenant = ?, last_active_at = ?, expires_at = ?, "
                f"labels = ? WHERE sandbox_id = ({_OLDEST_POOLED}) RETURNING {_COLUMNS}",
                (tenant, now, expires_at, json.dumps(labels), template,
                 SandboxStatus.READY.value)).fetchone()
            return None if row is None else _record(row)

        return await self._run(op)


def _bind(c: sqlite3.Connection, key: SessionKey, now: float,
          expires_at: float) -> Binding | None:
    row = c.execute(
        f"UPDATE sandboxes SET last_active_at = ?, "
        f"expires_at = MAX(COALESCE(expires_at, 0), ?) WHERE {_KEY_MATCH} "
        f"RETURNING {_COLUMNS}", (now, expires_at, *_key(key))).fetchone()
    if row is not None:
        return Binding(_record(row), newly_bound=False, pool_hit=False)
    row = c.execute(
        "UPDATE sandboxes SET tenant = ?, user_id = ?, session_id = ?, "
        f"last_active_at = ?, expires_at = ? WHERE sandbox_id = ({_OLDEST_POOLED}) "
        f"RETURNING {_COLUMNS}",
        (key.tenant, key.user_id, key.session_id, now, expires_at, key.template,
         SandboxStatus.READY.value)).fetchone()
    if row is not None:
        return Binding(_record(row), newly_bound=True, pool_hit=True)
    return None
