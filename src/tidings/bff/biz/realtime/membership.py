"""Who hears a user's live events: conversation members (typing) and a user's peers (presence), cached.

Both are read cache-aside, shared by every bff instance in production (Redis) so that one invalidation reaches
them all. A membership change made through the bff commits in chat first, then ``changed`` deletes the
conversation's member list and the peers of everyone concerned, and once more after the replica-lag window
(delayed double delete), so a removed member's typing stops being relayed, and their presence stops reaching
the group (and theirs the group's), at once rather than when the entries expire.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Generic, TypeVar

from tidings.bff.biz.realtime.session import TTLCache
from tidings.pkg.cache.ports import ReadThrough

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LocalReadThrough(Generic[K, V]):
    """An in-process ``ReadThrough`` with a TTL (one process, or tests): no store, no second delete needed."""

    def __init__(self, ttl_s: float, max_entries: int, clock: Callable[[], float]) -> None:
        self._entries: TTLCache[K, V] = TTLCache(ttl_s, max_entries, clock)

    async def get(self, key: K, load: Callable[[K], Awaitable[V | None]]) -> V | None:
        value = self._entries.get(key)
        if value is None:
            value = await load(key)
            if value is not None:
                self._entries.put(key, value)
        return value

    async def get_many(self, keys: Sequence[K], load_many: Callable[[list[K]], Awaitable[Mapping[K, V]]]) -> dict[K, V]:
        found = {key: value for key in keys if (value := self._entries.get(key)) is not None}
        missing = [key for key in keys if key not in found]
        if missing:
            loaded = await load_many(missing)
            for key, value in loaded.items():
                self._entries.put(key, value)
            found.update(loaded)
        return found

    async def invalidate(self, keys: Sequence[K], *, entity_id: int = 0) -> None:
        for key in keys:
            self._entries.delete(key)


class Audiences:
    """The two caches behind typing and presence fan-out, and their invalidation on a membership change."""

    def __init__(self, members: ReadThrough[int, tuple[int, ...]], peers: ReadThrough[int, tuple[int, ...]]) -> None:
        self.members = members
        self.peers = peers

    @classmethod
    def local(cls, members_ttl_s: float, peers_ttl_s: float, clock: Callable[[], float]) -> Audiences:
        return cls(LocalReadThrough(members_ttl_s, 10_000, clock), LocalReadThrough(peers_ttl_s, 10_000, clock))

    async def changed(self, conversation_id: int, user_ids: Sequence[int]) -> None:
        """Call after chat committed a membership change of ``conversation_id``: ``user_ids`` are the members who
        joined or left and those who remain (their peers changed too)."""
        await self.members.invalidate([conversation_id], entity_id=conversation_id)
        if user_ids:
            await self.peers.invalidate(list(dict.fromkeys(user_ids)), entity_id=conversation_id)
