"""``RedisHistoryCache``: each conversation's persisted max seq and a short window of its newest messages.

Written by the persist job after its database commit, in one pipeline per batch, and dropped by chat when a
message in a window changes; readers may use them instead of the database for the newest page. Losing them loses
nothing: the database is the source of truth and the next batch writes them again. A conversation's keys share
its id as a Redis Cluster hash tag (``<prefix>:{<id>}:max_seq``, ``<prefix>:{<id>}:recent``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import redis.asyncio as redis
from redis.asyncio.client import Pipeline

from tidings.pkg.rediscluster import mget
from tidings.pkg.scripts import Script
from tidings.service.chat.message import Message
from tidings.service.chat.store.records import message_to_pb

# Moves a number forward only: a redelivered, older batch cannot lower the persisted max seq.
_SET_MAX = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


class RedisHistoryCache:
    def __init__(
        self, client: redis.Redis, *, prefix: str = "chat", window: int = 50, ttl_ms: int = 24 * 3600 * 1000
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._window = window
        self._ttl_ms = ttl_ms
        self._set_max = Script(client, _SET_MAX)

    def max_seq_key(self, conversation_id: int) -> str:
        return f"{self._prefix}:{{{conversation_id}}}:max_seq"

    def recent_key(self, conversation_id: int) -> str:
        """A sorted set of serialized ``tidings.chat.v1.Message`` scored by seq."""
        return f"{self._prefix}:{{{conversation_id}}}:recent"

    async def record(self, batch: Sequence[Message], *, stale: Collection[int] = ()) -> None:
        """Add a persisted batch: one round trip, however many conversations it spans.

        ``stale`` names conversations whose windows missed messages (Redis was unreachable when they were
        persisted): those windows are dropped first, so that a window never silently lacks a stored message.
        """
        by_conversation: dict[int, list[Message]] = {}
        for message in batch:
            by_conversation.setdefault(message.conversation_id, []).append(message)

        def fill(pipe: Pipeline) -> None:
            for conversation_id in stale:
                pipe.delete(self.recent_key(conversation_id))
            for conversation_id, stored in by_conversation.items():
                newest = max(message.seq for message in stored)
                self._set_max.call(pipe, [self.max_seq_key(conversation_id)], [newest, self._ttl_ms])
                recent = self.recent_key(conversation_id)
                pipe.zadd(recent, {message_to_pb(message).SerializeToString(): message.seq for message in stored})
                pipe.zremrangebyrank(recent, 0, -(self._window + 1))
                pipe.pexpire(recent, self._ttl_ms)

        # Run twice if Redis forgot the script: the same batch written again leaves the same windows.
        await self._set_max.run(fill)

    async def max_seq(self, conversation_id: int) -> int | None:
        value = await self._redis.get(self.max_seq_key(conversation_id))
        return int(value) if value is not None else None

    async def max_seqs(self, conversation_ids: Sequence[int]) -> dict[int, int]:
        """The persisted max seqs held for these conversations (one MGET, one per slot on a cluster); absent ones left
        out, a value that is no number as -1 (never a max seq)."""
        if not conversation_ids:
            return {}
        values = await mget(self._redis, [self.max_seq_key(conversation_id) for conversation_id in conversation_ids])
        return {cid: _number(value) for cid, value in zip(conversation_ids, values, strict=True) if value is not None}

    async def forget_max_seqs(self, conversation_ids: Sequence[int]) -> None:
        """Drop these max seqs (they disagreed with the database); the next persisted batch writes them again."""
        if conversation_ids:
            await self._redis.delete(*(self.max_seq_key(conversation_id) for conversation_id in conversation_ids))

    async def recent(self, conversation_id: int) -> list[bytes]:
        members: list[Any] = await self._redis.zrange(self.recent_key(conversation_id), 0, -1)
        return [bytes(member) for member in members]

    async def forget(self, conversation_id: int) -> None:
        """Drop the window (a message in it changed); the next persisted batch starts a new one."""
        await self._redis.delete(self.recent_key(conversation_id))


def _number(value: bytes | str) -> int:
    try:
        return int(value)
    except ValueError:
        return -1
