"""Pruning: rows that can no longer serve anyone are deleted in bounded batches once they are old enough, so tables
stop growing with age (expired refresh tokens, send reservations past their retry window)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from tidings.task.biz.progress import NO_PROGRESS, Progress


class AgedRows(Protocol):
    """Rows that may go once they are older than an instant (each table's own rule of "older")."""

    async def prune(self, before_ms: int, limit: int) -> int:
        """Delete up to ``limit`` rows older than ``before_ms``; how many were deleted."""
        ...

    async def count(self, before_ms: int) -> int:
        """How many rows are older than ``before_ms`` (nothing is deleted)."""
        ...


class Pruning:
    """Delete ``rows`` older than ``keep_s`` (what they must stay for: a refresh token's grace after expiry, in
    which a client is told TOKEN_EXPIRED rather than TOKEN_INVALID; a reservation's retry window).

    Small batches keep each transaction (and its locks) short, ``pause_s`` apart to spread a large backlog's load;
    a backlog larger than ``max_batches`` batches is finished at the next turns. Deleting is idempotent, so a run
    cut off midway loses nothing: the next one goes on from the oldest rows left.
    """

    def __init__(
        self,
        rows: AgedRows,
        now_ms: Callable[[], int],
        *,
        keep_s: float,
        batch: int = 1000,
        max_batches: int = 100,
        pause_s: float = 0.0,
    ) -> None:
        self._rows = rows
        self._now_ms = now_ms
        self._keep_ms = int(keep_s * 1000)
        self._batch = batch
        self._max_batches = max_batches
        self._pause_s = pause_s

    async def preview(self) -> int:
        """How many rows a run now would delete (all of them, however many turns that takes); deletes nothing."""
        return await self._rows.count(self._now_ms() - self._keep_ms)

    async def run(self, progress: Progress = NO_PROGRESS) -> int:
        """One turn; how many rows were deleted (``progress`` over the rows that may go, all of which the turn may
        not reach)."""
        before = self._now_ms() - self._keep_ms
        if progress is not NO_PROGRESS:  # the count is for an operator watching; the schedule's runs skip it
            # At most what this turn can reach; the rest waits for the next turns.
            progress.start(min(await self._rows.count(before), self._batch * self._max_batches))
        pruned = 0
        for turn in range(self._max_batches):
            if turn and self._pause_s:
                await asyncio.sleep(self._pause_s)
            deleted = await self._rows.prune(before, self._batch)
            pruned += deleted
            progress.advance(deleted)
            if deleted < self._batch:
                break
        return pruned
