"""``MemoryStore``: the in-process store for ``tidings dev`` and unit tests, bounded by entry count (LRU)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence


class MemoryStore:
    def __init__(self, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        await asyncio.sleep(0)  # like real I/O, a call is a point where other coroutines run
        now = self._clock()
        found: list[bytes | None] = []
        for key in keys:
            entry = self._entries.get(key)
            if entry is not None and entry[0] <= now:
                del self._entries[key]
                entry = None
            if entry is not None:
                self._entries.move_to_end(key)
            found.append(entry[1] if entry is not None else None)
        return found

    async def set_many(self, items: Sequence[tuple[str, bytes, float]]) -> None:
        await asyncio.sleep(0)
        now = self._clock()
        for key, value, ttl_s in items:
            self._entries[key] = (now + ttl_s, value)
            self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    async def delete_many(self, keys: Sequence[str]) -> None:
        await asyncio.sleep(0)
        for key in keys:
            self._entries.pop(key, None)

    def ttl(self, key: str) -> float | None:
        """Seconds left of ``key`` (for tests)."""
        entry = self._entries.get(key)
        return entry[0] - self._clock() if entry is not None else None
