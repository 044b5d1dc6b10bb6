"""Seq allocation: blocks leased from a durable counter in the database, handed out from Redis or from memory.

``conversations.seq_leased`` only grows: every block leased from it lies above every seq handed out before, so
no seq is ever reused, whatever happens to the cache that hands blocks out. Losing the cache (a restart, a
FLUSHALL, a failover) only leaves gaps: the rest of the block it held is never handed out.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import redis.asyncio as redis
from sqlalchemy import select, update

from tidings.service.chat.data.metrics import ChatMetrics
from tidings.service.chat.data.sql import SQLRepo
from tidings.service.chat.data.tables import conversations

DEFAULT_BLOCK = 100
# Allocation rounds (take, lease, install) before giving up; only a storm of racing leases needs more than two.
_MAX_ROUNDS = 16


class UnknownConversation(Exception):
    """Seqs were asked for a conversation that does not exist."""


class SQLSeqLease(SQLRepo):
    """The durable counter: ``lease`` reserves the next ``size`` seqs of a conversation for good."""

    async def lease(self, conversation_id: int, size: int) -> tuple[int, int]:
        """The first and last seq of a new block, above every seq leased before."""
        async with self._write() as conn:
            # The update holds the row until commit, so the value read next is this lease's own end.
            moved = await conn.execute(
                update(conversations)
                .where(conversations.c.id == conversation_id)
                .values(seq_leased=conversations.c.seq_leased + size)
            )
            if moved.rowcount != 1:
                raise UnknownConversation(f"conversation {conversation_id} does not exist")
            last = await conn.scalar(select(conversations.c.seq_leased).where(conversations.c.id == conversation_id))
        if last is None:
            raise UnknownConversation(f"conversation {conversation_id} does not exist")
        return int(last) - size + 1, int(last)


class MemorySeqAllocator:
    """Hands out blocks from this process's memory: for the embedded mode, where one process runs chat.

    Several processes on one database would each hand out their own blocks: still unique, but not in one
    increasing order across processes, which is what the Redis allocator adds.
    """

    def __init__(
        self, lease: SQLSeqLease, metrics: ChatMetrics, *, block: int = DEFAULT_BLOCK, max_entries: int = 100_000
    ) -> None:
        self._lease = lease
        self._metrics = metrics.seq_leases.labels("memory")
        self._block = block
        self._max_entries = max_entries
        # conversation id -> [next, last]; the least recently used is dropped (its rest becomes a gap).
        self._blocks: OrderedDict[int, list[int]] = OrderedDict()

    async def allocate(self, conversation_id: int, count: int) -> list[int]:
        seqs: list[int] = []
        while len(seqs) < count:
            block = self._blocks.get(conversation_id)
            if block is not None and block[0] <= block[1]:
                take = min(count - len(seqs), block[1] - block[0] + 1)
                seqs.extend(range(block[0], block[0] + take))
                block[0] += take
                self._blocks.move_to_end(conversation_id)
                continue
            start, last = await self._lease.lease(conversation_id, max(self._block, count - len(seqs)))
            self._metrics.inc()
            current = self._blocks.get(conversation_id)
            # Another allocation may have installed a newer block while this one leased: keep the newest.
            if current is None or current[1] < start:
                self._blocks[conversation_id] = [start, last]
                self._blocks.move_to_end(conversation_id)
                while len(self._blocks) > self._max_entries:
                    self._blocks.popitem(last=False)
        return seqs


# Takes up to ARGV[1] seqs from the conversation's block, after installing the block [ARGV[3], ARGV[4]] if given
# and newer than the one there. A block belongs to the Redis server run that installed it (its run_id): after a
# restart, even one that reloaded the key from an older snapshot or AOF, the block is void, so a rolled-back
# cursor can never hand a seq out twice. Returns {first, last}, or {0, 0} when a new block must be leased.
_ALLOCATE = """
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
local block = redis.call('HMGET', KEYS[1], 'next', 'last', 'run')
local valid = block[1] and block[3] == run
if ARGV[3] then
  local start = tonumber(ARGV[3])
  if not (valid and tonumber(block[2]) >= start) then
    redis.call('HSET', KEYS[1], 'next', ARGV[3], 'last', ARGV[4], 'run', run)
    block = {ARGV[3], ARGV[4], run}
    valid = true
  end
end
if not valid then return {0, 0} end
local first = tonumber(block[1])
local last = tonumber(block[2])
if first > last then return {0, 0} end
local take = math.min(tonumber(ARGV[1]), last - first + 1)
redis.call('HSET', KEYS[1], 'next', first + take)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {first, first + take - 1}
"""


class RedisSeqAllocator:
    """Hands out blocks from Redis, atomically (one Lua script), so every chat instance shares one increasing
    sequence per conversation; the database is touched once per block."""

    def __init__(
        self,
        client: redis.Redis,
        lease: SQLSeqLease,
        metrics: ChatMetrics,
        *,
        block: int = DEFAULT_BLOCK,
        prefix: str = "chat",
        idle_ttl_ms: int = 24 * 3600 * 1000,
    ) -> None:
        self._redis = client
        self._lease = lease
        self._metrics = metrics.seq_leases.labels("redis")
        self._block = block
        self._prefix = prefix
        self._idle_ttl_ms = idle_ttl_ms
        self._script: Any = client.register_script(_ALLOCATE)

    def key(self, conversation_id: int) -> str:
        # The hash tag keeps all of a conversation's keys in one Redis Cluster slot.
        return f"{self._prefix}:{{{conversation_id}}}:seq"

    async def allocate(self, conversation_id: int, count: int) -> list[int]:
        seqs: list[int] = []
        block: tuple[int, int] | None = None
        for _ in range(_MAX_ROUNDS):
            args: list[int] = [count - len(seqs), self._idle_ttl_ms]
            if block is not None:
                args += list(block)
            first, last = (int(value) for value in await self._script(keys=[self.key(conversation_id)], args=args))
            if first:
                seqs.extend(range(first, last + 1))
                if len(seqs) == count:
                    return seqs
                block = None
                continue
            block = await self._lease.lease(conversation_id, max(self._block, count - len(seqs)))
            self._metrics.inc()
        raise RuntimeError(f"no seqs for conversation {conversation_id} after {_MAX_ROUNDS} rounds")
