"""Retention: rows that can no longer serve anyone are deleted in bounded batches, so tables stop growing with age."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol


class ExpiredTokens(Protocol):
    async def prune_expired(self, before_ms: int, limit: int) -> int:
        """Delete up to ``limit`` refresh tokens that expired before ``before_ms``; how many were deleted."""
        ...

    async def count_expired(self, before_ms: int) -> int:
        """How many refresh tokens expired before ``before_ms`` (nothing is deleted)."""
        ...


class RefreshTokenRetention:
    """Delete refresh tokens expired more than ``grace_s`` ago.

    The grace keeps an expired token's row for a while, so a client still holding it is told TOKEN_EXPIRED
    ("sign in again") rather than TOKEN_INVALID. Small batches keep each transaction (and its locks) short; a
    backlog larger than ``max_batches`` batches is finished at the next turns.
    """

    def __init__(
        self,
        tokens: ExpiredTokens,
        now_ms: Callable[[], int],
        *,
        grace_s: float,
        batch: int = 1000,
        max_batches: int = 100,
        pause_s: float = 0.0,
    ) -> None:
        self._tokens = tokens
        self._now_ms = now_ms
        self._grace_ms = int(grace_s * 1000)
        self._batch = batch
        self._max_batches = max_batches
        self._pause_s = pause_s

    async def preview(self) -> int:
        """How many tokens a run now would delete (all of them, however many turns that takes); deletes nothing."""
        return await self._tokens.count_expired(self._now_ms() - self._grace_ms)

    async def run(self) -> int:
        """One turn; how many tokens were deleted."""
        before = self._now_ms() - self._grace_ms
        pruned = 0
        for turn in range(self._max_batches):
            if turn and self._pause_s:
                await asyncio.sleep(self._pause_s)
            deleted = await self._tokens.prune_expired(before, self._batch)
            pruned += deleted
            if deleted < self._batch:
                break
        return pruned
