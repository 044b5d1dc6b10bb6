"""The delayed delete: cache keys deleted a second time once the replica-lag window after their write has passed.

A write commits, deletes its keys, and publishes them with ``not_before`` = commit time plus the window. Deleting
them again then means a value read from a lagging replica (or loaded just before the commit) and stored after the
first delete cannot stay. A store that is down makes the delete ``Unavailable``: retried until it is back, so a key
that the writer could not delete is deleted once the store returns. Records of one key arrive in order and
``not_before`` grows with them, so waiting for a batch's latest ``not_before`` delays nothing by more than the
window.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from tidings.pkg.clock import wall_ms

# A not_before further ahead than this is a clock problem of the writer: delete now rather than hold the queue.
MAX_WAIT_S = 60.0


@dataclass(frozen=True)
class Invalidation:
    keys: Sequence[str]
    not_before_ms: int


class Keys(Protocol):
    async def delete_many(self, keys: Sequence[str]) -> None:
        """Delete the keys; ``Unavailable`` when the store cannot be reached."""
        ...


class InvalidateProbe(Protocol):
    def far_future(self, wait_s: float) -> None: ...


class DelayedDelete:
    def __init__(
        self,
        keys: Keys,
        probe: InvalidateProbe,
        *,
        wall_ms: Callable[[], int] = wall_ms,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._keys = keys
        self._probe = probe
        self._wall_ms = wall_ms
        self._sleep = sleep

    async def delete(self, invalidations: Sequence[Invalidation]) -> None:
        """Wait for the latest ``not_before`` of the batch (bounded), then delete every key once."""
        keys = list(dict.fromkeys(key for invalidation in invalidations for key in invalidation.keys))
        if not keys:
            return
        wait_s = (max(invalidation.not_before_ms for invalidation in invalidations) - self._wall_ms()) / 1000
        if wait_s > MAX_WAIT_S:
            self._probe.far_future(wait_s)
        elif wait_s > 0:
            await self._sleep(wait_s)
        await self._keys.delete_many(keys)
