"""State, session history and memory in SQLite: the embedded, durable default.

Each service takes the database file (``<state_dir>/agent.db`` when the server
builds them); they may share one file, each keeping its own tables.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from agent_svc.protocol import Message
from agent_svc.services.base import as_messages
from agent_svc.services.memory import MemoryService, page, rank
from agent_svc.services.session import (
    MessageInput,
    Session,
    SessionHistoryService,
    session_id_or_new,
)
from agent_svc.services.state import DEFAULT_SESSION, StateService
from agent_svc.sqlite import SQLiteDB

__all__ = ["SQLiteMemoryService", "SQLiteSessionHistoryService", "SQLiteStateService"]


class _SQLiteService:
    _schema = ""

    def __init__(self, path: Path) -> None:
        self._db = SQLiteDB(path)

    async def start(self) -> None:
        await self._db.open(self._schema)

    async def stop(self) -> None:
        await self._db.close()

    async def health(self) -> bool:
        try:
            await self._db.fetch("SELECT 1")
        except Exception:
            return False
        return True


class SQLiteStateService(_SQLiteService, StateService):
    """Agent state rounds in the table ``agent_state``."""

    _schema = """
    CREATE TABLE IF NOT EXISTS agent_state (
        user_id TEXT NOT NULL, session_id TEXT NOT NULL, round_id INTEGER NOT NULL,
        state TEXT NOT NULL, saved_at REAL NOT NULL,
        PRIMARY KEY (user_id, session_id, round_id));
    """

    async def save_state(self, user_id: str, state: dict[str, Any],
                         session_id: str | None = None, round_id: int | None = None) -> int:
        sid = session_id or DEFAULT_SESSION
        text = json.dumps(state)

        def _save(conn: sqlite3.Connection) -> int:
            number = round_id
            if number is None:
                row = conn.execute("SELECT COALESCE(MAX(round_id), 0) FROM agent_state "
                                   "WHERE user_id = ? AND session_id = ?", (user_id, sid))
                number = int(row.fetchone()[0]) + 1
            conn.execute("INSERT OR REPLACE INTO agent_state VALUES (?, ?, ?, ?, ?)",
                         (user_id, sid, number, text, time.time()))
            return number

        return await self._db.run(_save)

    async def export_state(self, user_id: str, session_id: str | None = None,
                           round_id: int | None = None) -> dict[str, Any] | None:
        sid = session_id or DEFAULT_SESSION
        if round_id is None:
            rows = await self._db.fetch(
                "SELECT state FROM agent_state WHERE user_id = ? AND session_id = ? "
                "ORDER BY round_id DESC LIMIT 1", (user_id, sid))
        else:
            rows = await self._db.fetch(
                "SELECT state FROM agent_state WHERE user_id = ? AND session_id = ? "
                "AND round_id = ?", (user_id, sid, round_id))
        if not rows:
            return None
        state: dict[str, Any] = json.loads(rows[0][0])
        return state

    async def list_rounds(self, user_id: str, session_id: str | None = None) -> list[int]:
        rows = await self._db.fetch(
            "SELECT round_id FROM agent_state WHERE user_id = ? AND session_id = ? "
            "ORDER BY round_id", (user_id, session_id or DEFAULT_SESSION))
        return [int(r[0]) for r in rows]

    async def delete_state(self, user_id: str, session_id: str | None = None) -> None:
        await self._db.execute("DELETE FROM agent_state WHERE user_id = ? AND session_id = ?",
                               (user_id, session_id or DEFAULT_SESSION))


class SQLiteSessionHistoryService(_SQLiteService, SessionHistoryService):
    """Sessions in ``agent_sessions``, their messages in ``agent_session_messages``."""

    _schema = """
    CREATE TABLE IF NOT EXISTS agent_sessions (
        user_id TEXT NOT NULL, session_id TEXT NOT NULL, created_at REAL NOT NULL,
        PRIMARY KEY (user_id, session_id));
    CREATE TABLE IF NOT EXISTS agent_session_messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL,
        session_id TEXT NOT NULL, message TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS agent_session_messages_by_session
        ON agent_session_messages (user_id, session_id, seq);
    """

    async def create_session(self, user_id: str, session_id: str | None = None) -> Session:
        sid = session_id_or_new(session_id)
        await self._db.execute("INSERT OR IGNORE INTO agent_sessions VALUES (?, ?, ?)",
                               (user_id, sid, time.time()))
        found = await self.get_session(user_id, sid)
        assert found is not None
        return found

    async def get_session(self, user_id: str, session_id: str) -> Session | None:
        def _get(conn: sqlite3.Connection) -> list[str] | None:
            if conn.execute("SELECT 1 FROM agent_sessions WHERE user_id = ? AND session_id = ?",
                            (user_id, session_id)).fetchone() is None:
                return None
            rows = conn.execute("SELECT message FROM agent_session_messages WHERE user_id = ? "
                                "AND session_id = ? ORDER BY seq", (user_id, session_id))
            return [r[0] for r in rows]

        texts = await self._db.run(_get)
        if texts is None:
            return None
        return Session(id=session_id, user_id=user_id,
                       messages=[Message.model_validate_json(t) for t in texts])

    async def delete_session(self, user_id: str, session_id: str) -> None:
        def _delete(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM agent_session_messages WHERE user_id = ? AND "
                         "session_id = ?", (user_id, session_id))
            conn.execute("DELETE FROM agent_sessions WHERE user_id = ? AND session_id = ?",
                         (user_id, session_id))

        await self._db.run(_delete)

    async def list_sessions(self, user_id: str) -> list[Session]:
        rows = await self._db.fetch("SELECT session_id FROM agent_sessions WHERE user_id = ? "
                                    "ORDER BY created_at, rowid", (user_id,))
        return [Session(id=r[0], user_id=user_id) for r in rows]

    async def append_message(self, session: Session, message: MessageInput) -> None:
        messages = as_messages(message)
        rows = [(session.user_id, session.id, m.model_dump_json()) for m in messages]

        def _append(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR IGNORE INTO agent_sessions VALUES (?, ?, ?)",
                         (session.user_id, session.id, time.time()))
            conn.executemany("INSERT INTO agent_session_messages (user_id, session_id, message) "
                             "VALUES (?, ?, ?)", rows)

        await self._db.run(_append)
        session.messages.extend(messages)


class SQLiteMemoryService(_SQLiteService, MemoryService):
    """Memories in ``agent_memory``; ranking happens in Python (see :func:`rank`)."""

    _schema = """
    CREATE TABLE IF NOT EXISTS agent_memory (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL,
        session_id TEXT, message TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS agent_memory_by_user ON agent_memory (user_id, seq);
    """

    async def add_memory(self, user_id: str, messages: list[Message] | list[dict[str, Any]],
                         session_id: str | None = None) -> None:
        rows = [(user_id, session_id, m.model_dump_json()) for m in as_messages(messages)]
        await self._db.run(lambda conn: conn.executemany(
            "INSERT INTO agent_memory (user_id, session_id, message) VALUES (?, ?, ?)", rows))

    async def _all(self, user_id: str) -> list[Message]:
        rows = await self._db.fetch(
            "SELECT message FROM agent_memory WHERE user_id = ? ORDER BY seq", (user_id,))
        return [Message.model_validate_json(r[0]) for r in rows]

    async def search_memory(self, user_id: str,
                            messages: list[Message] | list[dict[str, Any]],
                            filters: dict[str, Any] | None = None) -> list[Message]:
        return rank(as_messages(messages), await self._all(user_id), filters)

    async def list_memory(self, user_id: str,
                          filters: dict[str, Any] | None = None) -> list[Message]:
        return page(await self._all(user_id), filters)

    async def delete_memory(self, user_id: str, session_id: str | None = None) -> None:
        if session_id is None:
            await self._db.execute("DELETE FROM agent_memory WHERE user_id = ?", (user_id,))
        else:
            await self._db.execute("DELETE FROM agent_memory WHERE user_id = ? AND "
                                   "session_id = ?", (user_id, session_id))
