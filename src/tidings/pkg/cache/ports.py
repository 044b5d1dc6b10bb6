"""The ports of the cache layer: where bytes live (``CacheStore``) and what a use case sees (``ReadThrough``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Protocol, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class CacheStore(Protocol):
    """Bytes under string keys with a time to live: Redis, or this process's memory. Each call may raise."""

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The bytes under each key, in order (``None`` where there are none), in as few round trips as it can."""

    async def set_many(self, items: Sequence[tuple[str, bytes, float]]) -> None:
        """Store each ``(key, value, ttl_s)``."""

    async def delete_many(self, keys: Sequence[str]) -> None: ...


class ReadThrough(Protocol[K, V]):
    """A cache-aside view of one kind of row, as a use case needs it (``tidings.pkg.cache.Cache`` implements it).

    ``None`` means "no such row"; the cache remembers that too (the null sentinel).
    """

    async def get(self, key: K, load: Callable[[K], Awaitable[V | None]]) -> V | None: ...

    async def get_many(
        self, keys: Sequence[K], load_many: Callable[[list[K]], Awaitable[Mapping[K, V]]]
    ) -> dict[K, V]: ...

    async def invalidate(self, keys: Sequence[K], *, entity_id: int = 0) -> None:
        """Call after the write committed: delete now, and once more after the replica-lag window."""
