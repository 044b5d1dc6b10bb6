"""Seq allocation: blocks leased from a durable counter in the database, handed out from Redis or from memory.

``conversations.seq_leased`` only grows: every block leased from it lies above every seq handed out before, so
no seq is ever reused, whatever happens to the cache that hands blocks out. Losing the cache (a restart, a
FLUSHALL, a failover) only leaves gaps: the rest of the block it held is never handed out.

With Redis unreachable, seqs are leased straight from the counter, a send's worth at a time, so sends go on; the
blocks Redis held from before then lie *below* seqs already handed out, and are voided before Redis hands out
seqs of those conversations again (docs/CACHE.md, "Redis down").
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

import redis.asyncio as redis
from redis.asyncio.client import Pipeline
from sqlalchemy import select, update

from tidings.pkg import log
from tidings.pkg.cache.breaker import UNREACHABLE, Breaker
from tidings.pkg.repo import SQLRepo
from tidings.pkg.scripts import Script
from tidings.service.chat.data.metrics import ChatMetrics
from tidings.service.chat.tables import conversations

DEFAULT_BLOCK = 100
# Allocation rounds (take, lease, install) before giving up; only a storm of racing leases needs more than two.
_MAX_ROUNDS = 16


T = TypeVar("T")


class UnknownConversation(Exception):
    """Seqs were asked for a conversation that does not exist."""


class _RedisDown(Exception):
    """A Redis call failed or timed out (the allocation goes on from the database)."""


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
        return (await self.allocate_many({conversation_id: count}))[conversation_id]

    async def allocate_many(self, counts: Mapping[int, int]) -> dict[int, list[int]]:
        return {cid: await self._allocate(cid, count) for cid, count in counts.items()}

    async def _allocate(self, conversation_id: int, count: int) -> list[int]:
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
    sequence per conversation; the database is touched once per block.

    While Redis is unreachable (``breaker`` open, or a call fails), each allocation is leased from the database
    exactly: one row update per batch of sends, serialized by the row lock, so instances still share one order.
    The conversations served that way are remembered with the highest seq leased, and before Redis is used again
    their blocks are replaced by a spent block ending there (a tombstone): the old blocks hold seqs below the ones
    handed out meanwhile, and handing them out later would break the order (a send acknowledged before another
    starts has the lower seq). A tombstone also refuses an old block whose install was still on its way to Redis
    when it became unreachable. A Redis restart voids blocks by itself (run id).
    """

    def __init__(
        self,
        client: redis.Redis,
        lease: SQLSeqLease,
        metrics: ChatMetrics,
        *,
        block: int = DEFAULT_BLOCK,
        prefix: str = "chat",
        idle_ttl_ms: int = 24 * 3600 * 1000,
        breaker: Breaker | None = None,
        timeout_s: float = 1.0,
        max_voided: int = 100_000,
    ) -> None:
        self._redis = client
        self._lease = lease
        self._metrics = metrics.seq_leases.labels("redis")
        self._direct = metrics.seq_leases.labels("database")
        self._block = block
        self._prefix = prefix
        self._idle_ttl_ms = idle_ttl_ms
        self._script = Script(client, _ALLOCATE)
        self._breaker = breaker or Breaker()
        self._timeout_s = timeout_s
        self._max_voided = max_voided
        # Conversations given seqs from the database while Redis was unreachable, and the highest seq given:
        # their Redis blocks are stale.
        self._voided: dict[int, int] = {}
        # Too many to name: every block of this prefix is stale.
        self._void_all = False
        self._voiding = asyncio.Lock()
        # Voids the stale blocks as soon as Redis answers again, also if this instance gets no sends meanwhile.
        self._voider: asyncio.Task[None] | None = None
        self._log = log.get("chat.seq")

    def key(self, conversation_id: int) -> str:
        # The hash tag keeps all of a conversation's keys in one Redis Cluster slot.
        return f"{self._prefix}:{{{conversation_id}}}:seq"

    async def allocate(self, conversation_id: int, count: int) -> list[int]:
        return (await self.allocate_many({conversation_id: count}))[conversation_id]

    async def allocate_many(self, counts: Mapping[int, int]) -> dict[int, list[int]]:
        seqs: dict[int, list[int]] = {cid: [] for cid in counts}
        if not self._breaker.open:
            try:
                await self._void_stale_blocks()
                await self._from_redis(counts, seqs)
                return seqs
            except _RedisDown as exc:
                self._breaker.trip()
                self._log.warning(
                    "redis unreachable; leasing seqs from the database",
                    error=repr(exc.__cause__),
                    retry_after_s=self._breaker.retry_after_s,
                )
        for conversation_id, count in counts.items():
            if (missing := count - len(seqs[conversation_id])) <= 0:
                continue
            # Above every seq handed out so far, whoever handed it out: never reused, and in the shared order.
            start, last = await self._lease.lease(conversation_id, missing)
            self._direct.inc()
            self._remember(conversation_id, last)
            seqs[conversation_id].extend(range(start, last + 1))
        if (self._voided or self._void_all) and (self._voider is None or self._voider.done()):
            self._voider = asyncio.create_task(self._void_when_back())
        return seqs

    @property
    def stale_blocks(self) -> int:
        """Conversations whose Redis blocks wait to be voided (``-1``: every block of the prefix)."""
        return -1 if self._void_all else len(self._voided)

    async def _void_when_back(self) -> None:
        while self._voided or self._void_all:
            await asyncio.sleep(self._breaker.retry_after_s)
            if self._breaker.open:
                continue
            try:
                await self._void_stale_blocks()
            except _RedisDown:
                self._breaker.trip()

    async def _from_redis(self, counts: Mapping[int, int], seqs: dict[int, list[int]]) -> None:
        """Fill ``seqs`` up to ``counts`` from the conversations' Redis blocks, all in one pipeline a round, leasing
        new blocks (side by side) for those whose block ran out."""
        leased: dict[int, tuple[int, int]] = {}
        for _ in range(_MAX_ROUNDS):
            wanted = {cid: counts[cid] - len(seqs[cid]) for cid in counts if len(seqs[cid]) < counts[cid]}
            if not wanted:
                return
            calls = [(self.key(cid), [n, self._idle_ttl_ms, *leased.get(cid, ())]) for cid, n in wanted.items()]
            taken = await self._call(self._take(calls))
            short: list[int] = []
            for (cid, n), (first, last) in zip(wanted.items(), ((int(a), int(b)) for a, b in taken), strict=True):
                if first:
                    seqs[cid].extend(range(first, last + 1))
                if last - first + 1 < n or not first:  # the block ran out: lease the next one now
                    short.append(cid)
            sizes = {cid: max(self._block, counts[cid] - len(seqs[cid])) for cid in short}
            blocks = await asyncio.gather(*(self._lease.lease(cid, size) for cid, size in sizes.items()))
            self._metrics.inc(len(blocks))
            leased = dict(zip(sizes, blocks, strict=True))
        raise RuntimeError(f"no seqs for conversations {sorted(counts)} after {_MAX_ROUNDS} rounds")

    async def _take(self, calls: list[tuple[str, list[int]]]) -> list[Any]:
        """Run the allocation script once per ``(key, args)`` in one pipeline (one round trip). If Redis forgot
        the script, it is loaded and the pipeline run again: a take that ran twice only leaves a gap."""

        def fill(pipe: Pipeline) -> None:
            for key, args in calls:
                self._script.call(pipe, [key], args)

        return await self._script.run(fill)

    def _remember(self, conversation_id: int, last: int) -> None:
        if self._void_all:
            return
        if conversation_id not in self._voided and len(self._voided) >= self._max_voided:
            self._void_all = True
            self._voided.clear()
            return
        self._voided[conversation_id] = max(last, self._voided.get(conversation_id, 0))

    async def _void_stale_blocks(self) -> None:
        """Void the Redis blocks of conversations served from the database, before Redis serves them again.

        Every allocation waits for this (one round trip per ``_VOID_BATCH`` conversations), so none can take a
        seq from a stale block meanwhile."""
        if not self._voided and not self._void_all:
            return
        async with self._voiding:
            if self._void_all:
                await self._delete_every_block()
            pending = list(self._voided.items())
            for start in range(0, len(pending), _VOID_BATCH):
                chunk = pending[start : start + _VOID_BATCH]

                def fill(pipe: Pipeline, chunk: list[tuple[int, int]] = chunk) -> None:
                    for conversation_id, last in chunk:
                        # Take nothing, after installing the spent block [last + 1, last] unless a newer one is there.
                        self._script.call(pipe, [self.key(conversation_id)], [0, self._idle_ttl_ms, last + 1, last])

                await self._call(self._script.run(fill))
                for conversation_id, last in chunk:
                    if self._voided.get(conversation_id) == last:
                        del self._voided[conversation_id]
            if pending:
                self._log.info("stale seq blocks voided after a redis outage", conversations=len(pending))

    async def _delete_every_block(self) -> None:
        """Too many conversations to name were served from the database: delete every block of this prefix."""
        pattern = f"{self._prefix}:{{*}}:seq"
        stale = await self._call(_collect(self._redis.scan_iter(match=pattern, count=1000)))
        for start in range(0, len(stale), _VOID_BATCH):
            await self._call(self._redis.delete(*stale[start : start + _VOID_BATCH]))
        self._void_all = False
        self._log.info("every seq block deleted after a redis outage", blocks=len(stale))

    async def _call(self, call: Awaitable[T]) -> T:
        """One Redis call, bounded by ``timeout_s`` as a whole (redis-py retries a refused connection for longer)."""
        try:
            async with asyncio.timeout(self._timeout_s):
                return await call
        except UNREACHABLE as exc:
            raise _RedisDown() from exc


_VOID_BATCH = 500


async def _collect(keys: Any) -> list[Any]:
    return [key async for key in keys]
