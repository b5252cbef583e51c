"""State, session history and memory in Redis (redis-py asyncio), for several replicas.

Keys (``prefix`` defaults to ``sandgate:agent``)::

    {prefix}:state:{user}:{session}        hash  round -> state JSON
    {prefix}:sessions:{user}               zset  session id, scored by creation order
    {prefix}:messages:{user}:{session}     list  message JSON
    {prefix}:memory:{user}                 list  {"session_id", "message"} JSON

Rounds are numbered by a Lua script, so concurrent ``save_state`` calls never
take the same round.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis.asyncio as aioredis

from agent_svc.errors import ServiceNotStartedError
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

__all__ = ["RedisMemoryService", "RedisSessionHistoryService", "RedisStateService"]

_NEXT_ROUND = """
local top = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  local n = tonumber(field)
  if n and n > top then top = n end
end
redis.call('HSET', KEYS[1], top + 1, ARGV[1])
return top + 1
"""


class _RedisService:
    def __init__(self, url: str = "redis://127.0.0.1:6379/0", prefix: str = "sandgate:agent",
                 client: aioredis.Redis | None = None) -> None:
        self._url = url
        self._prefix = prefix
        self._given = client
        self._client: aioredis.Redis | None = None

    async def start(self) -> None:
        if self._client is None:
            self._client = self._given or aioredis.Redis.from_url(
                self._url, decode_responses=True, socket_timeout=10.0)

    async def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None and client is not self._given:
            await client.aclose()

    async def health(self) -> bool:
        try:
            return bool(await self._redis().ping())
        except Exception:
            return False

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            raise ServiceNotStartedError("the Redis service is not started")
        return self._client

    def _key(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))


class RedisStateService(_RedisService, StateService):
    """Agent state rounds in one hash per user and session."""

    async def save_state(self, user_id: str, state: dict[str, Any],
                         session_id: str | None = None, round_id: int | None = None) -> int:
        key = self._key("state", user_id, session_id or DEFAULT_SESSION)
        text = json.dumps(state)
        if round_id is None:
            return int(await self._redis().eval(_NEXT_ROUND, 1, key, text))
        await self._redis().hset(key, str(round_id), text)
        return round_id

    async def export_state(self, user_id: str, session_id: str | None = None,
                           round_id: int | None = None) -> dict[str, Any] | None:
        key = self._key("state", user_id, session_id or DEFAULT_SESSION)
        if round_id is None:
            rounds = await self.list_rounds(user_id, session_id)
            if not rounds:
                return None
            round_id = rounds[-1]
        text = await self._redis().hget(key, str(round_id))
        if text is None:
            return None
        state: dict[str, Any] = json.loads(text)
        return state

    async def list_rounds(self, user_id: str, session_id: str | None = None) -> list[int]:
        key = self._key("state", user_id, session_id or DEFAULT_SESSION)
        fields = await self._redis().hkeys(key)
        return sorted(int(f) for f in fields)

    async def delete_state(self, user_id: str, session_id: str | None = None) -> None:
        await self._redis().delete(self._key("state", user_id, session_id or DEFAULT_SESSION))


class RedisSessionHistoryService(_RedisService, SessionHistoryService):
    """Sessions in a sorted set per user, messages in a list per session."""

    async def _ensure(self, user_id: str, session_id: str) -> None:
        # Creation order: a clock for the score, NX so an existing session keeps its place.
        await self._redis().zadd(self._key("sessions", user_id), {session_id: time.time()},
                                 nx=True)

    async def create_session(self, user_id: str, session_id: str | None = None) -> Session:
        sid = session_id_or_new(session_id)
        await self._ensure(user_id, sid)
        found = await self.get_session(user_id, sid)
        assert found is not None
        return found

    async def get_session(self, user_id: str, session_id: str) -> Session | None:
        redis = self._redis()
        if await redis.zscore(self._key("sessions", user_id), session_id) is None:
            return None
        texts = await redis.lrange(
            self._key("messages", user_id, session_id), 0, -1)
        return Session(id=session_id, user_id=user_id,
                       messages=[Message.model_validate_json(t) for t in texts])

    async def delete_session(self, user_id: str, session_id: str) -> None:
        async with self._redis().pipeline(transaction=True) as pipe:
            pipe.zrem(self._key("sessions", user_id), session_id)
            pipe.delete(self._key("messages", user_id, session_id))
            await pipe.execute()

    async def list_sessions(self, user_id: str) -> list[Session]:
        ids = await self._redis().zrange(self._key("sessions", user_id), 0, -1)
        return [Session(id=sid, user_id=user_id) for sid in ids]

    async def append_message(self, session: Session, message: MessageInput) -> None:
        messages = as_messages(message)
        await self._ensure(session.user_id, session.id)
        if messages:
            await self._redis().rpush(
                self._key("messages", session.user_id, session.id),
                *(m.model_dump_json() for m in messages))
        session.messages.extend(messages)


class RedisMemoryService(_RedisService, MemoryService):
    """Memories in one list per user; ranking happens in Python (see :func:`rank`)."""

    async def _entries(self, user_id: str) -> list[dict[str, Any]]:
        texts = await self._redis().lrange(self._key("memory", user_id), 0, -1)
        return [json.loads(t) for t in texts]

    async def add_memory(self, user_id: str, messages: list[Message] | list[dict[str, Any]],
                         session_id: str | None = None) -> None:
        entries = [json.dumps({"session_id": session_id, "message": m.model_dump(mode="json")})
                   for m in as_messages(messages)]
        if entries:
            await self._redis().rpush(self._key("memory", user_id), *entries)

    async def _all(self, user_id: str) -> list[Message]:
        return [Message.model_validate(e["message"]) for e in await self._entries(user_id)]

    async def search_memory(self, user_id: str,
                            messages: list[Message] | list[dict[str, Any]],
                            filters: dict[str, Any] | None = None) -> list[Message]:
        return rank(as_messages(messages), await self._all(user_id), filters)

    async def list_memory(self, user_id: str,
                          filters: dict[str, Any] | None = None) -> list[Message]:
        return page(await self._all(user_id), filters)

    async def delete_memory(self, user_id: str, session_id: str | None = None) -> None:
        key = self._key("memory", user_id)
        redis = self._redis()
        if session_id is None:
            await redis.delete(key)
            return
        async with redis.pipeline(transaction=True) as pipe:
            # WATCH the list so a concurrent add is never lost by the rewrite.
            while True:
                try:
                    await pipe.watch(key)
                    texts = await pipe.lrange(key, 0, -1)
                    kept = [t for t in texts if json.loads(t).get("session_id") != session_id]
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.delete(key)
                    if kept:
                        pipe.rpush(key, *kept)
                    await pipe.execute()
                    return
                except aioredis.WatchError:
                    continue
