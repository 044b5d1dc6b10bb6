"""``RedisStore``: the cache's bytes in Redis, many keys per round trip (MGET / pipelines, no transactions).

Each round trip carries at most ``batch_size`` keys, so one huge request cannot block Redis (single-threaded)
for long or build an unbounded reply buffer; 1,000 keys are ``ceil(1000 / batch_size)`` round trips, not 1,000.
Every call is bounded by ``timeout_s`` as a whole: redis-py retries a refused connection with backoff for
seconds, and a request must not wait that long for a cache it can do without.

A batch of values is stored by one script call (``SET … PX`` per key inside Redis), not a pipeline of SETs: on
loopback a pipeline of 100 commands costs more in redis-py packing and parsing each command than the round trips
it saves (docs/BENCHMARKS.md), while one command is packed and answered once.

On a Redis Cluster (``tidings.pkg.rediscluster``) the keys of a batch lie in many slots: a read is one MGET per slot
and a store one script call per slot, all of a batch pipelined (each node's share sent at once); a delete is split
per slot by the cluster client. On a single Redis every batch stays one MGET or one script call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import redis.asyncio as redis
from redis.asyncio.client import Pipeline

from tidings.pkg.rediscluster import mget, slot_groups
from tidings.pkg.scripts import Script

# SET KEYS[i] to ARGV[2i - 1] with a time to live of ARGV[2i] milliseconds, for every key of the batch.
_SET_MANY = """
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[2 * i - 1], 'PX', ARGV[2 * i])
end
return #KEYS
"""


class RedisStore:
    def __init__(self, client: redis.Redis, *, batch_size: int = 256, timeout_s: float = 1.0) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self._redis = client
        self._batch_size = batch_size
        self._timeout_s = timeout_s
        self._set_script = Script(client, _SET_MANY)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        found: list[bytes | None] = []
        async with asyncio.timeout(self._timeout_s):
            for start in range(0, len(keys), self._batch_size):
                values = await mget(self._redis, keys[start : start + self._batch_size])
                found += [bytes(value) if value is not None else None for value in values]
        return found

    async def set_many(self, items: Sequence[tuple[str, bytes, float]]) -> None:
        async with asyncio.timeout(self._timeout_s):
            for start in range(0, len(items), self._batch_size):
                batch = items[start : start + self._batch_size]
                groups = slot_groups(self._redis, [key for key, _, _ in batch])

                def fill(
                    pipe: Pipeline, batch: Sequence[tuple[str, bytes, float]] = batch, groups: list[list[int]] = groups
                ) -> None:
                    for group in groups:
                        args: list[bytes | int] = []
                        for index in group:
                            args += [batch[index][1], max(1, int(batch[index][2] * 1000))]
                        self._set_script.call(pipe, [batch[index][0] for index in group], args)

                # Run twice only if Redis forgot the script: the same values stored again.
                await self._set_script.run(fill)

    async def delete_many(self, keys: Sequence[str]) -> None:
        async with asyncio.timeout(self._timeout_s):
            for start in range(0, len(keys), self._batch_size):
                await self._redis.delete(*keys[start : start + self._batch_size])
