"""The second delete of the delayed double delete: after a write committed and deleted its keys, delete them
again once the replica-lag window has passed, so a stale value stored in between cannot stay.

``BusInvalidator`` publishes ``cache.invalidate`` (Kafka) for ``job/invalidate``: it survives the writer's
restart and works across instances. ``LocalInvalidator`` is for ``tidings dev`` and tests: one process, one
in-process store, a timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Protocol

from tidings.api.common.v1 import events_pb2
from tidings.pkg.bus import Publisher, events
from tidings.pkg.cache.ports import CacheStore
from tidings.pkg.clock import wall_ms
from tidings.pkg.pbtime import timestamp

# Keyed by the id of the entity whose cache keys a write touched (a user, a conversation).
CACHE_INVALIDATE = events.EventTopic("cache.invalidate", 12, events_pb2.CacheInvalidate)

# Keys per event: a 10,000-member group's change is ten events, not one huge record.
MAX_KEYS_PER_EVENT = 1000


class Invalidator(Protocol):
    async def later(self, keys: Sequence[str], entity_id: int) -> None:
        """Have ``keys`` deleted again after the configured delay; returns once that is durably scheduled."""


class BusInvalidator:
    def __init__(
        self,
        bus: Publisher,
        topics: events.Topics,
        *,
        origin: str,
        delay_s: float,
        wall_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self._bus = bus
        self._topics = topics
        self._origin = origin
        self._delay_ms = int(delay_s * 1000)
        self._wall_ms = wall_ms

    async def later(self, keys: Sequence[str], entity_id: int) -> None:
        not_before = timestamp(self._wall_ms() + self._delay_ms)
        batch = [
            events.encode(
                self._topics,
                CACHE_INVALIDATE,
                events.id_key(entity_id),
                events_pb2.CacheInvalidate(
                    keys=keys[start : start + MAX_KEYS_PER_EVENT], not_before=not_before, origin=self._origin
                ),
            )
            for start in range(0, len(keys), MAX_KEYS_PER_EVENT)
        ]
        await self._bus.publish_many(batch)


class LocalInvalidator:
    """Deletes from one store after the delay, on a timer of this process (lost if the process stops)."""

    def __init__(self, store: CacheStore, *, delay_s: float) -> None:
        self._store = store
        self._delay_s = delay_s
        self._tasks: set[asyncio.Task[None]] = set()

    async def later(self, keys: Sequence[str], entity_id: int) -> None:
        task = asyncio.create_task(self._delete(list(keys)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _delete(self, keys: list[str]) -> None:
        await asyncio.sleep(self._delay_s)
        try:
            await self._store.delete_many(keys)
        except Exception:  # an in-process store does not fail; a key left behind expires by its TTL
            return

    async def drain(self) -> None:
        """Wait for the scheduled deletes (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
