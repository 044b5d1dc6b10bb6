"""Persist: chat's sent messages stored in the database, then the recent windows and the cached heads updated.

A batch is stored in one transaction: messages inserted unless present (idempotent on ``message_id`` and
``(conversation_id, seq)``, so redelivery after a crash stores nothing twice) and each conversation's head moved
forward only. The recent windows are updated after the commit, best effort: the database is the source of truth.
The conversations' cached heads are invalidated after the commit like any cache-aside write (delete now, again
later).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from tidings.job.biz.errors import Unavailable
from tidings.service.chat.message import Message


class MessageStore(Protocol):
    async def persist(self, batch: Sequence[Message]) -> None:
        """Store the batch and advance its conversations, in one transaction; ``Unavailable`` when it could not."""
        ...


class HistoryWindow(Protocol):
    """Each conversation's persisted max seq and its newest messages, outside the database."""

    async def record(self, batch: Sequence[Message], *, stale: Collection[int] = ()) -> None:
        """Add a stored batch, dropping the ``stale`` conversations' windows first; ``Unavailable`` on failure."""
        ...


class Heads(Protocol):
    async def invalidate(self, conversation_ids: Sequence[int]) -> None:
        """Drop the cached heads of the conversations; never raises (a failed delete is redone later)."""
        ...


class PersistProbe(Protocol):
    """What persisting reports: counts for the metrics, and the events an operator should see."""

    def stored(self, count: int) -> None: ...

    def window_failed(self, error: Exception, retry_s: float) -> None: ...

    def too_many_stale(self, tracked: int) -> None: ...


class Persister:
    def __init__(
        self,
        store: MessageStore,
        window: HistoryWindow,
        heads: Heads,
        probe: PersistProbe,
        *,
        window_retry_s: float = 5.0,
        max_stale: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._window = window
        self._heads = heads
        self._probe = probe
        self._window_retry_s = window_retry_s
        self._max_stale = max_stale
        self._clock = clock
        # After a window failure the windows are left alone for a while, so persisting does not wait on timeouts.
        self._window_paused_until = 0.0
        # Conversations whose recent windows missed messages while they could not be written.
        self._stale: set[int] = set()

    async def persist(self, batch: Sequence[Message]) -> None:
        """Store all in one transaction, then update the windows and invalidate the heads."""
        await self._store.persist(batch)
        self._probe.stored(len(batch))
        await asyncio.gather(self._update_window(batch), self._invalidate_heads(batch))

    async def _invalidate_heads(self, batch: Sequence[Message]) -> None:
        if batch:
            await self._heads.invalidate(sorted({message.conversation_id for message in batch}))

    async def _update_window(self, batch: Sequence[Message]) -> None:
        touched = {message.conversation_id for message in batch}
        if self._clock() < self._window_paused_until:
            self._mark_stale(touched)
            return
        stale = list(self._stale)
        try:
            await self._window.record(batch, stale=stale)
        except Unavailable as exc:
            self._window_paused_until = self._clock() + self._window_retry_s
            self._mark_stale(touched)
            self._probe.window_failed(exc, self._window_retry_s)
            return
        self._stale.difference_update(stale)

    def _mark_stale(self, conversation_ids: set[int]) -> None:
        if len(self._stale) + len(conversation_ids) > self._max_stale:
            # Past the bound the windows are left to expire by their TTL; say so rather than grow without end.
            self._probe.too_many_stale(len(self._stale))
            return
        self._stale |= conversation_ids
