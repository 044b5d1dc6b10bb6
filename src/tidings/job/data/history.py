"""The recent windows: chat's Redis layout (``chat.store.history``), or nothing where no Redis is shared."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from tidings.job.biz.errors import Unavailable
from tidings.job.data.errors import REDIS_DOWN
from tidings.pkg.errors import translated
from tidings.service.chat.message import Message
from tidings.service.chat.store.history import RedisHistoryCache


class RedisHistoryWindow:
    def __init__(self, cache: RedisHistoryCache) -> None:
        self._cache = cache

    async def record(self, batch: Sequence[Message], *, stale: Collection[int] = ()) -> None:
        with translated(REDIS_DOWN, Unavailable, "redis"):
            await self._cache.record(batch, stale=stale)


class NoHistoryWindow:
    """The embedded mode keeps no windows: chat reads history from the database."""

    async def record(self, batch: Sequence[Message], *, stale: Collection[int] = ()) -> None:
        return None
