"""``RedisStore``: the cache's bytes in Redis, many keys per round trip (MGET / pipelines, no transactions).

Each round trip carries at most ``batch_size`` keys, so one huge request cannot block Redis (single-threaded)
for long or build an unbounded reply buffer; 1,000 keys are ``ceil(1000 / batch_size)`` round trips, not 1,000.
Every call is bounded by ``timeout_s`` as a whole: redis-py retries a refused connection with backoff for
seconds, and a request must not wait that long for a cache it can do without.

A batch of values is stored by one script call (``SET … PX`` per key inside Redis), not a pipeline of SETs: on
loopback a pipeline of 100 commands costs more in redis-py packing and parsing each command than the round trips
it saves (docs/BENCHMARKS.md), while one command is packed and answered once. Keys of a batch may lie in
different Redis Cluster slots, like MGET's: the store is for one Redis server (or a proxy in front of a cluster).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis

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
        self._set_script: Any = client.register_script(_SET_MANY)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        found: list[bytes | None] = []
        async with asyncio.timeout(self._timeout_s):
            for start in range(0, len(keys), self._batch_size):
                values: list[Any] = await self._redis.mget(keys[start : start + self._batch_size])
                found += [bytes(value) if value is not None else None for value in values]
        return found

    async def set_many(self, items: Sequence[tuple[str, bytes, float]]) -> None:
        async with asyncio.timeout(self._timeout_s):
            for start in range(0, len(items), self._batch_size):
                batch = items[start : start + self._batch_size]
                args: list[bytes | int] = []
                for _, value, ttl_s in batch:
                    args += [value, max(1, int(ttl_s * 1000))]
                await self._set_script(keys=[key for key, _, _ in batch], args=args)

    async def delete_many(self, keys: Sequence[str]) -> None:
        async with asyncio.timeout(self._timeout_s):
            for start in range(0, len(keys), self._batch_size):
                await self._redis.delete(*keys[start : start + self._batch_size])
