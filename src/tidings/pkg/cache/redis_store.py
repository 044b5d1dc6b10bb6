"""``RedisStore``: the cache's bytes in Redis, many keys per round trip (MGET / pipelines, no transactions).

Each round trip carries at most ``batch_size`` keys, so one huge request cannot block Redis (single-threaded)
for long or build an unbounded reply buffer; 1,000 keys are ``ceil(1000 / batch_size)`` round trips, not 1,000.
Every call is bounded by ``timeout_s`` as a whole: redis-py retries a refused connection with backoff for
seconds, and a request must not wait that long for a cache it can do without.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis


class RedisStore:
    def __init__(self, client: redis.Redis, *, batch_size: int = 256, timeout_s: float = 1.0) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self._redis = client
        self._batch_size = batch_size
        self._timeout_s = timeout_s

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
                async with self._redis.pipeline(transaction=False) as pipe:
                    for key, value, ttl_s in items[start : start + self._batch_size]:
                        pipe.set(key, value, px=max(1, int(ttl_s * 1000)))
                    await pipe.execute()

    async def delete_many(self, keys: Sequence[str]) -> None:
        async with asyncio.timeout(self._timeout_s):
            for start in range(0, len(keys), self._batch_size):
                await self._redis.delete(*keys[start : start + self._batch_size])
