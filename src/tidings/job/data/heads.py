"""The cached conversation heads: chat's cache (``chat.store.heads``), or nothing where no cache is shared."""

from __future__ import annotations

from collections.abc import Sequence

from tidings.pkg.cache.ports import ReadThrough
from tidings.service.chat.store.heads import Head


class CachedHeads:
    def __init__(self, cache: ReadThrough[int, Head]) -> None:
        self._cache = cache

    async def invalidate(self, conversation_ids: Sequence[int]) -> None:
        if conversation_ids:
            # Keyed by a conversation of the batch, so the delayed deletes spread over the topic's partitions.
            await self._cache.invalidate(conversation_ids, entity_id=conversation_ids[0])


class NoHeads:
    """The embedded mode's heads cache is chat's own, in chat's memory: nothing here to invalidate."""

    async def invalidate(self, conversation_ids: Sequence[int]) -> None:
        return None
