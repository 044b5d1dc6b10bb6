"""Retention: rows that can no longer serve anyone are deleted in bounded batches, so tables stop growing with age."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from tidings.task.scheduler import Job


class ExpiredTokens(Protocol):
    async def prune_expired(self, before_ms: int, limit: int) -> int: ...


def refresh_token_retention(
    tokens: ExpiredTokens,
    now_ms: Callable[[], int],
    *,
    grace_s: float,
    every_s: float,
    batch: int = 1000,
    max_batches: int = 100,
) -> Job:
    """Delete refresh tokens expired more than ``grace_s`` ago.

    The grace keeps an expired token's row for a while, so a client still holding it is told TOKEN_EXPIRED
    ("sign in again") rather than TOKEN_INVALID. Small batches keep each transaction (and its locks) short; a
    backlog larger than ``max_batches`` batches is finished at the next turns.
    """

    async def run() -> int:
        before = now_ms() - int(grace_s * 1000)
        pruned = 0
        for _ in range(max_batches):
            deleted = await tokens.prune_expired(before, batch)
            pruned += deleted
            if deleted < batch:
                break
        return pruned

    return Job("refresh-token-retention", every_s=every_s, run=run)
