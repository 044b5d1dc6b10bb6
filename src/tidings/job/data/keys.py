"""``RedisKeys``: the shared cache's keys deleted in Redis (``tidings.pkg.cache.RedisStore``)."""

from __future__ import annotations

from collections.abc import Sequence

from tidings.job.biz.errors import Unavailable
from tidings.job.data.errors import REDIS_DOWN
from tidings.pkg.cache.ports import CacheStore
from tidings.pkg.errors import translated


class RedisKeys:
    def __init__(self, store: CacheStore) -> None:
        self._store = store

    async def delete_many(self, keys: Sequence[str]) -> None:
        with translated(REDIS_DOWN, Unavailable, "redis"):
            await self._store.delete_many(keys)
